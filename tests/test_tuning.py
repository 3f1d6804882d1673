"""``em-inverse tune``: the tasks it tunes on, its grid and the grid's continuation, the
symmetry, budget and chain-count stages, and its record in the prior's config.json. The
solver runs are faked where a test is about the tuner's choices, not about the solvers."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch


def test_the_tuner_tunes_the_entry_solve_takes_for_each_tuning_task():
    from em_inverse.bench.validation_set import FIXED_SIZE_INPAINT, TUNING_TASKS, defaults_key_of
    from em_inverse.operators import MIN_SIGMA
    from em_inverse.solvers.tuned_entries import defaults_key

    x = torch.rand(1, 1, 128, 128, generator=torch.Generator().manual_seed(0))
    for task in TUNING_TASKS:
        physics, _ = task.simulate(x, seed=100)
        sigma = max(task.sigma, MIN_SIGMA)  # solve's level: the operator's, at least the floor
        assert defaults_key_of(task, fixed=False) == defaults_key(physics, sigma)
    assert defaults_key_of(TUNING_TASKS[2], fixed=False) == "inpaint-hole"  # the box
    assert {defaults_key_of(t, fixed=False) for t in TUNING_TASKS} >= {"deblur-clean",
                                                                        "superres-clean"}
    # a fixed-size prior has one inpainting entry, tuned on its box, for every mask
    assert defaults_key_of(FIXED_SIZE_INPAINT, fixed=True) == "inpaint"


def test_deblurring_is_tuned_on_a_gaussian_and_a_motion_kernel_except_for_small_images():
    from em_inverse.bench.validation_set import defaults_key_of, tasks_for

    def deblur_kernels(fixed: bool) -> list[str]:
        return [t.kernel for t in tasks_for(fixed) if defaults_key_of(t, fixed) == "deblur"]

    assert deblur_kernels(fixed=False) == ["gaussian:2", "motion:15,30"]
    assert deblur_kernels(fixed=True) == ["gaussian:2"]  # 15 px is half a 28x28 garment


def test_tuning_crops_in_colour_are_the_colour_training_images_and_the_card_names_them():
    """Colour priors are tuned on colour images only (brick is gray), and the card's
    ``validation.images`` names the crops that were scored, not the first ``count`` listed."""
    from em_inverse.bench.validation_set import VALIDATION_CROPS, validation_crops

    gray = validation_crops(1, 128, 6)
    colour = validation_crops(3, 128, 6)
    assert [name for name, _ in gray] == [name for name, *_ in VALIDATION_CROPS]
    assert [name for name, _ in colour] == [name for name, _ in gray if name != "brick"]
    assert all(crop.shape == (1, 3, 128, 128) for _, crop in colour)
    assert all(0 <= float(crop.min()) and float(crop.max()) <= 1 for _, crop in colour)


def test_tuning_picks_a_method_per_family_from_every_task_of_that_family():
    """On training crops only; inpainting is tuned on random pixels (``inpaint``) and,
    apart, on a centred box (``inpaint-hole``); deblurring and super-resolution at noise 0.01
    and, apart, without noise (``deblur-clean``, ``superres-clean``)."""
    from em_inverse.bench.tuning import tune_prior
    from em_inverse.priors import ConvEnergy, EnergyPrior

    torch.manual_seed(0)
    prior = EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny")
    tuning = tune_prior(prior, size=32, count=1, weights=(1.0,), steps=2)
    defaults = tuning["solve_defaults"]
    assert set(defaults) == {"denoise", "inpaint", "inpaint-hole", "deblur", "superres",
                             "deblur-clean", "superres-clean"}
    for family in defaults.values():
        assert family["method"] in ("map", "hqs") and "map" in family and "hqs" in family
        assert family["map"]["steps"] == 2  # the budget tuned is the budget run
    tasks = {trial["task"] for trial in tuning["trials"]}
    assert {"inpaint-50", "inpaint-box"} <= tasks
    inpaint_weights = {t["task"]: t["prior_weight"] for t in tuning["trials"]
                       if t["method"] == "map" and "symmetry" not in t
                       and t["task"].startswith("inpaint")}
    # (one weight on the grid: the refinements stop at once) each entry ran its own task
    assert set(inpaint_weights) == {"inpaint-50", "inpaint-box"}
    # every task has a reference row with its starting point's PSNR (never a chosen method)
    assert {t["task"] for t in tuning["trials"] if t["method"] == "start"} == tasks
    assert tuning["validation"]["images"] == "32x32 crops of astronaut"
    # the one-step denoiser is also tried with V averaged over each symmetry group
    tried = {t.get("symmetry", "none") for t in tuning["trials"]
             if t["task"] == "denoise-25" and t["method"] == "hqs"}
    assert tried == {"none", "flips", "dihedral"}


def test_tuning_trials_ignore_the_settings_of_an_earlier_tuning(monkeypatch):
    """A trial that leaves an option out runs solve()'s default, not the prior's tuned one."""
    from em_inverse.bench import tuning
    from em_inverse.priors import ConvEnergy, EnergyPrior

    seen = []

    def fake_solve(y, physics, prior, method, progress, **options):
        seen.append((prior.solve_defaults, options.get("symmetry", "none")))
        return _fake_solution(y, options)

    monkeypatch.setattr("em_inverse.solvers.solve", fake_solve)
    earlier = {"denoise": {"method": "hqs", "hqs": {"steps": 1, "symmetry": "dihedral"}}}
    prior = EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                        solve_defaults=earlier)
    tuning.tune_prior(prior, size=32, count=1, weights=(1.0,), steps=2, families=("denoise",))
    assert all(defaults == {} for defaults, _ in seen)
    assert {symmetry for _, symmetry in seen} == {"none", "flips", "dihedral"}
    assert prior.solve_defaults == earlier  # the caller's prior is untouched


def test_tuning_some_families_replaces_only_their_defaults_and_trial_rows(tmp_path):
    from em_inverse.bench.tuning import tune_prior, write_tuning
    from em_inverse.priors import ConvEnergy, EnergyPrior, load_prior, save_prior

    torch.manual_seed(0)
    earlier = {"deblur": {"method": "map", "map": {"prior_weight": 3.0}},
               "denoise": {"method": "map", "map": {"prior_weight": 5.0}}}
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                           solve_defaults=earlier), tmp_path / "prior")
    write_tuning(tmp_path / "prior", {"solve_defaults": earlier, "validation": {},
                                      "trials": [{"task": "deblur-gauss", "method": "map",
                                                  "prior_weight": 3.0, "psnr": 20.0},
                                                 {"task": "denoise-25", "method": "map",
                                                  "prior_weight": 5.0, "psnr": 21.0}]})
    prior = load_prior(str(tmp_path / "prior"))
    tuning = tune_prior(prior, size=32, count=1, weights=(1.0,), steps=2, families=("denoise",))
    assert set(tuning["solve_defaults"]) == {"denoise"}
    assert {row["task"] for row in tuning["trials"]} == {"denoise-25"}
    write_tuning(tmp_path / "prior", tuning)
    updated = load_prior(str(tmp_path / "prior"))
    assert updated.solve_defaults["deblur"] == earlier["deblur"]
    assert updated.solve_defaults["denoise"] == tuning["solve_defaults"]["denoise"]
    rows = updated.card["tuning"]["trials"]
    assert [r for r in rows if r["task"] == "deblur-gauss"] == [
        {"task": "deblur-gauss", "method": "map", "prior_weight": 3.0, "psnr": 20.0}]
    assert [r for r in rows if r["task"] == "denoise-25"] == tuning["trials"]  # old row gone


def test_the_annealed_sampler_is_tried_with_the_chain_count_solve_runs():
    """The best step settings depend on the chain count, so trials use solve()'s own."""
    from em_inverse.bench.tuning_grid import candidates
    from em_inverse.solvers.options import DEFAULTS

    sampled = [o for m, o in candidates("inpaint", weights=(1.0,), anneal_factors=(0.7,))
               if m == "anneal"]
    assert sampled and all(o["chains"] == DEFAULTS["anneal"]["chains"] for o in sampled)


