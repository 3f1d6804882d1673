"""Large images: grad V tile by tile equals grad V of the whole image (``priors.tiling``)."""
import pytest
import torch

from em_inverse.priors import ConvEnergy, EnergyPrior, tiling
from em_inverse.priors.nets import OpponentEnergy
from em_inverse.priors.tiling import tile_spans, tiled_energy_and_grad

ARCHS = [dict(levels=3, blocks=2), dict(levels=2, blocks=1), dict(levels=4, blocks=1),
         dict(levels=3, blocks=2, head="residual")]


def whole_image(net, x):
    x = x.clone().requires_grad_(True)
    v = net(x)
    (g,) = torch.autograd.grad(v.sum(), x)
    return v.detach(), g


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_no_pixel_reaches_further_than_the_receptive_radius(arch):
    torch.manual_seed(0)
    net = ConvEnergy(channels=1, width=4, **arch).double()
    size = 2 * net.receptive_radius + 9
    x = torch.rand(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    centre = size // 2
    (g,) = torch.autograd.grad(net.pixel_energy(x)[0, 0, centre, centre], x)
    rows, cols = (g[0, 0].abs() > 0).nonzero().T
    reach = max((rows - centre).abs().max(), (cols - centre).abs().max())
    assert 0 < reach <= net.receptive_radius


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_tiles_with_their_context_give_the_whole_images_energy_and_gradient(arch):
    torch.manual_seed(1)
    net = ConvEnergy(channels=1, width=4, **arch).double()
    x = torch.rand(2, 1, 75, 101, dtype=torch.float64) * 2 - 1  # odd sizes, partial pools
    v, g = whole_image(net, x)
    for tile in (16, 40):
        v_tiled, g_tiled = tiled_energy_and_grad(net, x, tile=tile)
        assert torch.allclose(v_tiled, v, rtol=1e-12) and torch.allclose(g_tiled, g, atol=1e-12)


@pytest.mark.parametrize("chroma_weight", [1.0, 2.5])
def test_the_colour_energy_tiles_one_opponent_channel_at_a_time(chroma_weight):
    torch.manual_seed(2)
    net = OpponentEnergy({"type": "ConvEnergy", "channels": 1, "width": 4, "levels": 3},
                         chroma_weight=chroma_weight).double()
    x = torch.rand(2, 3, 60, 52, dtype=torch.float64) * 2 - 1
    v, g = whole_image(net, x)
    crops = []
    gray_energy = net.channel_net.pixel_energy
    net.channel_net.pixel_energy = lambda crop: crops.append(crop.shape) or gray_energy(crop)
    v_tiled, g_tiled = tiled_energy_and_grad(net, x, tile=24)
    assert torch.allclose(v_tiled, v, rtol=1e-12) and torch.allclose(g_tiled, g, atol=1e-12)
    # a colour tile's working set is a gray one's: one channel of one image per crop
    assert len(crops) == 2 * 3 * 3 * 3 and all(shape[:2] == (1, 1) for shape in crops)


def test_crops_start_on_the_pooling_grid_and_cover_their_tile_with_context():
    for start, end, crop_start, crop_end in tile_spans(100, 32, context=10, alignment=4):
        assert crop_start % 4 == 0 and crop_start <= max(0, start - 10)
        assert crop_end == min(100, end + 10)


@pytest.mark.parametrize("group", ["none", "flips", "dihedral"])
def test_a_prior_tiles_batches_above_its_budget_with_or_without_symmetry(group, monkeypatch):
    torch.manual_seed(3)
    prior = EnergyPrior(ConvEnergy(channels=1, width=4, levels=3), eps=0.05).frozen().double()
    prior = prior.symmetrized(group)
    x = torch.rand(2, 1, 90, 70, dtype=torch.float64)
    v, g = prior.energy_and_grad(x)
    monkeypatch.setattr(tiling, "max_values", lambda device: 1000)
    called = []
    monkeypatch.setattr(tiling, "tiled_energy_and_grad",
                        lambda net, z: called.append(z.shape) or tiled_energy_and_grad(net, z, 32))
    v_tiled, g_tiled = prior.energy_and_grad(x)
    assert len(called) == {"none": 1, "flips": 4, "dihedral": 8}[group]
    assert torch.allclose(v_tiled, v, rtol=1e-12) and torch.allclose(g_tiled, g, atol=1e-10)


def test_the_cpu_tiles_smaller_batches_than_a_gpu_whose_only_limit_is_memory(monkeypatch):
    monkeypatch.setattr(tiling, "freed_memory_kept", lambda: False)  # glibc's default policy
    cpu, cuda = tiling.max_values(torch.device("cpu")), tiling.max_values(torch.device("cuda"))
    assert cpu == tiling.CPU_MAX_VALUES < cuda == tiling.MAX_VALUES
    # 8 gray chains of 256 px run in one pass, a 1024-px gray image in tiles
    assert 8 * 256 * 256 <= cpu < 1024 * 1024


def test_with_freed_memory_kept_the_cpu_tiles_only_to_bound_memory(monkeypatch):
    monkeypatch.setattr(tiling, "freed_memory_kept", lambda: True)  # the command line's policy
    cpu, cuda = tiling.max_values(torch.device("cpu")), tiling.max_values(torch.device("cuda"))
    assert tiling.CPU_MAX_VALUES < cpu == tiling.CPU_KEPT_MAX_VALUES < cuda
    # a 768-px gray image and a 512-px colour one run in one pass, a 1024-px gray image in tiles
    assert 3 * 512 * 512 <= cpu and 768 * 768 <= cpu < 1024 * 1024
