"""The tuner's Anscombe stage: which tuned denoiser, HQS or MAP, runs on the Anscombe transform
of a Poisson measurement, measured per prior and stored in its ``denoise`` entry."""
from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import quadratic_prior

from em_inverse import operators as op
from em_inverse import solve
from em_inverse.bench.anscombe_choice import (ANSCOMBE_TABLE, POISSON_PHOTONS, anscombe_stage,
                                              charged_scores)
from em_inverse.bench.tuning_record import write_tuning
from em_inverse.cli.card_text import card_lines
from em_inverse.priors import EnergyPrior, save_prior
from em_inverse.priors.nets import ConvEnergy
from em_inverse.solvers.tuned_entries import ANSCOMBE_METHOD_KEY

ENTRY = {"method": "hqs", "hqs": {"steps": 2}, "map": {"steps": 5}}


def test_map_is_chosen_where_it_wins_by_more_than_its_extra_cost():
    # fashion-mnist on its training images at 10 / 20 photons: MAP ahead by 1.2 and 2.5 dB
    scores = {"hqs": [18.96, 21.17], "map": [20.18, 23.70]}
    charged = charged_scores(scores, {"hqs": 2.0, "map": 100.0}, 0.1)
    assert max(charged, key=charged.get) == "map"
    assert charged["map"] == pytest.approx(21.94 - 0.1 * math.log2(50))
    # natural-rgb at 20 / 100 photons: HQS ahead by 0.5 and 1.0 dB
    charged = charged_scores({"hqs": [29.84, 34.37], "map": [29.34, 33.39]},
                             {"hqs": 8.0, "map": 100.0}, 0.1)
    assert max(charged, key=charged.get) == "hqs"
    # a MAP ahead by less than its cost is not worth it; one that never finished never is
    close = charged_scores({"hqs": [30.0], "map": [30.3]}, {"hqs": 2.0, "map": 100.0}, 0.1)
    assert close["hqs"] > close["map"]
    assert charged_scores({"hqs": [20.0], "map": [0.0]}, {"hqs": 2.0, "map": math.inf},
                          0.1)["map"] == -math.inf


def test_the_stage_scores_both_settings_at_each_photon_level():
    torch.manual_seed(0)
    prior = EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05)
    images = [torch.rand(1, 1, 16, 16) for _ in range(2)]
    table = anscombe_stage(prior, ENTRY, images, border=0, db_per_doubling=0.1)
    assert table["photons"] == list(POISSON_PHOTONS)
    assert len(table["hqs"]) == len(table["map"]) == len(POISSON_PHOTONS)
    assert table[ANSCOMBE_METHOD_KEY] == max(table["score"], key=table["score"].get)
    assert table["hqs_cost"] < table["map_cost"]
    json.dumps(table)  # stored in the card


def test_the_table_sets_the_denoise_entry_solve_and_the_card_read(tmp_path):
    prior = quadratic_prior(0.5, 0.2)
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=8, levels=2), eps=0.05, name="p"),
               tmp_path / "p")
    table = {ANSCOMBE_METHOD_KEY: "map", "photons": [10], "hqs": [20.0], "map": [22.0]}
    write_tuning(tmp_path / "p", {"solve_defaults": {"denoise": dict(ENTRY)}, "trials": [],
                                  "validation": {}, "switches": {ANSCOMBE_TABLE: table}})
    deblur = {"method": "map", "map": {"steps": 3}}  # another entry tuned later keeps it
    write_tuning(tmp_path / "p", {"solve_defaults": {"deblur": deblur}, "trials": [],
                                  "validation": {}, "switches": {}})
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    assert config["solve_defaults"]["denoise"][ANSCOMBE_METHOD_KEY] == "map"
    assert config["card"]["tuning"]["switches"][ANSCOMBE_TABLE] == table
    assert "(Poisson: map)" in "\n".join(card_lines(config))

    tuned = prior.copy_with(solve_defaults=config["solve_defaults"])
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 8, 8, generator=g)
    poisson = op.build_operator("denoise", (1, 1, 8, 8), photons=30)
    solution = solve(op.degrade(x, poisson, g), poisson, tuned, progress=False)
    assert solution.settings["method"] == "map" and "stabilised" in solution.settings
    assert solution.settings["steps"] == 5  # the entry's MAP settings
    gaussian = op.build_operator("denoise", (1, 1, 8, 8), noise=0.1)
    assert solve(op.degrade(x, gaussian, g), gaussian, tuned,
                 progress=False).settings["method"] == "hqs"  # Gaussian noise: unchanged


def test_the_tune_command_measures_the_anscombe_choice_alone(tmp_path):
    """``--anscombe-only`` keeps the tuned denoising settings and adds the stage's choice."""
    from typer.testing import CliRunner

    from em_inverse.cli.app import app

    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                           solve_defaults={"denoise": ENTRY}), tmp_path / "prior")
    result = CliRunner().invoke(app, ["tune", str(tmp_path / "prior"), "--anscombe-only",
                                      "--size", "32", "--count", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    denoise = json.loads((tmp_path / "prior" / "config.json").read_text())[
        "solve_defaults"]["denoise"]
    assert {k: v for k, v in denoise.items() if k != ANSCOMBE_METHOD_KEY} == ENTRY
    assert denoise[ANSCOMBE_METHOD_KEY] in ("hqs", "map")


@pytest.mark.parametrize("args,message", [
    (["--anscombe-only", "--map-switch-only"], "choose one"),
    (["--anscombe-only", "--families", "deblur"], "--families must include denoise")])
def test_the_anscombe_stage_alone_is_refused_where_it_would_measure_nothing(tmp_path, args,
                                                                              message):
    from typer.testing import CliRunner

    from em_inverse.cli.app import app

    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                           solve_defaults={"denoise": ENTRY}), tmp_path / "prior")
    before = (tmp_path / "prior" / "config.json").read_bytes()
    result = CliRunner().invoke(app, ["tune", str(tmp_path / "prior"), *args])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert (tmp_path / "prior" / "config.json").read_bytes() == before
