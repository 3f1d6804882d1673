"""Energy Matching training: data sets, losses, the trainer and its checkpoints."""
from em_inverse.training.config import TrainConfig
from em_inverse.training.datasets import make_dataset
from em_inverse.training.trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "make_dataset"]
