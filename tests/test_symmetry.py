"""Symmetrised priors: V_G(x) = mean over g in G of V(g x) is exactly invariant under G, is the
plain average of V over the orbit, and plugs into every solver through ``symmetry=``."""
from __future__ import annotations

import pytest
import torch

from em_inverse.errors import UserError
from em_inverse.operators import denoising
from em_inverse.priors import ConvEnergy, EnergyPrior, GlobalEnergy
from em_inverse.priors.symmetry import GROUP_SIZES, GROUPS, orbit
from em_inverse.solvers import solve


def conv_prior() -> EnergyPrior:
    torch.manual_seed(0)
    return EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny").frozen()


def test_groups_have_1_4_and_8_elements_and_keep_or_transpose_the_shape():
    x = torch.rand(2, 1, 6, 10)
    sizes = {g: len(orbit(x, g)) for g in GROUPS}
    assert sizes == {"none": 1, "flips": 4, "dihedral": 8} == GROUP_SIZES
    shapes = {tuple(image.shape[-2:]) for image in orbit(x, "dihedral")}
    assert shapes == {(6, 10), (10, 6)}


@pytest.mark.parametrize("group", ["flips", "dihedral"])
def test_symmetrized_energy_is_invariant_under_its_group(group):
    prior = conv_prior()
    symmetric = prior.symmetrized(group)
    x = torch.rand(3, 1, 12, 16, dtype=torch.float64)
    prior.net.double()
    energy = symmetric.energy(x)
    for image in orbit(x, group):
        assert torch.allclose(symmetric.energy(image), energy, rtol=1e-10, atol=1e-10)
    plain = prior.energy(x)
    assert not torch.allclose(plain, prior.energy(x.transpose(-2, -1)))  # V itself is not


def test_symmetrized_energy_is_the_average_over_the_orbit():
    prior = conv_prior()
    x = torch.rand(2, 1, 8, 8)
    expected = torch.stack([prior.energy(image) for image in orbit(x, "dihedral")]).mean(0)
    assert torch.allclose(prior.symmetrized("dihedral").energy(x), expected, atol=1e-5)


def test_large_orbits_are_evaluated_in_bounded_batches_with_the_same_result():
    """The memory guard: one backward per batch of at most batch_elements values gives the
    same energy and gradient as one call on the whole orbit."""
    from em_inverse.priors.symmetry import SymmetrizedEnergy

    prior = conv_prior()
    x = torch.rand(2, 1, 8, 12)
    whole = prior.symmetrized("dihedral")
    small = prior.copy_with(net=SymmetrizedEnergy(prior.net, "dihedral", batch_elements=2 * 96))
    assert len(small.net._batches(orbit(x, "dihedral"))) == 8
    assert len(whole.net._batches(orbit(x, "dihedral"))) == 2  # one per shape
    # the budget counts values, channels included: two 256x256 gray images per call, one
    # colour image, but a whole orbit of small images in one
    assert len(whole.net._batches(orbit(torch.zeros(1, 1, 256, 256), "flips"))) == 2
    assert len(whole.net._batches(orbit(torch.zeros(1, 3, 256, 256), "flips"))) == 4
    assert len(whole.net._batches(orbit(torch.zeros(4, 1, 32, 32), "dihedral"))) == 1
    v_whole, g_whole = whole.energy_and_grad(x)
    v_small, g_small = small.energy_and_grad(x)
    assert torch.allclose(v_small, v_whole, atol=1e-5)
    assert torch.allclose(g_small, g_whole, atol=1e-6)
    # and both equal plain autograd through the averaged energy
    with torch.enable_grad():
        x_ = x.clone().requires_grad_(True)
        (g_autograd,) = torch.autograd.grad(whole.energy(x_).sum(), x_)
    assert torch.allclose(g_whole, g_autograd, atol=1e-6)


def test_symmetrizing_leaves_the_original_prior_alone():
    prior = conv_prior()
    net = prior.net
    symmetric = prior.symmetrized("flips")
    assert prior.net is net and symmetric.net is not net
    assert prior.symmetrized("none") is prior
    assert symmetric.num_parameters == prior.num_parameters


def test_dihedral_needs_square_images_for_fixed_size_priors():
    net = GlobalEnergy(channels=1, image_size=(28, 20), width=4, hidden=8)
    prior = EnergyPrior(net, data={"kind": "image", "channels": 1, "image_size": [28, 20]})
    with pytest.raises(ValueError, match="square"):
        prior.symmetrized("dihedral")
    assert prior.symmetrized("flips").energy(torch.rand(2, 1, 28, 20)).shape == (2,)


def test_solve_with_a_symmetry_records_it_and_costs_one_evaluation_per_step():
    prior = conv_prior()
    truth = torch.rand(1, 1, 16, 16)
    physics = denoising(0.1)
    y = physics(truth)
    plain = solve(y, physics, prior, method="hqs", steps=1, progress=False)
    symmetric = solve(y, physics, prior, method="hqs", steps=1, symmetry="dihedral",
                      progress=False)
    assert symmetric.settings["symmetry"] == "dihedral"
    assert plain.settings["symmetry"] == "none"
    assert symmetric.diagnostics.evaluations == plain.diagnostics.evaluations == 1
    assert not torch.allclose(symmetric.estimate, plain.estimate)
    with pytest.raises(UserError, match="symmetry"):
        solve(y, physics, prior, method="hqs", symmetry="rotations", progress=False)


@pytest.mark.parametrize("group", ["none", "flips"])
def test_the_deepinv_cross_check_runs_the_symmetry_that_our_map_used(group, monkeypatch):
    import deepinv.optim

    from em_inverse.bench.baselines import Problem
    from em_inverse.bench.methods import Case, run_deepinv_pgd
    from em_inverse.priors.symmetry import SymmetrizedEnergy

    built = []
    real_builder = deepinv.optim.optim_builder

    def spy(*args, prior, **kwargs):
        built.append(prior)
        return real_builder(*args, prior=prior, **kwargs)

    monkeypatch.setattr(deepinv.optim, "optim_builder", spy)
    prior = conv_prior()
    x = torch.rand(1, 1, 12, 12)
    physics = denoising(0.1)
    case = Case(physics(x), physics, Problem("denoise", 0.1, tuple(x.shape), border=0), x,
                prior, options={"deepinv": {"steps": 2, "hessian_iterations": 1,
                                            "symmetry": group}})
    run_deepinv_pgd(case)
    net = built[0].net
    if group == "none":
        assert net is prior.net
    else:
        assert isinstance(net, SymmetrizedEnergy) and net.group == group