def test_the_denoiser_is_tried_with_symmetries_only_where_asked():
    from em_inverse.bench.tuning_grid import candidates

    plain = candidates("denoise", weights=(1.0,))
    assert all("symmetry" not in options for _, options in plain)
    both = candidates("denoise", weights=(1.0,), symmetries=("none", "dihedral"))
    denoisers = [options for method, options in plain if method == "hqs"]
    assert len(both) == len(plain) + len(denoisers)
    assert all("symmetry" not in options for _, options in candidates(
        "deblur", weights=(1.0,), symmetries=("none", "dihedral")))


def test_the_denoiser_is_tried_in_one_step_and_with_a_finer_second_level():
    from em_inverse.bench.tuning_grid import DENOISER_WEIGHTS, REFINEMENT_LEVELS, candidates

    denoisers = [options for method, options in candidates("denoise", weights=(1.0,))
                 if method == "hqs"]
    one_step = [o for o in denoisers if o["steps"] == 1]
    two_levels = [o for o in denoisers if o["steps"] == 2]
    assert len(one_step) == len(DENOISER_WEIGHTS)
    assert len(two_levels) == len(DENOISER_WEIGHTS) * len(REFINEMENT_LEVELS)
    assert {o["sigma_end"] for o in two_levels} == set(REFINEMENT_LEVELS)
    # the first level is the noise sigma itself (solve raises sigma_start to it)
    assert all(o["end_level"] == "below-noise" and o["sigma_start"] <= 1 / 255 for o in two_levels)


