"""The GPU path (SPEC: CPU or GPU): the same answers on CUDA as on the CPU.

Skipped on machines without CUDA (CI has none); run on a GPU machine with
``python -m pytest -q tests/test_cuda.py``.
"""
import json
import subprocess
import sys

import pytest
import torch

from em_inverse import load_prior, solve
from em_inverse.image_io import read_image, write_image
from em_inverse.operators import build_operator
from em_inverse.operators.degrade import degrade
from em_inverse.training import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")
CPU = torch.device("cpu")


def smooth_image(size: int = 48, channels: int = 1) -> torch.Tensor:
    """A deterministic (1, C, size, size) test image in [0, 1]."""
    u = torch.linspace(0, 1, size)
    base = 0.5 + 0.3 * torch.sin(6 * u)[:, None] * torch.cos(4 * u)[None, :]
    return base.expand(1, channels, size, size).clone()


def problem(task: str, device: torch.device, channels: int = 1, size: int = 48):
    """(x, y, physics) on ``device``: drawn on the CPU, so every device gets the same problem."""
    x = smooth_image(size, channels)
    options = {"inpaint": {"mask": "random:0.5"}, "deblur": {"kernel": "gaussian:2"},
               "superres": {"factor": 2}, "denoise": {}}[task]
    physics = build_operator(task, tuple(x.shape), noise=0.01,
                             generator=torch.Generator().manual_seed(1), **options)
    y = degrade(x, physics, torch.Generator().manual_seed(2))
    return x.to(device), y.to(device), physics.to(device)


@pytest.mark.parametrize("name", ["natural-gray", "natural-rgb", "fashion-mnist"])
def test_grad_v_of_each_bundled_prior_on_cuda_matches_the_cpu(name):
    cpu, gpu = load_prior(name, device=CPU), load_prior(name, device=CUDA)
    shape = (2, cpu.channels, *(cpu.image_size or (64, 64)))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    expected = cpu.grad(x)
    got = gpu.grad(x.to(CUDA)).cpu()
    # cuDNN convolutions run in TF32 on Ampere and newer (PyTorch's default): ~1e-4 relative
    relative_error = float((got - expected).norm() / expected.norm())
    assert relative_error < 2e-3, relative_error


@pytest.mark.parametrize("name", ["natural-gray", "natural-rgb"])
def test_tiles_on_cuda_give_the_one_pass_grad_v(name, monkeypatch):
    """A colour image tiles one opponent channel at a time; the tiles' seams must not show."""
    from em_inverse.priors import tiling

    prior = load_prior(name, device=CUDA)
    x = torch.rand(1, prior.channels, 160, 136, generator=torch.Generator().manual_seed(3))
    x = x.to(CUDA)
    expected = prior.grad(x)
    tiled, calls = tiling.tiled_energy_and_grad, []
    monkeypatch.setattr(tiling, "max_values", lambda device: 1000)  # every batch goes in tiles
    monkeypatch.setattr(tiling, "tiled_energy_and_grad",  # 64-px tiles: 9 for this image
                        lambda net, z, tile=64: calls.append(z.device.type) or tiled(net, z, 64))
    got = prior.grad(x)
    assert calls and set(calls) == {CUDA.type} and got.device.type == CUDA.type
    relative_error = float((got - expected).norm() / expected.norm())  # TF32 convolutions
    assert relative_error < 2e-3, relative_error


@pytest.mark.parametrize("task", ["inpaint", "deblur", "superres", "denoise"])
@pytest.mark.parametrize("method", ["map", "hqs"])
def test_point_estimates_on_cuda_agree_with_the_cpu_to_a_quarter_grey_level(task, method):
    estimates = []
    for device in (CPU, CUDA):
        x, y, physics = problem(task, device)
        prior = load_prior("natural-gray", device=device)
        estimates.append(solve(y, physics, prior, method=method, progress=False).estimate.cpu())
    # the same problem up to float summation order (L-BFGS paths may drift a little)
    assert (estimates[1] - estimates[0]).abs().mean() < 1e-3


@pytest.mark.parametrize("name", ["natural-gray", "natural-rgb", "fashion-mnist"])
@pytest.mark.parametrize("task", ["inpaint", "deblur"])
@pytest.mark.parametrize("method", ["posterior", "anneal", "em"])
def test_seeded_samplers_on_cuda_repeat_themselves_bit_for_bit(name, task, method):
    """As on the CPU: cuDNN is held to deterministic algorithms while grad V runs, and the nets
    avoid backward kernels that accumulate with atomics."""
    prior = load_prior(name, device=CUDA)
    x, y, physics = problem(task, CUDA, prior.channels, (prior.image_size or (48,))[0])
    options = dict(steps=20, chains=4, seed=7, progress=False)
    first = solve(y, physics, prior, method=method, **options)
    second = solve(y, physics, prior, method=method, **options)
    assert first.estimate.device.type == "cuda" and torch.isfinite(first.estimate).all()
    for a, b in ((first.estimate, second.estimate), (first.std, second.std)):
        assert torch.equal(a, b), float((a - b).abs().max())


def test_training_on_cuda_lowers_the_loss_and_resumes_on_the_cpu(tmp_path):
    values = dict(data="patches:natural-gray", crop=24, steps=60, phase2_steps=20, batch_size=8,
                  negatives=4, langevin_steps=5, log_every=5, checkpoint_every=30,
                  dsm_weight=1.0, lr=2e-3, warmup=5, lr_schedule="cosine",
                  arch={"type": "ConvEnergy", "channels": 1, "width": 8, "levels": 2,
                        "blocks": 1})
    Trainer(TrainConfig.from_dict(values), tmp_path, CUDA, quiet=True).fit()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert records[-1]["dsm"] < records[0]["dsm"]
    longer = TrainConfig.from_dict({**values, "steps": 80})
    finished = Trainer(longer, tmp_path, CPU, quiet=True)
    finished.fit(resume=True)
    assert [s["last_step"] for s in finished.segments] == [60, 80]
    assert "steps 0-60: NVIDIA" in finished.ema_prior().card["hardware"]


def test_the_cli_solves_on_cuda(tmp_path):
    x, y, _ = problem("denoise", CPU)
    write_image(tmp_path / "noisy.npy", y)
    out = tmp_path / "restored.npy"
    result = subprocess.run([sys.executable, "-m", "em_inverse", "solve", "--op", "denoise",
                             "--noise", "0.01", "--device", "cuda", str(tmp_path / "noisy.npy"),
                             "--output", str(out), "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    restored = read_image(out)
    assert restored.shape == x.shape and torch.isfinite(restored).all()
    assert (restored - x).pow(2).mean() < (y - x).pow(2).mean()
