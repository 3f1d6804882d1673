"""The switch stage of the tuner: up to which noise level ``solve`` takes a prior's
``FAMILY-clean`` settings, measured where the clean and the noisy entry cross."""
from __future__ import annotations

import pytest
import torch

from em_inverse import operators as op
from em_inverse import solve
from em_inverse.bench.clean_switch import SWITCH_NOISE, choose_switch, switch_candidates
from em_inverse.operators import MIN_SIGMA

FLOOR_AND_MIDPOINTS = [MIN_SIGMA, (MIN_SIGMA * 0.005) ** 0.5, (0.005 * 0.0075) ** 0.5,
                       (0.0075 * 0.01) ** 0.5, 0.01]


def _exact(noise=SWITCH_NOISE):
    """Per level, one crop whose estimated level is the true one (at least the floor)."""
    return [[max(level, MIN_SIGMA)] for level in noise]


def test_the_switch_candidates_lie_between_the_levels_solve_can_tell_apart():
    # without noise and at 0.0025 solve sees the same floor, 1/255: nothing lies between them
    assert switch_candidates() == pytest.approx(FLOOR_AND_MIDPOINTS)


def test_the_clean_entry_serves_up_to_where_it_stops_winning():
    # natural-gray's deblurring on its tuning crops: the clean entry wins by 0.43 dB without
    # noise, loses 0.34 at 0.0025 (the same level to solve: the two add up to a small gain)
    # and 3.05 at 0.005
    clean = [[33.24], [32.26], [28.98], [27.83], [27.00]]
    noisy = [[32.81], [32.60], [32.03], [31.62], [31.32]]
    below, means, _ = choose_switch(SWITCH_NOISE, clean, noisy, _exact())
    assert below == pytest.approx(FLOOR_AND_MIDPOINTS[1])
    assert max(means.values()) == means[below]
    # a clean entry that wins up to 0.0075 serves up to between 0.0075 and 0.01
    clean = [[34.0], [34.0], [34.0], [34.0], [30.0]]
    noisy = [[33.0], [33.0], [33.0], [33.0], [33.0]]
    assert choose_switch(SWITCH_NOISE, clean, noisy, _exact())[0] == \
        pytest.approx(FLOOR_AND_MIDPOINTS[3])


def test_a_clean_entry_that_never_wins_is_never_taken_and_ties_go_to_the_noisy_entry():
    noisy = [[33.0]] * 5
    assert choose_switch(SWITCH_NOISE, [[32.0]] * 5, noisy, _exact())[0] == MIN_SIGMA
    assert choose_switch(SWITCH_NOISE, noisy, noisy, _exact())[0] == MIN_SIGMA


def test_the_switch_also_serves_the_levels_the_noise_estimate_reads():
    # the clean entry wins by 1 dB at the floor and loses 0.1 dB at 0.005; by the true levels
    # the switch would lie just above the floor, but the estimate reads texture as noise and
    # puts the noiseless measurements at 0.0055: the switch moves above 0.005 to serve them
    clean = [[34.0], [34.0], [32.9], [31.0], [30.0]]
    noisy = [[33.0], [33.0], [33.0], [33.0], [33.0]]
    biased = [[0.0055], [0.0055], [0.007], [0.009], [0.011]]
    assert choose_switch(SWITCH_NOISE, clean, noisy, _exact())[0] == \
        pytest.approx(FLOOR_AND_MIDPOINTS[1])
    assert choose_switch(SWITCH_NOISE, clean, noisy, biased)[0] == \
        pytest.approx(FLOOR_AND_MIDPOINTS[2])


def test_a_costlier_clean_entry_must_gain_a_tenth_of_a_db_per_doubling_of_the_cost():
    # natural-rgb's noiseless super-resolution (its tuning at commit 7424236): MAP (about 100
    # grad V) gains a little over HQS (40) at 0 and 0.0025 and loses above; by PSNR alone the
    # switch lies above the floor
    clean = [[32.77], [32.69], [32.33], [31.87], [31.37]]
    noisy = [[32.72], [32.66], [32.49], [32.26], [32.03]]
    by_psnr, means, costs = choose_switch(SWITCH_NOISE, clean, noisy, _exact())
    assert by_psnr == pytest.approx(FLOOR_AND_MIDPOINTS[1])
    assert costs == {below: 1.0 for below in means}  # no costs given: all alike
    below, means, costs = choose_switch(SWITCH_NOISE, clean, noisy, _exact(), 100.0, 40.0,
                                        db_per_doubling=0.1)
    assert below == MIN_SIGMA  # 0.016 dB on average for 1.6x the mean cost: not worth it
    assert costs[MIN_SIGMA] == 40.0 and costs[by_psnr] == pytest.approx(0.4 * 100 + 0.6 * 40)
    # the same gain at the same cost is taken, and a gain of 0.1 dB per doubling is worth it
    assert choose_switch(SWITCH_NOISE, clean, noisy, _exact(), 40.0, 40.0, 0.1)[0] == by_psnr
    doubling = [[33.5], [33.5], [30.0], [30.0], [30.0]]  # +0.81 dB where taken: +0.32 on average
    cost = [[120.0], [120.0], [40.0], [40.0], [40.0]]  # the mean cost x1.8 (0.085 dB)
    assert choose_switch(SWITCH_NOISE, doubling, noisy, _exact(), cost, 40.0, 0.1)[0] == \
        pytest.approx(FLOOR_AND_MIDPOINTS[1])