def test_a_grid_whose_best_value_lies_on_its_edge_is_continued_beyond_it():
    from em_inverse.bench.tuning_grid import beyond_edges

    axes = {"prior_weight": (1 / 64, 64.0), "sigma_start": (0.01, 0.5)}
    grid = [{"steps": 40, "sigma_start": s, "prior_weight": w}
            for s in (0.02, 0.05, 0.1) for w in (0.25, 0.5, 1.0, 2.0)]
    # the smallest weight and the largest level: one step beyond each, at the grid's spacing
    assert beyond_edges({"steps": 40, "sigma_start": 0.1, "prior_weight": 0.25}, grid, axes) == [
        {"steps": 40, "sigma_start": 0.1, "prior_weight": 0.125},
        {"steps": 40, "sigma_start": 0.2, "prior_weight": 0.25}]
    # inside the grid on both options: nothing to add
    assert beyond_edges({"steps": 40, "sigma_start": 0.05, "prior_weight": 0.5}, grid, axes) == []
    # once the value beyond was tried (and lost), the best is inside again
    tried = grid + [{"steps": 40, "sigma_start": 0.05, "prior_weight": 0.125}]
    assert beyond_edges({"steps": 40, "sigma_start": 0.05, "prior_weight": 0.25}, tried, axes) == []
    # the smallest level steps down to 0.008, below its bound: not proposed
    assert beyond_edges({"steps": 40, "sigma_start": 0.02, "prior_weight": 1.0}, grid, axes) == []
    # only settings that agree on the other options form the line (the denoiser's symmetries)
    denoisers = [{"steps": 1, "prior_weight": w} for w in (0.75, 1.0)] + \
        [{"steps": 1, "prior_weight": w, "symmetry": "flips"} for w in (1.0, 1.25)]
    assert beyond_edges({"steps": 1, "prior_weight": 1.0}, denoisers, axes) == [
        {"steps": 1, "prior_weight": 1.333333}]


