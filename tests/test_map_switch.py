"""The MAP switch of the tuner: above which noise level ``solve`` runs a prior's tuned MAP
for deblurring and super-resolution instead of their HQS, tuned at 0.01."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from em_inverse import operators as op
from em_inverse import solve
from em_inverse.bench.clean_switch import choose_switch
from em_inverse.bench.map_switch import ABOVE_NOISE, map_switch_candidates

BETWEEN = [(0.01 * 0.02) ** 0.5, (0.02 * 0.05) ** 0.5, (0.05 * 0.1) ** 0.5, 0.1, math.inf]
HQS_COST, MAP_COST = [[40.0]] * 4, [[104.0]] * 4  # grad V per solve


def _exact():
    return [[level] for level in ABOVE_NOISE]


def test_the_candidates_lie_between_the_levels_above_the_tuned_one_or_nowhere():
    assert map_switch_candidates() == pytest.approx(BETWEEN)


def test_map_takes_over_where_it_wins_by_more_than_its_extra_cost():
    # natural-gray's deblurring on its tuning crops: HQS ahead up to 0.02, MAP from 0.05
    hqs = [[31.28], [30.41], [27.24], [22.85]]
    map_ = [[30.96], [30.05], [28.56], [26.58]]
    above, _, _ = choose_switch(ABOVE_NOISE, hqs, map_, _exact(), HQS_COST, MAP_COST, 0.1,
                                candidates=map_switch_candidates())
    assert above == pytest.approx(BETWEEN[1])
    # fashion-mnist's super-resolution: its HQS stays ahead at every level
    hqs = [[24.09], [23.36], [21.36], [18.41]]
    map_ = [[23.78], [22.72], [20.37], [17.29]]
    assert choose_switch(ABOVE_NOISE, hqs, map_, _exact(), HQS_COST, MAP_COST, 0.1,
                         candidates=map_switch_candidates())[0] == math.inf
    # a MAP ahead by less than its cost (0.14 dB for 2.6 times the grad V) is not taken
    map_ = [[v[0] + 0.1] for v in hqs]
    assert choose_switch(ABOVE_NOISE, hqs, map_, _exact(), HQS_COST, MAP_COST, 0.1,
                         candidates=map_switch_candidates())[0] == math.inf


@pytest.mark.parametrize("family, options", [("deblur", {"kernel": "gaussian:1"}),
                                             ("superres", {"factor": 2})])
def test_solve_runs_the_tuned_map_above_the_entrys_switch_and_says_so(family, options):
    from conftest import quadratic_prior
    from test_solvers import MU, S

    entry = {"method": "hqs", "hqs": {"steps": 3}, "map": {"steps": 4}, "map_above": 0.03}
    prior = quadratic_prior(MU, S).copy_with(solve_defaults={family: entry})
    x = torch.full((1, 1, 32, 32), MU)
    for noise, method in ((0.01, "hqs"), (0.029, "hqs"), (0.031, "map"), (0.1, "map")):
        physics = op.build_operator(family, x.shape, noise=noise, **options)
        chosen = solve(physics.A(x), physics, prior, progress=False)
        assert chosen.settings["method"] == method, noise
        assert ("where the tuned HQS loses to the tuned MAP" in
                chosen.settings.get("fallback", "")) == (method == "map")
        named = solve(physics.A(x), physics, prior, "hqs", progress=False)
        assert named.settings["method"] == "hqs"  # a named method always runs


def test_the_tuner_measures_the_map_switch_and_stores_it_with_its_table(tmp_path):
    from typer.testing import CliRunner

    from em_inverse.bench import tuning
    from em_inverse.cli.app import app
    from em_inverse.priors import ConvEnergy, EnergyPrior, load_prior, save_prior

    entry = {"method": "hqs", "hqs": {"steps": 3, "sigma_start": 0.1, "prior_weight": 0.5},
             "map": {"prior_weight": 0.5, "steps": 3}, "map_above": 0.0123}  # stale
    folder = tmp_path / "prior"
    torch.manual_seed(0)
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                           solve_defaults={"deblur": entry}), folder)
    result = CliRunner().invoke(app, ["tune", str(folder), "--families", "deblur",
                                      "--skip-grid", "--size", "32", "--count", "1"])
    assert result.exit_code == 0, result.output
    written = load_prior(str(folder))
    table = written.card["tuning"]["switches"]["deblur-map"]
    assert table["noise"] == list(ABOVE_NOISE) and len(table["hqs"]) == len(table["map"]) == 4
    above = written.solve_defaults["deblur"].get("map_above")
    assert above == table["map_above"] and above != 0.0123
    when = f"MAP above noise {above:.3g}" if above is not None else "HQS at every level"
    assert f"deblur-map: {when} (PSNR dB at noise 0.01: " in result.stderr
    # an entry tuned again without the stage (here by hand) loses its switch
    tuning.write_tuning(folder, {"solve_defaults": {"deblur": {**entry, "map_above": 0.05}},
                                 "trials": [], "validation": {}, "switches": {}})
    assert "map_above" not in load_prior(str(folder)).solve_defaults["deblur"]


def test_map_switch_only_keeps_every_tuned_setting_row_and_clean_switch(tmp_path):
    from em_inverse.bench import tuning
    from em_inverse.priors import ConvEnergy, EnergyPrior, load_prior, save_prior

    entry = {"method": "hqs", "hqs": {"steps": 3, "sigma_start": 0.1, "prior_weight": 0.5},
             "map": {"prior_weight": 0.5, "steps": 3}}
    clean = {"method": "map", "map": {"prior_weight": 0.25, "steps": 3}, "below_noise": 0.004}
    rows = [{"task": "deblur-gauss", "method": "hqs", "psnr": 20.0},
            {"task": "denoise-25", "method": "map", "psnr": 25.0}]
    folder = tmp_path / "prior"
    torch.manual_seed(0)
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                           solve_defaults={"deblur": entry, "deblur-clean": clean}), folder)
    clean_table = {"below_noise": 0.004, "noise": [0.0]}
    tuning.write_tuning(folder, {"solve_defaults": {"deblur": entry, "deblur-clean": clean},
                                 "trials": rows, "validation": {},
                                 "switches": {"deblur-clean": clean_table}})
    result = tuning.tune_prior(load_prior(str(folder)), size=32, count=1,
                               families=("deblur",), map_switch_only=True)
    assert list(result["switches"]) == ["deblur-map"]
    tuning.write_tuning(folder, result)
    written = load_prior(str(folder))
    above = result["switches"]["deblur-map"]["map_above"]
    assert written.solve_defaults["deblur"] == entry | ({} if above is None else
                                                        {"map_above": above})
    assert written.solve_defaults["deblur-clean"] == clean
    assert written.card["tuning"]["trials"] == [rows[1], rows[0]]
    assert written.card["tuning"]["switches"]["deblur-clean"] == clean_table


def test_a_diverging_hqs_scores_0_db_and_hands_those_levels_to_map(monkeypatch):
    """fashion-mnist's deblurring HQS diverges on some images at high noise: the stage goes on."""
    from em_inverse.bench import map_switch
    from em_inverse.bench.validation_set import TUNING_TASKS
    from em_inverse.priors import ConvEnergy, EnergyPrior
    from em_inverse.solvers import SolverError

    def fake_solve(y, physics, prior, method, progress, **options):
        noise = float(physics.noise_model.sigma)
        if method == "hqs" and noise > 0.03:
            raise SolverError("solver diverged")
        estimate = torch.full((1, 1, 32, 32), 0.30 if method == "hqs" else 0.29)
        return SimpleNamespace(estimate=estimate, settings={"symmetry": "none"},
                               diagnostics=SimpleNamespace(evaluations=40))

    monkeypatch.setattr("em_inverse.solvers.solve", fake_solve)
    monkeypatch.setattr(map_switch, "psnr",
                        lambda estimate, x, border: round(float(estimate.mean()) * 100, 3))
    prior = EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny")
    entry = {"method": "hqs", "hqs": {"steps": 40}, "map": {"steps": 100}}
    table = map_switch.map_switch_stage(prior, "deblur", entry, [torch.rand(1, 1, 32, 32)],
                                        TUNING_TASKS, border=8, db_per_doubling=0.1)
    assert table["hqs"] == [30.0, 30.0, 0.0, 0.0] and table["hqs_diverged"] == [0, 0, 1, 1]
    assert table["map_above"] == pytest.approx(BETWEEN[1])
