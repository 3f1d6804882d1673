"""SPEC 3: energy nets, EnergyPrior, and prior folders that load safely or fail clearly."""
import copy
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from em_inverse.errors import UserError
from em_inverse.operators import MIN_SIGMA
from em_inverse.priors.nets import OpponentEnergy, _ReplicatePad, build_net, fold_edges
from em_inverse.priors import (ConvEnergy, EnergyPrior, GlobalEnergy, MLPEnergy, load_prior,
                               save_prior)
from em_inverse.priors.colour import opponent_prior


def tiny_conv_prior(name="tiny") -> EnergyPrior:
    torch.manual_seed(0)
    return EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name=name)


def test_conv_energy_is_a_sum_of_per_pixel_terms_and_works_at_any_size():
    net = ConvEnergy(channels=3, width=8, levels=3)
    for size in [(17, 23), (40, 40), (64, 33)]:
        x = torch.rand(2, 3, *size)
        assert net(x).shape == (2,)
        assert torch.allclose(net(x), net.pixel_energy(x).flatten(1).sum(1))


def test_the_residual_head_is_half_a_learned_weight_times_the_squared_residual_per_pixel():
    """head="residual": e = alpha/2 ||x - N(x)||^2 per pixel, alpha = exp(log_alpha); the net
    rebuilds from its config, and a linear-head net's config does not name its head."""
    torch.manual_seed(0)
    net = ConvEnergy(channels=3, width=8, levels=2, head="residual")
    x = torch.rand(2, 3, 19, 24)
    with torch.no_grad():
        net.log_alpha.fill_(0.7)
        read_out = net.head(torch.nn.functional.silu(net.features(x)))  # N(x): (2, 3, 19, 24)
        expected = 0.5 * torch.tensor(0.7).exp() * (x - read_out).square().sum(1, keepdim=True)
        assert torch.allclose(net.pixel_energy(x), expected, atol=1e-5)
        assert (net(x) >= 0).all()
    rebuilt = build_net(net.config)
    rebuilt.load_state_dict(net.state_dict())
    assert net.config["head"] == "residual" and torch.equal(rebuilt(x), net(x))
    assert "head" not in ConvEnergy(channels=1, width=8, levels=2).config
    with pytest.raises(ValueError, match="head"):
        ConvEnergy(channels=1, width=8, levels=2, head="quadratic")