def test_tuning_continues_the_grid_past_its_edge_until_the_best_is_inside(monkeypatch):
    """A prior weight that keeps improving downwards is followed past the grid's edge."""
    from em_inverse.bench import tuning
    from em_inverse.priors import ConvEnergy, EnergyPrior

    def fake_solve(y, physics, prior, method, progress, **options):  # best at w = 1/8
        error = abs(math.log2(options["prior_weight"] * 8)) + 1
        return _fake_solution((y + 0.01 * error).clamp(0, 1), options)

    monkeypatch.setattr("em_inverse.solvers.solve", fake_solve)
    prior = EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny")
    result = tuning.tune_prior(prior, size=32, count=1, weights=(0.5, 1.0), steps=2,
                               families=("deblur",))
    weights = [t["prior_weight"] for t in result["trials"]
               if t["task"] == "deblur-gauss" and t["method"] == "map" and "symmetry" not in t]
    assert weights == [0.5, 1.0, 0.25, 0.125, 0.0625]
    assert result["solve_defaults"]["deblur"]["map"] == {"prior_weight": 0.125, "steps": 2}


def _fake_solution(estimate: torch.Tensor, options: dict):
    """What a fake solve() returns: the ``estimate``, with one evaluation of V per iteration
    (the switch stage counts them) and the symmetry group it ran with."""
    from em_inverse.solvers import Diagnostics, Solution

    return Solution(estimate=estimate,
                    diagnostics=Diagnostics(evaluations=int(options.get("steps", 1))),
                    settings={"symmetry": options.get("symmetry", "none")})


def _score_symmetries(monkeypatch, gains: dict, best_weight: dict, fewest_steps: int = 0
                      ) -> None:
    """Make the tuner's trials score 20 dB plus ``gains[symmetry]``, minus 0.1 dB per factor 2
    between w and ``best_weight[symmetry]``, minus 1 dB below ``fewest_steps`` iterations (a
    fake solve() writes the score into the estimate's pixels, a fake psnr reads it back)."""
    from em_inverse.bench import tuning

    def fake_solve(y, physics, prior, method, progress, **options):
        group = options.get("symmetry", "none")
        off = abs(math.log2(options["prior_weight"] / best_weight[group]))
        short = 1.0 if options.get("steps", math.inf) < fewest_steps else 0.0
        score = 20 + gains[group] - 0.1 * off - short
        return _fake_solution(torch.full_like(y, score / 100), options)

    from em_inverse.bench import map_switch

    monkeypatch.setattr("em_inverse.solvers.solve", fake_solve)
    for stage in (tuning, map_switch):  # the trials, and the MAP switch's scores
        monkeypatch.setattr(stage, "psnr", lambda estimate, x, border: float(estimate.mean()) * 100)


def _tune_tiny_conv_prior(family: str, steps: int = 2) -> dict:
    from em_inverse.bench.tuning import tune_prior
    from em_inverse.priors import ConvEnergy, EnergyPrior

    prior = EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny")
    return tune_prior(prior, size=32, count=1, weights=(0.5, 1.0, 2.0), steps=steps,
                      families=(family,))


def test_the_best_settings_budget_is_halved_while_the_shorter_run_scores_as_well(monkeypatch):
    """MAP tuned at 80 iterations scores the same at 40 and 20 and 1 dB less at 10: the
    default runs 20 (the budget stage stops at the first loss, and at MIN_BUDGET)."""
    from em_inverse.bench import tuning_stages

    assert tuning_stages.MIN_BUDGET == 10
    _score_symmetries(monkeypatch, gains={"none": 0.0, "flips": 0.0, "dihedral": 0.0},
                      best_weight={"none": 1.0, "flips": 1.0, "dihedral": 1.0}, fewest_steps=20)
    result = _tune_tiny_conv_prior("deblur", steps=80)
    budgets = [t["steps"] for t in result["trials"] if t["task"] == "deblur-gauss"
               and t["method"] == "map" and t["prior_weight"] == 1.0 and "symmetry" not in t]
    assert budgets == [80, 40, 20, 10]
    assert result["solve_defaults"]["deblur"]["method"] == "map"
    assert result["solve_defaults"]["deblur"]["map"] == {"prior_weight": 1.0, "steps": 20}


