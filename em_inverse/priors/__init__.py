"""Energy priors: networks, the ``EnergyPrior`` object, safe checkpoints and the registry."""
from em_inverse.priors.checkpoint import load_prior_folder, save_prior
from em_inverse.priors.nets import ConvEnergy, GlobalEnergy, MLPEnergy, build_net
from em_inverse.priors.prior import EnergyPrior
from em_inverse.priors.registry import default_prior_name, list_priors, load_prior

__all__ = ["ConvEnergy", "EnergyPrior", "GlobalEnergy", "MLPEnergy", "build_net",
           "default_prior_name", "list_priors", "load_prior", "load_prior_folder", "save_prior"]