@pytest.mark.parametrize("size", [(5, 7), (1, 4), (1, 1)])
def test_the_cuda_padding_backward_is_the_exact_adjoint_of_replicate_padding(size):
    """On CUDA, ConvEnergy's replicate padding folds gradients back with ``fold_edges`` (no
    atomics): it must be exactly torch's backward, and differentiable for the training loss."""
    h = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, size[0] + 2, size[1] + 2, dtype=torch.float64)
    reference, = torch.autograd.grad(torch.nn.functional.pad(h, (1, 1, 1, 1), "replicate"), h, g)
    assert torch.allclose(fold_edges(g), reference, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(_ReplicatePad.apply, (h,))
    assert torch.autograd.gradgradcheck(_ReplicatePad.apply, (h,))


def test_global_energy_maps_fixed_size_images_to_one_scalar_and_rejects_other_sizes():
    net = GlobalEnergy(channels=1, image_size=(28, 28), width=8, hidden=16)
    assert net(torch.rand(5, 1, 28, 28)).shape == (5,)
    with pytest.raises(ValueError, match="28"):
        net(torch.rand(5, 1, 32, 32))


def test_global_energy_with_a_unet_body_sums_its_pixel_energies_plus_a_global_head():
    net = GlobalEnergy(channels=1, image_size=(28, 28), width=8, hidden=16, body="unet")
    x = torch.rand(3, 1, 28, 28)
    e = net.body.pixel_energy(x).flatten(1)
    assert torch.allclose(net(x), e.sum(1) + net.head(e).squeeze(-1))
    rebuilt = build_net(net.config)
    rebuilt.load_state_dict(net.state_dict())
    assert torch.equal(rebuilt(x), net(x))
    with pytest.raises(ValueError, match="body"):
        GlobalEnergy(body="transformer")


def test_mlp_energy_maps_vectors_to_scalars():
    assert MLPEnergy(dim=2).forward(torch.randn(7, 2)).shape == (7,)


def test_prior_gradient_is_in_caller_units_and_matches_finite_differences():
    prior = tiny_conv_prior().frozen().double()
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    v, g = prior.energy_and_grad(x)
    direction = torch.randn_like(x)
    h = 1e-6
    numeric = (prior.energy(x + h * direction) - prior.energy(x - h * direction)) / (2 * h)
    assert torch.allclose((g * direction).sum(), numeric, rtol=1e-5)
    assert torch.allclose(prior.grad(x), g / prior.eps)
    value, grad = prior.value_and_grad(x)
    assert torch.allclose(value, v / prior.eps) and torch.allclose(grad, g / prior.eps)


def test_on_the_cpu_a_prior_keeps_its_conv_weights_channels_last_and_grad_v_does_not_change():
    net = ConvEnergy(channels=1, width=8, levels=2)
    reference = copy.deepcopy(net)  # PyTorch's default NCHW weights
    prior = EnergyPrior(net, eps=0.05).frozen()
    convs = [p for p in prior.net.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not reference.enc[0][0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 1, 24, 20)
    _, g = prior.energy_and_grad(x)
    x_ = prior.to_internal(x).requires_grad_(True)
    (g_nchw,) = torch.autograd.grad(reference(x_).sum(), x_)
    assert g.is_contiguous() and torch.allclose(g, g_nchw * prior.scale, rtol=1e-5, atol=1e-6)
    prior.double()  # a move keeps the layout (EnergyPrior._apply)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in prior.net.parameters()
               if p.dim() == 4)
    prior.to("meta")  # any other device (CUDA in test_cuda.py) gets PyTorch's default NCHW back
    assert all(p.is_contiguous() for p in prior.net.parameters())
    assert not prior.net.enc[0][0].conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_save_and_load_round_trip_keeps_energies_and_the_model_card(tmp_path):
    prior = tiny_conv_prior()
    prior.card = {"data": "unit test"}
    save_prior(prior, tmp_path / "p")
    loaded = load_prior(tmp_path / "p")
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(loaded.energy(x), prior.energy(x))
    assert loaded.card == {"data": "unit test"} and loaded.eps == prior.eps
    assert not any(p.requires_grad for p in loaded.net.parameters())


@pytest.fixture
def saved(tmp_path) -> Path:
    return save_prior(tiny_conv_prior(), tmp_path / "prior")


def corrupt_json(folder):
    (folder / "config.json").write_text("{not json")


def truncate_weights(folder):
    path = folder / "weights.safetensors"
    path.write_bytes(path.read_bytes()[:100])


def zero_weights(folder):
    path = folder / "weights.safetensors"
    path.write_bytes(bytes(path.stat().st_size))


def wrong_shapes(folder):
    config = json.loads((folder / "config.json").read_text())
    config["architecture"]["width"] = 16
    (folder / "config.json").write_text(json.dumps(config))


def missing_key(folder):
    config = json.loads((folder / "config.json").read_text())
    del config["eps"]
    (folder / "config.json").write_text(json.dumps(config))


CORRUPTIONS = [corrupt_json, truncate_weights, zero_weights, wrong_shapes, missing_key]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_corrupt_prior_folders_raise_one_clear_user_error(saved, corrupt):
    corrupt(saved)
    with pytest.raises(UserError) as info:
        load_prior(saved)
    assert "\n" not in str(info.value) and str(saved) in str(info.value)


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_cli_reports_corrupt_priors_with_exit_code_2_and_no_traceback(saved, corrupt, tmp_path):
    corrupt(saved)
    out = tmp_path / "s.png"
    result = subprocess.run([sys.executable, "-m", "em_inverse", "sample", "--prior", str(saved),
                             "-n", "2", "--size", "8", "-o", str(out), "--quiet"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and not out.exists()


def test_load_prior_reads_devices_like_the_command_line_and_refuses_an_empty_name():
    assert load_prior("natural-gray", device="auto").device.type in ("cpu", "cuda")
    with pytest.raises(UserError, match="unknown device"):
        load_prior("natural-gray", device="gpu")
    with pytest.raises(UserError, match="no prior named"):
        load_prior("")


def test_unknown_prior_name_is_a_user_error():
    with pytest.raises(UserError, match="unknown prior"):
        load_prior("no-such-prior")


def test_the_package_never_unpickles():
    package = Path(__file__).parents[1] / "em_inverse"
    offenders = [str(p) for p in package.rglob("*.py")
                 if any(bad in p.read_text() for bad in ("torch.load(", "pickle.load", "import pickle"))]
    assert offenders == []


def opponent_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) rgb -> (3B, 1, H, W): luminance, red-blue, green-magenta, scaled by 1/sqrt(3)
    each (an orthogonal transform up to that scale), chroma centred on mid-gray."""
    r, g, b = x.unbind(1)
    u = torch.stack([(r + g + b) / 3, 0.5 + (r - b) / 6**0.5, 0.5 + (r - 2 * g + b) / 18**0.5])
    return u.transpose(0, 1).reshape(-1, 1, *x.shape[-2:])


def test_the_opponent_prior_is_the_gray_energy_summed_over_opponent_channels(tmp_path):
    gray = tiny_conv_prior()
    colour = opponent_prior(gray)
    save_prior(colour, tmp_path / "rgb")
    loaded = load_prior(tmp_path / "rgb")
    x = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    per_channel = gray.double().energy(opponent_channels(x)).view(2, 3).sum(1)
    assert torch.allclose(colour.double().energy(x), per_channel)
    assert torch.equal(loaded.double().energy(x), colour.energy(x))
    assert loaded.channels == 3 and loaded.eps == gray.eps


def test_a_chroma_weight_scales_the_two_chroma_terms_and_survives_saving(tmp_path):
    gray = tiny_conv_prior()
    colour = opponent_prior(gray, chroma_weight=2.5)
    save_prior(colour, tmp_path / "rgb")
    loaded = load_prior(tmp_path / "rgb")
    x = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    per_channel = gray.double().energy(opponent_channels(x)).view(2, 3)
    expected = per_channel[:, 0] + 2.5 * per_channel[:, 1:].sum(1)
    assert torch.allclose(colour.double().energy(x), expected)
    assert torch.equal(loaded.double().energy(x), colour.energy(x))
    internal = colour.to_internal(x)
    assert torch.allclose(colour.net.pixel_energy(internal).sum((1, 2, 3)), colour.net(internal))
    with pytest.raises(ValueError, match="chroma_weight"):
        OpponentEnergy(gray.net.config, chroma_weight=0.0)


def test_through_the_opponent_prior_colour_noise_is_gray_noise_at_a_third_of_the_variance():
    """The transform is orthogonal up to 1/sqrt(3): the Tweedie step sigma^2 grad V on the rgb
    image is the step (sigma^2 / 3) grad V_gray on every opponent channel."""
    gray = tiny_conv_prior().double()
    colour = opponent_prior(gray).double()
    x = torch.rand(1, 3, 12, 12, dtype=torch.float64)
    sigma = 0.1
    rgb_step = opponent_channels(x - sigma**2 * colour.energy_and_grad(x)[1])
    u = opponent_channels(x)
    gray_step = u - sigma**2 / 3 * gray.energy_and_grad(u)[1]
    assert torch.allclose(rgb_step, gray_step, atol=1e-12)
    # so the colour denoiser serves at noise levels sqrt(3) times those the gray one learned
    recipe = {"dsm_weight": 1.0, "dsm_sigma_min": 0.02, "dsm_sigma_max": 0.5}
    low, high = gray.copy_with(training=recipe).denoising_levels
    colour_low, colour_high = opponent_prior(gray.copy_with(training=recipe)).denoising_levels
    assert (colour_low, colour_high) == pytest.approx((3**0.5 * low, 3**0.5 * high))
    averaged = opponent_prior(gray.copy_with(training=recipe)).symmetrized("flips")
    assert averaged.denoising_levels == pytest.approx((colour_low, colour_high))


def test_only_one_channel_priors_centred_on_mid_gray_make_opponent_priors():
    with pytest.raises(UserError, match="one-channel"):
        opponent_prior(EnergyPrior(ConvEnergy(channels=3, width=8, levels=2), name="rgb",
                                   data={"kind": "image", "channels": 3}))
    with pytest.raises(UserError, match="mid-gray"):
        opponent_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), scale=1.0,
                                   offset=0.0, name="unit"))


def test_the_opponent_command_builds_a_colour_prior_and_never_overwrites_one_silently(saved,
                                                                                     tmp_path):
    out = tmp_path / "rgb"
    command = [sys.executable, "-m", "em_inverse", "opponent", str(saved), str(out), "--quiet"]
    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
    assert load_prior(out).channels == 3
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2 and "--force" in again.stderr
    assert subprocess.run(command + ["--force"], capture_output=True).returncode == 0
    weighted = subprocess.run(command + ["--force", "--chroma-weight", "2"], capture_output=True)
    assert weighted.returncode == 0 and load_prior(out).net.config["chroma_weight"] == 2.0
    refused = subprocess.run(command + ["--force", "--chroma-weight", "0"], capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "--chroma-weight must be positive" in refused.stderr


def test_the_opponent_command_refuses_an_out_that_is_a_file_or_lies_in_a_missing_folder(
        saved, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for out, message in ((tmp_path / "file", "is a file"),
                         (tmp_path / "no" / "such" / "rgb", "does not exist")):
        result = subprocess.run([sys.executable, "-m", "em_inverse", "opponent", str(saved),
                                 str(out)], capture_output=True, text=True)
        assert result.returncode == 2 and message in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("name", ["natural-gray", "natural-rgb"])
def test_the_bundled_natural_priors_have_settings_for_scattered_pixels_and_for_holes(name):
    """Brush strokes of 8 px (the default width at 128 px) are holes; 50% random pixels not."""
    from em_inverse import operators as op
    from em_inverse.solvers import tuned_defaults

    prior = load_prior(name)
    shape = (prior.channels, 128, 128)
    g = torch.Generator().manual_seed(0)
    for mask, entry in ((op.random_mask(shape[1:], 0.5, g), "inpaint"),
                        (op.box_mask(shape[1:]), "inpaint-hole"),
                        (op.stroke_mask(shape[1:], g), "inpaint-hole")):
        key, settings = tuned_defaults(prior, op.inpainting(mask, shape))
        assert key == entry and settings["method"] in ("map", "hqs")


def test_priors_prints_each_model_card_as_short_lines_with_its_defaults_and_numbers():
    from typer.testing import CliRunner
    import typer

    from em_inverse.cli import commands_prior
    from em_inverse.priors import list_priors

    app = typer.Typer(pretty_exceptions_enable=False)
    commands_prior.register(app)
    result = CliRunner().invoke(app, ["priors"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) < 140  # no JSON dumps
    entry_lines = []
    for line in lines:
        if line.startswith(" " * 21) and entry_lines:
            entry_lines[-1] += " " + line.strip()
        else:
            entry_lines.append(line)
    for config in list_priors():
        assert f"{config['name']}: {config['architecture']['type']}" in result.output
        for task, entry in config["solve_defaults"].items():
            # a clean entry says where solve gives way to the settings tuned at 0.01 (a long
            # entry goes on in lines indented under its settings)
            switch = ("" if "below_noise" not in entry else
                      f"(below noise {entry['below_noise']:.2g})" if entry["below_noise"] > MIN_SIGMA
                      else "(never taken: not worth its cost on the tuning crops)")
            assert any(line.split()[:2] == [task, entry["method"] + ":"] and line.endswith(switch)
                       for line in entry_lines)
        for benchmark in config["card"]["benchmark"]:
            for row in benchmark["psnr_db"].values():
                numbers = [v for k, v in row.items() if k != "best classical"]
                assert all(f"{v:.2f}" in result.output for v in numbers)
    headers = [k for k, line in enumerate(lines) if line.lstrip().startswith("task ")]
    assert headers
    for k in headers:  # each table's numbers end under their column names, long task names too
        columns_end = lines[k].index("   best classical")
        for row in itertools.takewhile(lambda line: line.startswith("    "), lines[k + 1:]):
            assert re.match(r"\s+\S+(\s+(\d+\.\d\d|-))+", row).end() == columns_end, row