def test_the_best_setting_is_retried_with_symmetries_kept_only_when_they_gain_enough(monkeypatch):
    """Flips gain 0.2 dB at the plain prior's weight (kept; then the weight moves up to the
    flips' own best, one factor 2 away); the dihedral group only 0.05 more (below
    SYMMETRY_GAIN_DB: the cheaper flips stay)."""
    from em_inverse.bench import tuning_stages

    assert tuning_stages.SYMMETRY_GAIN_DB == 0.1
    _score_symmetries(monkeypatch, gains={"none": 0.0, "flips": 0.3, "dihedral": 0.35},
                      best_weight={"none": 1.0, "flips": 2.0, "dihedral": 2.0})
    result = _tune_tiny_conv_prior("inpaint")
    retried = [(t["symmetry"], t["prior_weight"]) for t in result["trials"]
               if "symmetry" in t and t["task"] == "inpaint-50"]
    # the leader (MAP at w = 1) retried over flips, then dihedral, then w x2 while it gains
    assert retried == [("flips", 1.0), ("dihedral", 1.0), ("flips", 2.0), ("flips", 4.0)]
    chosen = result["solve_defaults"]["inpaint"]
    assert chosen["method"] == "map"
    assert chosen["map"] == {"prior_weight": 2.0, "steps": 2, "symmetry": "flips"}


def test_a_symmetry_that_gains_too_little_is_not_kept_nor_is_the_next_group_tried(monkeypatch):
    _score_symmetries(monkeypatch, gains={"none": 0.0, "flips": 0.05, "dihedral": 0.5},
                      best_weight={"none": 1.0, "flips": 1.0, "dihedral": 1.0})
    result = _tune_tiny_conv_prior("deblur")
    assert {t.get("symmetry") for t in result["trials"]} == {None, "flips"}
    assert "symmetry" not in result["solve_defaults"]["deblur"]["map"]


def test_the_later_stages_alone_start_from_the_tuned_setting_and_keep_earlier_rows(
        monkeypatch, tmp_path):
    from em_inverse.bench import tuning
    from em_inverse.priors import ConvEnergy, EnergyPrior, load_prior, save_prior

    _score_symmetries(monkeypatch, gains={"none": 0.0, "flips": 0.3, "dihedral": 0.3},
                      best_weight={"none": 0.5, "flips": 0.5, "dihedral": 0.5}, fewest_steps=20)
    tuned = {"method": "hqs", "map": {"prior_weight": 2.0, "steps": 2},
             "hqs": {"steps": 40, "sigma_start": 0.1, "prior_weight": 0.5}}
    earlier_rows = [{"task": "superres-x2", "method": "start", "psnr": 18.0},
                    {"task": "superres-x2", "method": "map", "prior_weight": 2.0, "steps": 2,
                     "psnr": 19.0},
                    {"task": "superres-x2", "method": "hqs", "steps": 40, "sigma_start": 0.1,
                     "prior_weight": 0.5, "psnr": 20.0},
                    {"task": "deblur-gauss", "method": "map", "prior_weight": 1.0, "psnr": 9.0}]
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                           solve_defaults={"superres": tuned}), tmp_path / "prior")
    tuning.write_tuning(tmp_path / "prior", {"solve_defaults": {"superres": tuned},
                                             "trials": earlier_rows, "validation": {}})
    prior = load_prior(str(tmp_path / "prior"))
    result = tuning.tune_prior(prior, size=32, count=1, families=("superres",),
                               skip_grid=True)
    rows = result["trials"]
    # the earlier grid row stays; the start row and the tuned setting's row are rescored
    assert rows[0] == earlier_rows[1]
    assert [(r["method"], r.get("symmetry"), r.get("steps")) for r in rows[1:]] == [
        ("start", None, None), ("hqs", None, 40), ("hqs", "flips", 40), ("hqs", "dihedral", 40),
        ("hqs", "flips", 40), ("hqs", "flips", 40)]  # flips at w x2, w / 2: both lose
    # no budget stage for HQS: its levels stay those tuned, though 20 would tie here
    assert rows[2]["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert result["solve_defaults"]["superres"] == {
        **tuned, "hqs": {**tuned["hqs"], "symmetry": "flips"}}
    tuning.write_tuning(tmp_path / "prior", result)
    kept = load_prior(str(tmp_path / "prior")).card["tuning"]["trials"]
    assert kept == [earlier_rows[3]] + rows