def test_a_solves_cost_counts_every_image_of_its_symmetry_orbit():
    from conftest import quadratic_prior
    from test_solvers import MU, S

    from em_inverse.bench.clean_switch import grad_v_cost

    prior = quadratic_prior(MU, S)
    x = torch.full((1, 1, 16, 16), MU)
    physics = op.build_operator("deblur", x.shape, noise=0.01, kernel="gaussian:1")
    plain = solve(physics.A(x), physics, prior, method="hqs", steps=5, progress=False)
    flips = solve(physics.A(x), physics, prior, method="hqs", steps=5, symmetry="flips",
                  progress=False)
    assert grad_v_cost(plain) == plain.diagnostics.evaluations == 5
    assert grad_v_cost(flips) == 4 * 5


@pytest.mark.parametrize("family,options", [("deblur", {"kernel": "gaussian:1"}),
                                            ("superres", {"factor": 2})])
def test_solve_takes_the_clean_entry_below_its_measured_switch(family, options):
    from conftest import quadratic_prior
    from test_solvers import MU, S

    prior = quadratic_prior(MU, S)
    x = torch.full((1, 1, 32, 32), MU)
    for below, cases in ((MIN_SIGMA, ((0.0, family),)),
                         (0.009, ((0.0, f"{family}-clean"), (0.008, f"{family}-clean"),
                                  (0.0095, family)))):
        prior.solve_defaults = {family: {"method": "hqs", "hqs": {"steps": 3}},
                                f"{family}-clean": {"method": "map", "map": {"steps": 4},
                                                    "below_noise": below}}
        for noise, entry in cases:
            physics = op.build_operator(family, x.shape, noise=noise, **options)
            chosen = solve(physics.A(x), physics, prior, progress=False)
            assert chosen.settings["tuned_defaults"] == entry, (below, noise)


NOISY = {"method": "hqs", "hqs": {"steps": 3, "sigma_start": 0.1, "prior_weight": 0.5}}
CLEAN = {"method": "map", "map": {"prior_weight": 0.25, "steps": 3}}


def _tiny_prior_with_both_deblur_entries(folder, clean=CLEAN):
    from em_inverse.priors import ConvEnergy, EnergyPrior, save_prior

    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                           solve_defaults={"deblur": NOISY, "deblur-clean": clean}), folder)


def test_the_tuner_measures_the_switch_and_stores_it_with_its_table(tmp_path):
    from em_inverse.bench import tuning
    from em_inverse.bench.tuning_stages import SYMMETRY_GAIN_DB
    from em_inverse.priors import load_prior

    noisy, clean = NOISY, CLEAN
    folder = tmp_path / "prior"
    _tiny_prior_with_both_deblur_entries(folder, {**clean, "below_noise": 0.0123})  # stale
    result = tuning.tune_prior(load_prior(str(folder)), size=32, count=1,
                               families=("deblur-clean",), skip_grid=True)
    table = result["switches"]["deblur-clean"]
    # the entry returned (and printed by the tune command) carries the switch measured now
    assert result["solve_defaults"]["deblur-clean"]["below_noise"] == table["below_noise"]
    assert table["below_noise"] != 0.0123
    assert table["noise"] == list(SWITCH_NOISE)
    assert len(table["clean"]) == len(table["noisy"]) == len(table["estimated"]) == 5
    expected, _, _ = choose_switch(SWITCH_NOISE, [[v] for v in table["clean"]],
                                   [[v] for v in table["noisy"]],
                                   [[v] for v in table["estimated"]],
                                   [[c] for c in table["clean_cost"]],
                                   [[c] for c in table["noisy_cost"]], SYMMETRY_GAIN_DB)
    assert table["below_noise"] == pytest.approx(expected, rel=1e-3)  # one crop: its means
    assert "superres-clean" not in result["switches"]  # a family with one entry has none
    tuning.write_tuning(folder, result)
    written = load_prior(str(folder))
    assert written.solve_defaults["deblur-clean"]["below_noise"] == table["below_noise"]
    assert written.solve_defaults["deblur"] == noisy
    assert written.card["tuning"]["switches"]["deblur-clean"] == table
    # an entry tuned again without its switch stage (here by hand) loses its switch, even one
    # carried over in the entry itself (as --skip-grid carries the earlier entry)
    carried = {**clean, "below_noise": 0.009}
    tuning.write_tuning(folder, {"solve_defaults": {"deblur-clean": carried}, "trials": [],
                                 "validation": {}, "switches": {}})
    written = load_prior(str(folder))
    assert "below_noise" not in written.solve_defaults["deblur-clean"]
    assert "switches" not in written.card["tuning"]


def test_the_tune_command_prints_the_switch_with_its_scores(tmp_path):
    from typer.testing import CliRunner

    from em_inverse.cli.app import app
    from em_inverse.priors import load_prior

    _tiny_prior_with_both_deblur_entries(tmp_path / "prior")
    result = CliRunner().invoke(app, ["tune", str(tmp_path / "prior"), "--families",
                                      "deblur-clean", "--skip-grid", "--size", "32", "--count",
                                      "1"])
    assert result.exit_code == 0, result.output
    below = load_prior(str(tmp_path / "prior")).solve_defaults["deblur-clean"]["below_noise"]
    when = f"taken below noise {below:.3g}" if below > MIN_SIGMA else "never taken"
    assert f"deblur-clean: {when} (PSNR dB at noise 0: " in result.stderr
    assert result.stderr.count(" clean / ") == len(SWITCH_NOISE) + 1  # the PSNRs, the costs
    assert "; grad V per solve " in result.stderr
