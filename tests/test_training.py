"""SPEC 4: Energy Matching losses, the trainer, its checkpoints and resume."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from em_inverse.errors import UserError
from em_inverse.priors import load_prior
from em_inverse.priors.nets import build_net
from em_inverse.priors.sampling import annealed_langevin, eps_schedule
from em_inverse.training import TrainConfig, Trainer, losses
from em_inverse.training.datasets import FASHION_MNIST_DIR, Patches, Toy2D
from em_inverse.training.state import load_checkpoint
from em_inverse.training.widen import can_widen, widen_state

CLI = [sys.executable, "-m", "em_inverse"]


def test_minibatch_ot_pairing_is_a_permutation_that_never_costs_more_than_identity():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(64, 5, generator=g), torch.randn(64, 5, generator=g) + 3
    paired = losses.ot_pair(x0, x1)
    assert torch.equal(paired.sort(0).values, x0.sort(0).values)
    assert (paired - x1).pow(2).sum() <= (x0 - x1).pow(2).sum()


def test_flow_weight_is_one_before_tau_star_and_ramps_to_zero_at_one():
    t = torch.tensor([0.0, 0.5, 0.8, 0.9, 1.0])
    assert torch.allclose(losses.flow_weight(t, 0.8), torch.tensor([1, 1, 1, 0.5, 0]))
    assert torch.equal(losses.flow_weight(t, 1.0), torch.ones(5))


def test_temperature_schedule_is_zero_then_rises_linearly_to_eps_max():
    t = torch.tensor([0.0, 0.5, 0.75, 1.0, 1.5])
    assert torch.allclose(eps_schedule(t, 0.5, 0.04), torch.tensor([0, 0, 0.02, 0.04, 0.04]))
    assert torch.allclose(eps_schedule(t, 1.0, 0.04), torch.tensor([0, 0, 0, 0.04, 0.04]))


def test_trimmed_mean_drops_the_highest_energies_and_the_cd_term_is_clamped():
    values = torch.arange(10.0)
    assert losses.trimmed_mean(values, 0.1) == values[:9].mean()
    assert losses.contrastive_loss(torch.tensor([5.0]), values, 0.1, beta=0.02) == 1.0
    assert losses.contrastive_loss(torch.tensor([-9.0]), values, 0.1, 0.02) == -0.02


def test_flow_loss_is_zero_for_the_exact_ot_velocity():
    x0, x1 = torch.randn(8, 2), torch.randn(8, 2)
    t = torch.rand(8)
    assert losses.flow_matching_loss(-(x1 - x0), x0, x1, t, 1.0) == 0


def test_the_learning_rate_warms_up_linearly_then_stays_or_follows_a_cosine_to_lr_over_20():
    constant = TrainConfig(steps=1000, lr=1e-3, warmup=100)
    cosine = TrainConfig(steps=1000, lr=1e-3, warmup=100, lr_schedule="cosine")
    for config in (constant, cosine):
        assert config.learning_rate(0) == pytest.approx(1e-5)
        assert config.learning_rate(99) == pytest.approx(1e-3)
        assert config.learning_rate(100) == pytest.approx(1e-3)
    assert constant.learning_rate(999) == pytest.approx(1e-3)
    assert cosine.learning_rate(549) == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5), rel=1e-2)
    assert cosine.learning_rate(999) == pytest.approx(5e-5)
    rates = [cosine.learning_rate(k) for k in range(100, 1000)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    with pytest.raises(UserError, match="lr-schedule"):
        TrainConfig.from_dict({"lr_schedule": "step"})


@pytest.mark.parametrize("key,value,wanted", [("steps", "many", "an integer"),
                                               ("phase2_steps", 2.5, "an integer"),
                                               ("lr", "1e-3", "a number"),
                                               ("dsm_weight", True, "a number"),
                                               ("augment", 3, "a string"),
                                               ("arch", 5, "a table")])
def test_a_config_value_of_the_wrong_type_is_named_in_a_clear_error(key, value, wanted):
    with pytest.raises(UserError, match=f"{key} in config must be {wanted}"):
        TrainConfig.from_dict({key: value})
    config = TrainConfig.from_dict({"lr": 1, "phase2_steps": None, "init_from": None})
    assert isinstance(config.lr, float) and config.phase2_steps is None


def test_dihedral_patches_are_the_flipped_patches_with_a_random_half_transposed(tmp_path):
    image = torch.arange(6 * 5, dtype=torch.float32).reshape(6, 5, 1).numpy()
    flips, dihedral = (Patches([image], 4, "ramp", augment=a) for a in ("flips", "dihedral"))
    g_flips, g_dihedral = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = flips.sample(64, g_flips), dihedral.sample(64, g_dihedral)
    transposed = torch.rand(64, generator=g_flips) < 0.5  # the draw that follows the flips
    assert 0 < int(transposed.sum()) < 64
    assert torch.equal(b[~transposed], a[~transposed])
    assert torch.equal(b[transposed], a[transposed].transpose(-1, -2))
    with pytest.raises(UserError, match="augment"):
        TrainConfig.from_dict({"augment": "rotations"})
    with pytest.raises(UserError, match="patches: and folder:"):
        Trainer(TrainConfig.from_dict({"augment": "dihedral"}), tmp_path, torch.device("cpu"))


def test_multi_scale_patches_add_anti_aliased_copies_drawn_by_area(tmp_path):
    stripes = np.tile(np.array([0.0, 1.0], dtype=np.float32), (64, 32))[..., None]  # (64, 64, 1)
    patches = Patches([stripes], 8, "stripes", scales=(1.0, 0.5))
    assert [tuple(im.shape) for im in patches.images] == [(1, 64, 64), (1, 32, 32)]
    assert patches.weights.tolist() == pytest.approx([0.8, 0.2])   # areas 64^2 : 32^2
    # the half-size copy averages the 1-px stripes to mid-gray instead of aliasing them
    assert patches.images[1][:, 8:-8, 8:-8].sub(0.5).abs().max() < 0.05
    single = Patches([stripes], 8, "stripes", scales=(1.0,))
    default = Patches([stripes], 8, "stripes")
    draws = [p.sample(16, torch.Generator().manual_seed(0)) for p in (single, default)]
    assert torch.equal(*draws)   # the default is the full-size image alone: old runs replay
    config = TrainConfig.from_dict({"scales": [1, 0.5]})
    assert config.scales == [1.0, 0.5] and config.to_dict()["scales"] == [1.0, 0.5]
    for bad in ([], [0.0], [1.5], [1.0, 1.0]):
        with pytest.raises(UserError, match="scales must be distinct numbers in"):
            TrainConfig.from_dict({"scales": bad})
    with pytest.raises(UserError, match="scales in config must be a list"):
        TrainConfig.from_dict({"scales": 0.5})
    with pytest.raises(UserError, match="patches: and folder:"):
        Trainer(TrainConfig.from_dict({"scales": [1.0, 0.5]}), tmp_path, torch.device("cpu"))
    with pytest.raises(UserError, match="crop size 40 is larger"):
        Patches([np.zeros((64, 64, 1), np.float32)], 40, "small", scales=(1.0, 0.5))
    np.save(tmp_path / "stripes.npy", stripes.transpose(2, 0, 1)[None])  # (1, C, H, W)
    config = TrainConfig.from_dict({"data": f"folder:{tmp_path}", "crop": 8, "scales": [1, 0.5],
                                    "arch": {"type": "ConvEnergy", "width": 4, "levels": 2}})
    card = Trainer(config, tmp_path / "run", torch.device("cpu"), quiet=True).ema_prior().card
    assert card["data"] == f"folder:{tmp_path} at scales 1, 0.5"   # the model card says so


def toy_config(**changes) -> TrainConfig:
    """A short run with a strong, unclamped contrastive phase (300 of 1500 steps)."""
    values = dict(data="toy2d:8gaussians", steps=1500, phase2_steps=300, batch_size=128,
                  langevin_steps=60, lambda_cd=0.5, beta=10.0, checkpoint_every=500,
                  log_every=10, seed=3)
    values.update(changes)
    return TrainConfig.from_dict(values)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    trainer = Trainer(toy_config(), out, torch.device("cpu"), quiet=True)
    prior = trainer.fit().frozen()
    return out, prior, trainer


def test_training_reduces_the_flow_loss(toy_run):
    out, _, _ = toy_run
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    first, last = records[:5], records[-10:]
    assert sum(r["flow"] for r in last) / len(last) < 0.5 * sum(r["flow"] for r in first) / len(first)
    assert records[-1]["phase"] == 2 and "cd" in records[-1]


def test_after_phase_2_data_has_lower_energy_than_noise_started_negatives(toy_run):
    _, prior, trainer = toy_run
    g = torch.Generator().manual_seed(0)
    data = Toy2D("8gaussians").sample(512, g)
    noise = torch.randn(512, 2, generator=g)
    negatives = annealed_langevin(prior.net, noise, torch.zeros(512), steps=60, dt=0.01,
                                  tau_star=trainer.config.tau_star,
                                  eps_max=trainer.config.eps_max, generator=g)
    assert prior.energy(data).mean() < prior.energy(negatives).mean()


def test_a_langevin_chain_at_eps_max_started_on_data_stays_near_the_data(toy_run):
    _, prior, trainer = toy_run
    g = torch.Generator().manual_seed(1)
    data = Toy2D("8gaussians").sample(512, g)
    chain = annealed_langevin(prior.net, data, torch.ones(512), steps=200, dt=0.01,
                              tau_star=trainer.config.tau_star, eps_max=trainer.config.eps_max,
                              generator=g)
    centres = 4 * torch.stack([torch.cos(torch.arange(8) * math.pi / 4),
                               torch.sin(torch.arange(8) * math.pi / 4)], 1)
    distance = torch.cdist(chain, centres).min(1).values
    assert (distance < 1.5).float().mean() > 0.9


def test_the_run_folder_is_a_prior_with_plots_and_a_model_card(toy_run):
    out, _, _ = toy_run
    prior = load_prior(out)
    assert prior.data == {"kind": "vector", "dim": 2}
    assert prior.card["parameters"] == prior.num_parameters
    assert (out / "plots" / "samples_final.png").stat().st_size > 1000
    assert (out / "plots" / "energy_final.png").stat().st_size > 1000


def train_command(out: Path, *extra: str) -> list[str]:
    return CLI + ["train", "--data", "toy2d:8gaussians", "--steps", "600", "--checkpoint-every",
                  "100", "--seed", "3", "--langevin-steps", "20", "--out", str(out), "--quiet",
                  "--device", "cpu", *extra]


@pytest.mark.parametrize("scales,message", [("1,half", "--scales must be numbers"),
                                            ("1,0.5", "applies to patches: and folder:")])
def test_bad_scales_on_the_command_line_exit_with_a_message_and_no_run(tmp_path, scales, message):
    result = subprocess.run(train_command(tmp_path / "run", "--scales", scales),
                            capture_output=True, text=True)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_a_run_killed_after_its_first_checkpoint_resumes_to_identical_weights(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(train_command(tmp_path / "full"), check=True, env=env)
    killed = tmp_path / "killed"
    process = subprocess.Popen(train_command(killed), env=env)
    checkpoint = killed / "checkpoint.safetensors"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists()
    subprocess.run(train_command(killed, "--resume"), check=True, env=env)
    full = load_file(tmp_path / "full" / "weights.safetensors")
    resumed = load_file(killed / "weights.safetensors")
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


def test_a_diverged_run_stops_with_a_clear_error_and_never_saves_the_poisoned_weights(
        tmp_path, monkeypatch):
    flow_loss = losses.flow_matching_loss
    calls = []

    def poisoned_after_25_steps(*args):
        calls.append(1)
        return flow_loss(*args) * (math.nan if len(calls) > 25 else 1.0)

    monkeypatch.setattr(losses, "flow_matching_loss", poisoned_after_25_steps)
    config = toy_config(steps=100, phase2_steps=0, checkpoint_every=20, log_every=50)
    with pytest.raises(UserError, match="diverged by step 40"):
        Trainer(config, tmp_path, torch.device("cpu"), quiet=True).fit()
    assert load_checkpoint(tmp_path / "checkpoint.safetensors")[1]["step"] == 20
    assert all(v.isfinite().all() for v in load_file(tmp_path / "weights.safetensors").values())


def test_a_checkpoint_from_before_an_option_existed_resumes_with_that_options_default(tmp_path):
    config = toy_config(steps=40, phase2_steps=0, checkpoint_every=20)
    Trainer(config, tmp_path, torch.device("cpu"), quiet=True).fit()
    path = tmp_path / "checkpoint.safetensors"
    tensors, meta = load_checkpoint(path)
    del meta["extra"]["config"]["lr_schedule"]
    save_file(tensors, path, metadata={"em_inverse_state": json.dumps(meta)})
    longer = toy_config(steps=60, phase2_steps=0, checkpoint_every=20)
    Trainer(longer, tmp_path, torch.device("cpu"), quiet=True).fit(resume=True)
    assert load_checkpoint(path)[1]["step"] == 60
    with pytest.raises(UserError, match="lr_schedule"):
        Trainer(toy_config(steps=80, phase2_steps=0, lr_schedule="cosine"), tmp_path,
                torch.device("cpu"), quiet=True).fit(resume=True)


def test_the_model_card_records_each_stretch_of_hardware_a_run_was_trained_on(tmp_path):
    config = toy_config(steps=40, phase2_steps=0, checkpoint_every=20)
    trainer = Trainer(config, tmp_path, torch.device("cpu"), quiet=True)
    trainer.fit()
    assert [(s["first_step"], s["last_step"]) for s in trainer.segments] == [(0, 40)]
    assert trainer.ema_prior().card["hardware"].startswith("CPU")
    path = tmp_path / "checkpoint.safetensors"
    tensors, meta = load_checkpoint(path)   # pretend the first 40 steps ran on a GPU
    meta["extra"]["segments"][0]["hardware"] = "NVIDIA H200"
    tensors["rng.noise"] = torch.zeros(16, dtype=torch.uint8)  # a CUDA generator's state
    meta["extra"]["device"] = "cuda"
    save_file(tensors, path, metadata={"em_inverse_state": json.dumps(meta)})
    resumed = Trainer(toy_config(steps=60, phase2_steps=0, checkpoint_every=20), tmp_path,
                      torch.device("cpu"), quiet=True)
    resumed.fit(resume=True)
    assert [(s["first_step"], s["last_step"]) for s in resumed.segments] == [(0, 40), (40, 60)]
    card = resumed.ema_prior().card["hardware"]
    assert card.startswith("steps 0-40: NVIDIA H200") and "steps 40-60: CPU" in card


def test_a_warm_restart_starts_from_the_earlier_runs_weights_and_its_card_adds_both_times(tmp_path):
    Trainer(toy_config(steps=40, phase2_steps=0), tmp_path / "first", torch.device("cpu"),
            quiet=True).fit()
    earlier, _ = load_checkpoint(tmp_path / "first" / "checkpoint.safetensors")
    config = toy_config(steps=20, phase2_steps=5, init_from=str(tmp_path / "first"))
    trainer = Trainer(config, tmp_path / "second", torch.device("cpu"), quiet=True)
    assert trainer.start_from(tmp_path / "first")["trained_steps"] == 40
    for key, value in trainer.net.state_dict().items():
        assert torch.equal(value, earlier[f"model.{key}"]), key
    for key, value in trainer.ema.items():
        assert torch.equal(value, earlier[f"ema.{key}"]), key
    assert trainer.learning_rate(0) < trainer.learning_rate(config.warmup)  # a fresh schedule
    prior = trainer.fit()
    assert prior.training["trained_steps"] == 20
    assert prior.training["started_from"]["trained_steps"] == 40
    assert "for 20 steps after 40 steps of" in prior.card["training_time"]
    # a restart of the restart counts both earlier runs; a resumed restart keeps its parent
    third = toy_config(steps=10, phase2_steps=0, init_from=str(tmp_path / "second"))
    assert Trainer(third, tmp_path / "third", torch.device("cpu"), quiet=True).fit() \
        .training["started_from"]["trained_steps"] == 60
    resumed = Trainer(toy_config(steps=30, phase2_steps=5, init_from=str(tmp_path / "first")),
                      tmp_path / "second", torch.device("cpu"), quiet=True)
    assert resumed.fit(resume=True).training["started_from"]["trained_steps"] == 40


def test_a_run_can_fine_tune_a_prior_folder_or_a_bundled_prior(tmp_path):
    Trainer(toy_config(steps=20, phase2_steps=0), tmp_path / "first", torch.device("cpu"),
            quiet=True).fit()
    (tmp_path / "first" / "checkpoint.safetensors").unlink()  # a prior folder, no run state
    shipped = load_prior(tmp_path / "first")
    trainer = Trainer(toy_config(steps=5, phase2_steps=0, init_from=str(tmp_path / "first")),
                      tmp_path / "second", torch.device("cpu"), quiet=True)
    assert trainer.start_from(tmp_path / "first")["trained_steps"] == 20
    for key, value in shipped.net.state_dict().items():  # its weights start both net and EMA
        assert torch.equal(trainer.net.state_dict()[key], value) and torch.equal(
            trainer.ema[key], value), key
    assert trainer.fit().training["started_from"]["trained_steps"] == 20
    # a bundled prior: its own history counts (natural-gray: 20000 + 10000 steps)
    natural = TrainConfig.from_dict(dict(
        data="patches:natural-gray", crop=16, batch_size=2, negatives=2, langevin_steps=1,
        steps=1, phase2_steps=0, init_from="natural-gray",
        arch={"type": "ConvEnergy", "channels": 1, "width": 16, "levels": 3, "blocks": 2}))
    tuned = Trainer(natural, tmp_path / "natural", torch.device("cpu"), quiet=True)
    assert tuned.fit().training["started_from"] == {
        "run": "natural-gray", "trained_steps": 30000, "train_seconds": 6648.6}


def conv_arch(width: int, **changes) -> dict:
    return {"type": "ConvEnergy", "channels": 1, "width": width, "levels": 3, "blocks": 2,
            **changes}


@pytest.mark.parametrize("head", ["linear", "residual"])
def test_a_widened_conv_energy_computes_the_trained_energy_and_its_gradient(head):
    torch.manual_seed(0)
    trained, wide = build_net(conv_arch(4, head=head)), build_net(conv_arch(8, head=head))
    state = widen_state(trained.state_dict(), wide.state_dict())
    wide.load_state_dict(state)
    x = torch.randn(3, 1, 20, 20, requires_grad=True)
    (g_trained,) = torch.autograd.grad(trained(x).sum(), x)
    (g_wide,) = torch.autograd.grad(wide(x).sum(), x)
    assert torch.allclose(trained(x), wide(x), atol=1e-5)
    assert torch.allclose(g_trained, g_wide, atol=1e-5)
    # level 0 of a block: trained rows read no new channel, new rows are alive, new biases are 0
    weight, bias = state["enc.0.0.conv1.weight"], state["enc.0.0.conv1.bias"]
    assert torch.equal(weight[:4, :4], trained.state_dict()["enc.0.0.conv1.weight"])
    assert not weight[:4, 4:].any() and weight[4:].abs().min() > 0
    assert not bias[4:].any()
    assert not state["head.weight"][:, 4:].any()  # V reads the trained channels alone


def test_only_a_wider_conv_energy_of_the_same_shape_otherwise_can_be_widened():
    assert can_widen(conv_arch(16), conv_arch(24))
    assert not can_widen(conv_arch(16), conv_arch(16))
    assert not can_widen(conv_arch(24), conv_arch(16))
    assert not can_widen(conv_arch(16), conv_arch(24, levels=4))
    assert not can_widen(conv_arch(16), conv_arch(24, blocks=3))
    assert not can_widen(conv_arch(16), conv_arch(24, head="residual"))  # another energy
    assert can_widen(conv_arch(16), conv_arch(24, head="linear"))  # the default, named
    assert can_widen(conv_arch(16, head="residual"), conv_arch(24, head="residual"))
    assert not can_widen({"type": "MLPEnergy", "dim": 2, "width": 8},
                         {"type": "MLPEnergy", "dim": 2, "width": 16})


def test_a_fine_tune_of_the_shipped_prior_can_widen_it_and_the_new_channels_learn(tmp_path):
    config = TrainConfig.from_dict(dict(
        data="patches:natural-gray", crop=16, batch_size=2, negatives=2, langevin_steps=1,
        steps=1, phase2_steps=0, init_from="natural-gray", arch=conv_arch(20)))
    trainer = Trainer(config, tmp_path / "wide", torch.device("cpu"), quiet=True)
    shipped = load_prior("natural-gray")
    x = torch.rand(2, 1, 24, 24)
    trainer.start_from("natural-gray")
    assert torch.allclose(trainer.net(x), shipped.net(x), rtol=1e-5, atol=1e-4)
    prior = trainer.fit()
    assert trainer.net.state_dict()["head.weight"][:, 16:].abs().min() > 0  # no dead channels
    assert prior.training["started_from"]["widened_from_width"] == 16
    assert "min), widened from width 16: " in prior.card["training_time"]
    with pytest.raises(UserError, match="same channels, levels and blocks"):
        Trainer(TrainConfig.from_dict(dict(config.to_dict(), arch=conv_arch(20, levels=2))),
                tmp_path / "other", torch.device("cpu"), quiet=True).fit()


def test_data_the_architecture_cannot_take_is_a_clear_error_before_anything_is_written(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    np.save(photos / "colour.npy", np.random.default_rng(0).random((3, 40, 40)))
    gray_net = {"type": "ConvEnergy", "channels": 1, "width": 4, "levels": 2}
    config = dict(data=f"folder:{photos}", crop=16, batch_size=2, negatives=2, langevin_steps=1,
                  steps=1, phase2_steps=0, arch=gray_net)
    with pytest.raises(UserError, match="3 channel.* takes 1 .*--channels"):
        Trainer(TrainConfig.from_dict(config), tmp_path / "run", torch.device("cpu"), quiet=True)
    assert not (tmp_path / "run").exists()
    as_gray = Trainer(TrainConfig.from_dict(dict(config, channels=1)), tmp_path / "run",
                      torch.device("cpu"), quiet=True)
    assert as_gray.dataset.channels == 1 and as_gray.fit().channels == 1
    with pytest.raises(UserError, match="channels must be 1 .* or 3"):
        TrainConfig.from_dict(dict(config, channels=2))
    with pytest.raises(UserError, match="dimension 2, the architecture MLPEnergy takes 3"):
        Trainer(toy_config(arch={"type": "MLPEnergy", "dim": 3}), tmp_path / "vectors",
                torch.device("cpu"), quiet=True)


def test_a_warm_restart_from_another_architecture_or_no_run_is_a_clear_error(tmp_path):
    Trainer(toy_config(steps=20, phase2_steps=0), tmp_path / "first", torch.device("cpu"),
            quiet=True).fit()
    wider = toy_config(arch={"type": "MLPEnergy", "dim": 2, "width": 64, "depth": 2},
                       init_from=str(tmp_path / "first"))
    with pytest.raises(UserError, match="architecture"):
        Trainer(wider, tmp_path / "second", torch.device("cpu"), quiet=True).fit()
    with pytest.raises(UserError, match="holds no checkpoint.* not a prior"):
        Trainer(toy_config(init_from=str(tmp_path / "nothing")), tmp_path / "third",
                torch.device("cpu"), quiet=True).fit()
    with pytest.raises(UserError, match="maps data x to 2.0 x"):  # images on [-1, 1], not 2-D
        Trainer(toy_config(init_from="natural-gray"), tmp_path / "fourth", torch.device("cpu"),
                quiet=True).fit()
    assert not any((tmp_path / run).exists() for run in ("second", "third", "fourth"))


def test_starting_over_an_existing_run_without_resume_is_refused(tmp_path):
    (tmp_path / "checkpoint.safetensors").write_bytes(b"x")
    result = subprocess.run(train_command(tmp_path), capture_output=True, text=True)
    assert result.returncode == 2 and "--resume" in result.stderr


def test_resuming_from_a_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint.safetensors").write_bytes(b"\0" * 64)
    result = subprocess.run(train_command(tmp_path, "--resume"), capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("error: corrupt training checkpoint")
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="Fashion-MNIST not installed")
def test_a_short_fashion_mnist_run_lowers_the_loss_and_writes_a_sample_grid(tmp_path):
    config = TrainConfig.from_dict(dict(
        data="fashion-mnist", steps=60, phase2_steps=0, batch_size=32, log_every=5,
        arch={"type": "GlobalEnergy", "channels": 1, "image_size": [28, 28], "width": 8,
              "hidden": 32}, langevin_steps=10, lr=2e-3, warmup=10))
    Trainer(config, tmp_path, torch.device("cpu"), quiet=True).fit()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert records[-1]["flow"] < records[0]["flow"]
    assert (tmp_path / "plots" / "samples_final.png").stat().st_size > 1000


DDP_SCRIPT = """
import torch, torch.distributed as dist, sys
from em_inverse.training import TrainConfig, Trainer
config = TrainConfig.from_dict(dict(data="toy2d:moons", steps=30, batch_size=64,
                                    langevin_steps=5, checkpoint_every=10, seed=0))
trainer = Trainer(config, sys.argv[1], torch.device("cpu"), quiet=True)
trainer.fit()
flat = torch.cat([p.detach().flatten() for p in trainer.net.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, flat)
assert torch.equal(gathered[0], gathered[1]), "ranks diverged"
first = trainer.data_batch(4)
others = [torch.zeros_like(first) for _ in range(2)]
dist.all_gather(others, first)
assert not torch.equal(others[0], others[1]), "ranks saw the same data"
if dist.get_rank() == 0:
    print("DDP-OK", dist.get_world_size())
dist.destroy_process_group()
"""


def test_torchrun_with_two_cpu_processes_trains_one_shared_model(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--master_port=29533", str(script), str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert "DDP-OK 2" in result.stdout, result.stderr[-2000:]
    assert (tmp_path / "run" / "weights.safetensors").exists()


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_committed_training_config_loads_and_builds_its_network(path):
    from em_inverse.priors.nets import build_net

    config = TrainConfig.from_file(path)
    assert config.name == path.stem and config.steps > config.phase2_length
    build_net(config.arch)