def test_rerunning_the_later_stages_replaces_their_rows_instead_of_adding_copies(
        monkeypatch, tmp_path):
    """The symmetry and budget stages score the same trials on every run (here: the flips gain
    nothing, so the 8 symmetries are not tried, and MAP at 20 iterations loses 1 dB): a rerun
    replaces those rows,
    so the card's table keeps one row per task and setting."""
    from em_inverse.bench import tuning
    from em_inverse.priors import ConvEnergy, EnergyPrior, load_prior, save_prior

    _score_symmetries(monkeypatch, gains={"none": 0.0, "flips": 0.0, "dihedral": 0.0},
                      best_weight={"none": 1.0, "flips": 1.0, "dihedral": 1.0}, fewest_steps=40)
    tuned = {"method": "map", "map": {"prior_weight": 1.0, "steps": 40}}
    folder = tmp_path / "prior"
    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny",
                           solve_defaults={"deblur": tuned}), folder)
    tables = []
    for _ in range(2):
        result = tuning.tune_prior(load_prior(str(folder)), size=32, count=1,
                                   families=("deblur",), skip_grid=True)
        tuning.write_tuning(folder, result)
        tables.append(load_prior(str(folder)).card["tuning"]["trials"])
    settings = [("map", None, 40), ("map", "flips", 40), ("map", None, 20)]
    assert [(r["task"], r["method"], r.get("symmetry"), r.get("steps")) for r in tables[0]] == [
        ("deblur-gauss", "start", None, None), ("deblur-motion", "start", None, None)] + [
        (task, *setting) for setting in settings for task in ("deblur-gauss", "deblur-motion")]
    assert sorted(map(json.dumps, tables[1])) == sorted(map(json.dumps, tables[0]))
    assert result["solve_defaults"]["deblur"] == tuned


def test_the_later_stages_alone_need_a_tuned_family():
    from em_inverse.bench.tuning import tune_prior
    from em_inverse.errors import UserError
    from em_inverse.priors import ConvEnergy, EnergyPrior

    prior = EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny")
    with pytest.raises(UserError, match="no tuned settings to start from for deblur"):
        tune_prior(prior, families=("deblur",), skip_grid=True)


def test_the_error_of_a_mean_over_more_chains_is_predicted_from_the_chains_spread():
    """One run of 8 independent chains predicts the squared error of a mean over 32 chains, and
    over 2 (fewer than it ran): only the Monte-Carlo part, variance / chains, changes."""
    from em_inverse.solvers.stats import error_with_more_chains

    g = torch.Generator().manual_seed(0)
    pixels, truth = 20000, torch.zeros(20000, dtype=torch.float64)
    centre = 0.05 * torch.randn(pixels, generator=g, dtype=torch.float64)  # the sampler's bias
    spread = 0.2 * torch.rand(pixels, generator=g, dtype=torch.float64)    # its per-pixel std

    def run(chains):
        draws = centre + spread * torch.randn(chains, pixels, generator=g, dtype=torch.float64)
        return float(((draws.mean(0) - truth) ** 2).mean()), float(draws.var(0).mean())

    squared_error, variance = run(8)
    for more in (2, 32):
        measured = np.mean([run(more)[0] for _ in range(20)])
        predicted = float(error_with_more_chains(squared_error, variance, 8, more))
        assert predicted == pytest.approx(measured, rel=0.03)
    assert float(error_with_more_chains(squared_error, variance, 8, 8)) == pytest.approx(
        squared_error)  # no bias clipping here: the run itself is reproduced
    with pytest.raises(ValueError, match="at least 2 chains"):
        error_with_more_chains(squared_error, variance, 1, 2)


def test_the_chain_count_doubles_while_the_predicted_gain_clears_the_bar():
    """Squared errors summing to 0.02 with 16 chains, a tenth of it Monte-Carlo: 32 chains are
    predicted to gain 0.22 dB, 64 another 0.12, 128 0.06 (below the 0.1 dB bar). The gain is
    that of the summed error: an easy image (error 0.0011, nearly all Monte-Carlo) weighs
    little, where its own dB gain would be 5 dB."""
    from em_inverse.bench.chain_budget import (CHAIN_GAIN_DB, MAX_CHAINS, chains_worth_running,
                                               predicted_gain)

    assert CHAIN_GAIN_DB == 0.1 and MAX_CHAINS == 64
    error, variance = np.array([0.01, 0.01]), np.array([0.016, 0.016])  # variance / 16 = 0.001
    assert predicted_gain(error, variance, 16, 32) == pytest.approx(0.223, abs=0.001)
    assert predicted_gain(error, variance, 16, 16) == pytest.approx(0.0, abs=1e-12)
    assert chains_worth_running(error, variance, 16, most=256) == 64
    assert chains_worth_running(error, variance, 16) == 64
    assert chains_worth_running(error, variance, 16, most=32) == 32
    assert chains_worth_running(error, variance, 16, bar=0.3) == 16
    assert chains_worth_running(error, np.zeros(2), 16) == 16  # chains that agree: no gain
    easy = (np.array([0.01, 0.01, 0.0011]), np.array([0.016, 0.016, 0.016]))
    assert predicted_gain(*easy, 16, 64) == pytest.approx(
        10 * math.log10(0.0211 / (0.0211 - 0.048 / 16 + 0.048 / 64)))
    assert chains_worth_running(*easy, 16) == 64


def test_the_tuner_runs_the_chain_count_the_sampler_spread_predicts_once(monkeypatch):
    """The 16-chain posterior mean scores 20 dB with a chain variance of 0.008 (Monte-Carlo
    part 0.0005 of the 0.01 squared error): 32 chains are predicted to gain 0.11 dB (kept), 64
    only 0.06 more. The 32-chain run is scored once, and its row also holds the prediction;
    its own score (19.9 dB: Monte-Carlo noise) does not undo the choice."""
    from types import SimpleNamespace

    from em_inverse.bench import tuning
    from em_inverse.bench.images import fashion_available
    from em_inverse.priors import EnergyPrior, GlobalEnergy

    if not fashion_available():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    scores = {16: 20.0, 32: 19.9}

    def fake_solve(y, physics, prior, method, progress, **options):  # the score, in the pixels
        if method != "anneal":
            return SimpleNamespace(estimate=torch.full_like(y, 0.1), std=None)
        return SimpleNamespace(estimate=torch.full_like(y, scores[options["chains"]] / 100),
                               std=torch.full_like(y, 0.008 ** 0.5))

    from em_inverse.bench import map_switch

    monkeypatch.setattr("em_inverse.solvers.solve", fake_solve)
    for stage in (tuning, map_switch):  # the trials, and the MAP switch's scores
        monkeypatch.setattr(stage, "psnr", lambda estimate, x, border: float(estimate.mean()) * 100)
    prior = EnergyPrior(GlobalEnergy(channels=1, image_size=(28, 28), width=4, hidden=8),
                        eps=0.05, name="tiny-fixed",
                        data={"kind": "image", "channels": 1, "image_size": [28, 28]})
    result = tuning.tune_prior(prior, count=1, weights=(1.0,), steps=2, families=("inpaint",))
    sampled = [t for t in result["trials"] if t["method"] == "anneal"]
    assert [t["chains"] for t in sampled[:-1]] == [16] * (len(sampled) - 1)
    assert sampled[-1]["chains"] == 32 and sampled[-1]["psnr"] == 19.9
    assert sampled[-1]["predicted_gain_db"] == pytest.approx(0.110, abs=0.001)
    assert result["solve_defaults"]["inpaint"]["anneal"]["chains"] == 32
    assert result["solve_defaults"]["inpaint"]["method"] == "anneal"


def test_the_annealed_sampler_is_tried_only_with_step_factors_then_with_more_chains():
    """Fixed-size priors (whole small images) also try the annealed sampler's posterior mean,
    over step factors x budgets, then with the chain count their spread says is worth running;
    the budget and the chain count reached become defaults."""
    from em_inverse.bench.images import fashion_available
    from em_inverse.bench.tuning import tune_prior
    from em_inverse.bench.tuning_grid import candidates
    from em_inverse.priors import EnergyPrior, GlobalEnergy

    assert all(method != "anneal" for method, _ in candidates("inpaint", weights=(1.0,)))
    sampled = [o for m, o in candidates("inpaint", weights=(1.0,), anneal_factors=(0.2, 0.7),
                                        anneal_steps=(300, 600)) if m == "anneal"]
    assert [(o["steps"], o["step_factor"]) for o in sampled] == [
        (300, 0.2), (300, 0.7), (600, 0.2), (600, 0.7)]
    if not fashion_available():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    torch.manual_seed(0)
    tiny = EnergyPrior(GlobalEnergy(channels=1, image_size=(28, 28), width=4, hidden=8),
                       eps=0.05, name="tiny-fixed",
                       data={"kind": "image", "channels": 1, "image_size": [28, 28]})
    defaults = tune_prior(tiny, count=1, weights=(1.0,), steps=2,
                          anneal_steps=(3, 5))["solve_defaults"]
    for family in defaults.values():
        assert family["anneal"]["chains"] in (16, 32, 64)
        assert family["anneal"]["step_factor"] in (0.2, 0.5, 0.7)
        assert family["anneal"]["steps"] in (3, 5)


def test_the_tune_command_rejects_unknown_families_before_touching_the_prior(tmp_path):
    from typer.testing import CliRunner

    from em_inverse.cli.app import app
    from em_inverse.priors import ConvEnergy, EnergyPrior, save_prior

    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny"),
               tmp_path / "prior")
    before = (tmp_path / "prior" / "config.json").read_bytes()
    result = CliRunner().invoke(app, ["tune", str(tmp_path / "prior"), "--families", "paint"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --families: unknown paint; choose from denoise, "
                                     "deblur, superres, inpaint, inpaint-hole, deblur-clean, "
                                     "superres-clean")
    assert (tmp_path / "prior" / "config.json").read_bytes() == before


def test_the_tune_command_needs_crops_wider_than_the_scoring_border(tmp_path):
    from typer.testing import CliRunner

    from em_inverse.bench.tuning import MIN_CROP_SIZE
    from em_inverse.cli.app import app
    from em_inverse.priors import ConvEnergy, EnergyPrior, save_prior

    save_prior(EnergyPrior(ConvEnergy(channels=1, width=4, levels=2), eps=0.05, name="tiny"),
               tmp_path / "prior")
    result = CliRunner().invoke(app, ["tune", str(tmp_path / "prior"), "--families", "denoise",
                                      "--size", str(MIN_CROP_SIZE - 1)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --size must be at least {MIN_CROP_SIZE} pixels")
