"""Choose a prior's default solver settings on TRAINING images (never test images).

For each task family (denoise, inpaint, deblur, superres) this simulates its tasks
(``bench.validation_set``: ``TUNING_TASKS``; inpainting: 50% random pixels and a centred box)
on validation crops carved from the SPEC 6 training images (Fashion-MNIST training images for
fixed-size priors) and tries

- ``map``: a log grid of prior weights w (U = fidelity + w V/eps);
- ``hqs``: annealed half-quadratic splitting (for denoising, one iteration: Tweedie's denoiser
  with w near the calibrated value 1, or two, the second at a fine level below the noise
  (``REFINEMENT_LEVELS``); for fully convolutional priors also with V averaged over the image's
  flips and over the 8 symmetries of the square (``priors.symmetry``: the denoiser's
  self-ensemble, cheap for one or two iterations); otherwise a grid of first coupling levels
  and weights);
- ``anneal`` (fixed-size priors only, whose images are small enough to sample on a CPU within
  the tuning budget): the annealed Langevin sampler's posterior mean with solve()'s 16 chains,
  over a grid of step factors (its step at level s is step_factor * s^2) and of step budgets,
  then with twice the chains of the best setting while the chains' own spread predicts a
  gain of at least 0.1 dB;

keeping, per method, the settings with the best mean PSNR over the family's tasks, and as the
family's default method the best of those tried. For fully convolutional priors the two
inpainting tasks are tuned apart: scattered pixels for the ``inpaint`` entry, the box for
``inpaint-hole``, which ``solve`` takes for masks with solid holes (``defaults_key_of``; on the
crops the best plain MAP prior weight for the box was 8 to 64 times that for scattered
pixels). Deblurring and super-resolution are tuned at noise 0.01 and again without noise, for
the ``deblur-clean`` / ``superres-clean`` entries ``solve`` takes for (nearly) noiseless
measurements; at 0.01, fully convolutional priors' deblurring is scored on a Gaussian and a
motion kernel together. A grid whose best value lies on its edge (a weight, a first coupling
level) is continued beyond that edge until the best is inside it (``beyond_edges``). For fully
convolutional priors each entry's best setting is then retried with V averaged over the image's
flips and over the 8 symmetries of the square, each kept only if it gains ``SYMMETRY_GAIN_DB``
for its cost (the symmetry stage). Then the iteration budget of a MAP default is halved while
that scores as well (the budget stage). Last, where a family has both entries, the noise level
up to which ``solve`` takes the clean one is measured where they cross, each entry charged for
its cost at the symmetry stage's rate (the switch stage, ``bench.clean_switch``; its table is
kept under ``card.tuning.switches``). The table also holds a
``start`` row per task: the PSNR of the solvers' starting point (the measurement, bicubic
upsampling or the biharmonic fill), so one can see what the prior adds. The result is written
into the prior folder's ``config.json`` as ``solve_defaults`` (which ``solve`` reads), together
with the table of every trial under ``card.tuning``, so the choice can be audited and rerun:

    em-inverse tune PRIOR_FOLDER [--families inpaint] [--skip-grid]

(``--families``: re-tune some families (``superres``) or entries (``superres-clean``) only; the
others keep their settings and trial rows.
``--skip-grid``: start from the tuned settings and run the symmetry and budget stages alone.)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from em_inverse.atomic import atomic_write_bytes
from em_inverse.bench.clean_switch import switch_stage
from em_inverse.bench.metrics import mean_square, psnr
from em_inverse.bench.tasks import Task
from em_inverse.bench.validation_set import (FAMILIES, TUNING_TASKS, defaults_key_of,
                                             fashion_training_images, tasks_for, validation_crops)
from em_inverse.operators.noise import MIN_SIGMA
from em_inverse.priors.checkpoint import CONFIG, read_json
from em_inverse.priors.symmetry import GROUPS
from em_inverse.solvers.api import DEFAULTS as SOLVE_DEFAULTS
from em_inverse.solvers.stats import error_with_more_chains
from em_inverse.solvers.tuned_entries import CLEAN_FAMILIES, CLEAN_SUFFIX, SWITCH_KEY

WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)
#: HQS's first coupling level and prior weight. Small couplings and weights keep the solve close
#: to its starting point (biharmonic fill, bicubic upsampling): on 50% random pixels the bundled
#: priors did not improve on the biharmonic fill with the coarser settings alone.
HQS_SIGMA_STARTS = (0.02, 0.05, 0.1)
HQS_WEIGHTS = (0.25, 0.5, 1.0, 2.0)
#: The annealed sampler's trials: its budget and step factors. Larger factors mix faster
#: within the same steps (Fashion-MNIST box hole, first 20 training images, 300 steps: 21.4 dB
#: at 0.2, 23.7 at 0.7; see the prior's tuning table). The grid stops at 0.7: the step at level
#: s is then 0.7 s^2, close to the 1 / curvature = s^2 of the level-s noise itself.
#: Longer chains anneal more slowly through the levels; the budgets stop at 600 steps (16 chains
#: x 600 steps: about 10 s per 28x28 image on one CPU core).
#: The trials run solve()'s own chain count: the best step settings depend on it (box hole, the
#: same 20 images: with 4 chains 600 steps at 0.5 led, 23.37 vs 23.14 dB for 300 at 0.7, the
#: card's tuning table at commit 6336996; with 16 chains 300 at 0.7 led, 23.65 vs 23.29, the
#: table now: a faster-mixing sampler gains more from more chains).
ANNEAL_CHAINS = SOLVE_DEFAULTS["anneal"]["chains"]
ANNEAL_STEPS = (300, 600)
ANNEAL_STEP_FACTORS = (0.2, 0.5, 0.7)
#: Then the best sampler setting's chain count is doubled while that is predicted to gain at
#: least CHAIN_GAIN_DB, up to MAX_CHAINS. The gain is predicted from that setting's own chains
#: (``solvers.stats.error_with_more_chains``: the Monte-Carlo part of a mean's error falls as
#: 1 / chains, and the chains' spread measures it), not measured by a second run, whose own
#: Monte-Carlo noise is as large as the gain: on the first 20 Fashion-MNIST training images a
#: 32-chain run scored 23.61 dB against the 16-chain run's 23.65 (the card's tuning table at
#: commit c9e98f3), although a mean over more independent chains is never worse in expectation.
#: The gain predicted is that of the PSNR of the images' summed squared error: per image, an
#: image whose small error is mostly Monte-Carlo noise gets a large and noisy predicted dB gain
#: (per-image predictions averaged 24.18 dB for 64 chains on those images, which then scored
#: 23.68). The bar is the symmetry stage's: 0.1 dB for a doubling or more of the cost. The
#: count reached is then run once (its row also holds the prediction, ``predicted_gain_db``)
#: and becomes the family's default.
CHAIN_GAIN_DB = 0.1
MAX_CHAINS = 64
#: The one-step denoiser's weights: Tweedie's formula is exact at w = 1 for a perfectly
#: calibrated V, and PSNR falls steeply away from the best w (bundled natural-gray, dihedral
#: average: 29.09 / 31.16 / 27.93 dB at 0.75 / 1 / 1.25: its card's tuning table), so the grid
#: is fine around 1.
DENOISER_WEIGHTS = (0.75, 0.9, 1.0, 1.1, 1.25)
#: The denoiser is also tried with a second HQS level below the noise (``end_at_noise=False``:
#: the noise sigma, then min(level, noise / 4)), at these levels. The second prior step refines
#: the learned, inexact Tweedie estimate; it works at the finest levels the priors were trained
#: on (their denoising-score term stops at 0.01 in pixel units): on natural-gray's tuning crops
#: at 25/255, +0.31 dB at 0.01, +0.14 at 0.005, -1.64 at 0.02 (a coarse step smooths an image
#: that is already denoised), and three levels down to 0.01 lose 6.42
#: (``python benchmarks/denoiser_refinement_check.py natural-gray --sigma-end L [--steps 3]``).
REFINEMENT_LEVELS = (0.005, 0.01)
#: Options whose grid is continued when the best setting lies on its edge: the value beyond
#: the edge (the grid's own ratio between its two outermost values) is tried, up to
#: MAX_REFINEMENTS times per method and within (lowest, highest). A best value on the edge of
#: a grid says the optimum lies outside it: the bundled natural priors' first tuning chose the
#: smallest HQS weight on the grid (0.25) for every family but denoising.
REFINED_OPTIONS = {"map": {"prior_weight": (1 / 64, 64.0)},
                   "hqs": {"prior_weight": (1 / 64, 64.0), "sigma_start": (0.01, 0.5)}}
MAX_REFINEMENTS = 4
#: Then, for fully convolutional priors, the family's best setting is retried with V averaged
#: over the image's flips, then over the 8 symmetries of the square (the one-step denoiser
#: tries the groups on its whole grid instead: there they are cheap). Each group costs 4x / 8x
#: the plain solve, so one is kept only if it gains at least SYMMETRY_GAIN_DB over the best
#: smaller one, and the next is tried only then. Averaging makes V smoother, so the prior
#: weight of a kept group is then moved (x2 or /2) while that gains. The switch stage charges
#: the clean entries' cost at the same rate: SYMMETRY_GAIN_DB per doubling.
SYMMETRY_GAIN_DB = 0.1
#: Last, MAP's iteration budget (L-BFGS iterations, one grad V each; the grid runs 100) is
#: halved while the shorter run scores at least as well, down to MIN_BUDGET. HQS's levels are
#: not: fewer levels from the same first level descend in larger ratios, a schedule that can tie
#: at the tuning noise and break elsewhere. On natural-gray's crops 20 levels tied 40 for
#: super-resolution at noise 0.01 (33.72 against 33.68 dB) but lost 0.90 dB at 0.0075 and 3.37 at
#: 0.005 (``python benchmarks/hqs_vs_map_noise_check.py natural-gray`` at commit 23cf985, which
#: ran 20 levels), and natural-rgb's
#: deblurring fell from 29.97 to 17.77 dB (benchmarks/experiments.md, "The budget stage").
BUDGETED_METHODS = ("map",)
MIN_BUDGET = 10


def candidates(family: str, weights=WEIGHTS, map_steps: int = 100,
               symmetries: tuple[str, ...] = ("none",),
               anneal_factors: tuple[float, ...] = (),
               anneal_steps: tuple[int, ...] = ANNEAL_STEPS) -> list[tuple[str, dict]]:
    """(method, options) pairs tried for one task family; ``symmetries``: the groups tried for
    the one-step denoiser (``none`` means the plain prior); ``anneal_factors`` x
    ``anneal_steps``: the annealed sampler's step factors and steps per chain (no factors: the
    sampler is not tried)."""
    trials = [("map", {"prior_weight": w, "steps": map_steps}) for w in weights]
    if family == "denoise":
        schedules = [{"steps": 1}] + [
            {"steps": 2, "sigma_start": MIN_SIGMA, "sigma_end": level, "end_at_noise": False}
            for level in REFINEMENT_LEVELS]
        trials += [("hqs", schedule | {"prior_weight": w} |
                    ({} if g == "none" else {"symmetry": g}))
                   for g in symmetries for schedule in schedules for w in DENOISER_WEIGHTS]
    else:
        trials += [("hqs", {"steps": 40, "sigma_start": s, "prior_weight": w})
                   for s in HQS_SIGMA_STARTS for w in HQS_WEIGHTS]
    trials += [("anneal", {"chains": ANNEAL_CHAINS, "steps": n, "step_factor": f})
               for n in anneal_steps for f in anneal_factors]
    return trials


def beyond_edges(best: dict, tried: list[dict], axes: dict[str, tuple[float, float]]
                 ) -> list[dict]:
    """Settings one grid step beyond ``best`` along each option in ``axes`` on which ``best``
    holds the smallest or largest value among the ``tried`` settings that agree with it on
    every other option; the step continues the grid's spacing (value * value / its inner
    neighbour). Values outside the option's (lowest, highest) are not proposed."""
    beyond = []
    for key, (lowest, highest) in axes.items():
        if key not in best:
            continue
        rest = {k: v for k, v in best.items() if k != key}
        line = sorted({o[key] for o in tried
                       if key in o and {k: v for k, v in o.items() if k != key} == rest})
        value = best[key]
        if len(line) < 2 or line[0] < value < line[-1]:
            continue
        inner = line[1] if value == line[0] else line[-2]
        step = round(value * value / inner, 6)
        if lowest <= step <= highest:
            beyond.append({**best, key: step})
    return beyond


def tune_prior(prior, *, size: int = 128, count: int = 6, weights=WEIGHTS, steps: int = 100,
               anneal_steps: tuple[int, ...] = ANNEAL_STEPS, tasks=TUNING_TASKS,
               families: tuple[str, ...] = FAMILIES, skip_grid: bool = False,
               progress=None) -> dict:
    """``{"solve_defaults": {key: {"method": m, "map": {...}, "hqs": {...}}}, "trials": [...],
    "validation": {...}, "switches": {clean_key: {...}}}`` for ``prior`` (``switches``: the
    switch stage's table per ``FAMILY-clean`` entry, ``bench.clean_switch.switch_stage``), one
    ``solve_defaults`` entry per key of
    :func:`defaults_key_of` (the task families, with ``inpaint-hole`` and the ``-clean`` entries
    apart); ``steps`` is the MAP iteration budget per trial (and so the default's),
    ``anneal_steps`` the annealed sampler's budgets tried (fixed-size priors only); only the
    tasks of the ``families`` (or entries, ``validation_set.ENTRIES``) named are tuned (see
    :func:`write_tuning` for merging a partial tuning). ``skip_grid``: no grid search; each
    entry starts from the prior's tuned method and settings (rescored) and runs the symmetry
    and budget stages alone, and its earlier trial rows are kept in the table (an entry that a
    family name implies but that was never tuned is skipped).

    Fixed-size priors (Fashion-MNIST) are tuned on their own training images (garments have an
    orientation: no symmetry trials), fully convolutional ones on crops of the natural training
    images.
    """
    from em_inverse.errors import UserError
    from em_inverse.solvers import solve
    from em_inverse.solvers.init import initial_estimate

    fixed = prior.image_size is not None
    tasks = [t for t in tasks_for(fixed, tasks)
             if t.family in families or defaults_key_of(t, fixed) in families]
    groups: dict[str, list[Task]] = {}  # solve_defaults entry -> the tasks that tune it
    for task in tasks:
        groups.setdefault(defaults_key_of(task, fixed), []).append(task)
    earlier, earlier_rows = prior.solve_defaults, prior.card.get("tuning", {}).get("trials", [])
    if skip_grid:
        # an entry that a family name implies but that was never tuned is left alone
        groups = {key: group for key, group in groups.items()
                  if key in families or "method" in earlier.get(key, {})}
        untuned = [key for key in groups if "method" not in earlier.get(key, {})]
        if untuned:
            raise UserError(f"no tuned settings to start from for {', '.join(untuned)}: "
                            f"run a full tuning of these families first")
    key_of_task = {task.name: key for key, group in groups.items() for task in group}
    # Every trial runs its own options on solve()'s defaults: settings from an earlier tuning
    # must not fill in the options a trial leaves out (a plain one-step denoiser trial would
    # otherwise inherit a tuned ``symmetry``).
    prior = prior.copy_with(solve_defaults={})
    crops = [] if fixed else validation_crops(prior.channels, size, count)
    images = fashion_training_images(count) if fixed else [crop for _, crop in crops]
    images = [x.to(prior.device) for x in images]
    symmetries = ("none",) if fixed else GROUPS  # garments have an orientation
    anneal_factors = ANNEAL_STEP_FACTORS if fixed else ()
    border = 0 if fixed else 8
    # skip_grid: the tuned entries' earlier rows stay, but a setting scored again (the start
    # rows, the tuned setting, a stage's trials on a rerun) keeps only its new row
    trials = [row for row in earlier_rows if skip_grid and row["task"] in key_of_task]
    defaults = {}
    for key, key_tasks in groups.items():
        family = key_tasks[0].family
        cases = [(task, [task.simulate(x, seed=100 + k) for k, x in enumerate(images)])
                 for task in key_tasks]
        for task, simulated in cases:  # a reference row: what the solvers start from
            start = [psnr(initial_estimate(y, physics, x.shape).clamp(0, 1), x, border=border)
                     for x, (physics, y) in zip(images, simulated)]
            trials.append({"task": task.name, "method": "start",
                           "psnr": round(float(np.mean(start)), 3)})

        spreads: dict[str, list[tuple[float, float]]] = {}  # see chain_errors

        def score(method: str, options: dict, predicted: float | None = None) -> float:
            """Mean PSNR of one setting over the entry's tasks (one trial row per task, with
            the ``predicted`` gain in dB if given)."""
            means, errors = [], []
            spreads[_key(method, options)] = errors
            for task, simulated in cases:
                values = []
                for x, (physics, y) in zip(images, simulated):
                    solution = solve(y, physics, prior, method=method, progress=False,
                                     **options)
                    values.append(psnr(solution.estimate.clamp(0, 1), x, border=border))
                    if getattr(solution, "std", None) is not None:
                        errors.append((10 ** (-values[-1] / 10),
                                       mean_square(solution.std, border=border)))
                means.append(float(np.mean(values)))
                trials.append({"task": task.name, "method": method, **options,
                               "psnr": round(means[-1], 3)}
                              | ({} if predicted is None else
                                 {"predicted_gain_db": round(predicted, 3)}))
                if progress:
                    note = "" if predicted is None else f" (predicted gain {predicted:.2f} dB)"
                    progress(f"{task.name}: {method} {options} -> {means[-1]:.2f} dB{note}")
            return float(np.mean(means))

        def chain_errors(method: str, options: dict) -> list[tuple[float, float]]:
            """(squared error of the posterior mean, mean chain variance) per image of the
            last scoring of a sampler setting."""
            return spreads[_key(method, options)]

        if skip_grid:
            leader = earlier[key]["method"]
            options = dict(earlier[key].get(leader, {}))
            best = {leader: (score(leader, options), options)}
        else:
            best = _search(score, candidates(family, weights, steps, symmetries, anneal_factors,
                                             anneal_steps), chain_errors)
            leader = max(best, key=lambda m: best[m][0])
        if not fixed and "symmetry" not in best[leader][1]:
            best[leader] = _symmetrise(score, leader, *best[leader])
        if leader in BUDGETED_METHODS:
            best[leader] = _shorten(score, leader, *best[leader])
        # Every option of the best trial becomes a default, budgets included: MAP stopped
        # early is a different estimate (the 20000-step natural-gray, inpainting crops,
        # w = 1/2: 35.51 and 30.94 dB after 100 L-BFGS iterations, 35.32 and 30.85 after
        # solve()'s 200: benchmarks/map_budget_check.py at commit d502a14).
        carried = {k: v for k, v in earlier[key].items() if k != SWITCH_KEY} if skip_grid else {}
        defaults[key] = {**carried, "method": leader,
                         **{m: dict(options) for m, (_, options) in best.items()}}
    switches = {}
    merged = {**earlier, **defaults}
    for family in CLEAN_FAMILIES:
        pair = (family, family + CLEAN_SUFFIX)
        if all("method" in merged.get(k, {}) for k in pair) and any(k in defaults for k in pair):
            switches[family + CLEAN_SUFFIX] = switch_stage(
                prior, family, merged, images, tasks_for(fixed), border,
                db_per_doubling=SYMMETRY_GAIN_DB, progress=progress)
    for key, switch in switches.items():  # the switch measured now, not one carried over
        if key in defaults:
            defaults[key][SWITCH_KEY] = switch[SWITCH_KEY]
    source = (f"first {count} Fashion-MNIST training images" if fixed else
              f"{size}x{size} crops of " + ", ".join(name for name, _ in crops))
    return {"solve_defaults": defaults, "trials": latest_rows(trials),
            "validation": {"images": source, "map_steps": steps}, "switches": switches}


def _search(score, grid: list[tuple[str, dict]], chain_errors
            ) -> dict[str, tuple[float, dict]]:
    """The best (mean PSNR, options) per method: ``score(method, options)`` over the ``grid``,
    then past the edges of the grid (``REFINED_OPTIONS``), then, for the annealed sampler, with
    the chain count of :func:`chains_worth_running` on its ``chain_errors(method, options)``."""
    best: dict[str, tuple[float, dict]] = {}
    tried: dict[str, list[dict]] = {}

    def consider(method: str, options: dict) -> None:
        mean = score(method, options)
        tried.setdefault(method, []).append(options)
        if mean > best.get(method, (-math.inf, None))[0]:
            best[method] = (mean, options)

    for method, options in grid:
        consider(method, options)
    for method, axes in REFINED_OPTIONS.items():
        if method not in best:
            continue
        for _ in range(MAX_REFINEMENTS):
            beyond = beyond_edges(best[method][1], tried[method], axes)
            if not beyond:
                break
            for options in beyond:
                consider(method, options)
    if "anneal" in best:
        _, options = best["anneal"]
        squared_error, variance = np.array(chain_errors("anneal", options)).T
        chains = chains_worth_running(squared_error, variance, options["chains"])
        if chains != options["chains"]:
            predicted = predicted_gain(squared_error, variance, options["chains"], chains)
            more = {**options, "chains": chains}
            best["anneal"] = (score("anneal", more, predicted=predicted), more)
    return best


def chains_worth_running(squared_error, variance, chains: int, bar: float = CHAIN_GAIN_DB,
                         most: int = MAX_CHAINS) -> int:
    """The chain count reached from ``chains`` by doubling it while :func:`predicted_gain`
    grows by at least ``bar`` dB per doubling, at most ``most``."""
    measured = chains
    while chains * 2 <= most and (predicted_gain(squared_error, variance, measured, chains * 2)
                                  - predicted_gain(squared_error, variance, measured, chains)
                                  >= bar):
        chains *= 2
    return chains


def predicted_gain(squared_error, variance, chains: int, more: int) -> float:
    """dB gained by the PSNR of the images' summed squared error when each posterior mean
    averages ``more`` chains instead of the ``chains`` of the run that gave, per image, the
    ``squared_error`` of its mean and the chains' mean ``variance`` (as in
    ``error_with_more_chains``, applied to the sums)."""
    now = float(np.sum(squared_error))
    then = float(error_with_more_chains(now, float(np.sum(variance)), chains, more))
    return 10 * math.log10(now / then) if now > 0 and then > 0 else 0.0


def _key(method: str, options: dict) -> str:
    return json.dumps([method, options], sort_keys=True)


def latest_rows(rows: list[dict]) -> list[dict]:
    """The trial ``rows`` with one row per task and setting: the last one scored, in its place
    (a setting scored again replaces its earlier row)."""
    def setting(row: dict) -> str:
        return json.dumps({k: v for k, v in row.items() if k not in ("psnr", "predicted_gain_db")},
                          sort_keys=True)

    last = {setting(row): k for k, row in enumerate(rows)}
    return [row for k, row in enumerate(rows) if last[setting(row)] == k]


def _shorten(score, method: str, mean: float, options: dict) -> tuple[float, dict]:
    """(mean PSNR, options) of ``method`` after the budget stage: its ``steps`` halved while
    the shorter run scores at least ``mean``, down to ``MIN_BUDGET``."""
    while options.get("steps", 0) // 2 >= MIN_BUDGET:
        trial = {**options, "steps": options["steps"] // 2}
        value = score(method, trial)
        if value < mean:
            break
        mean, options = value, trial
    return mean, options


def _symmetrise(score, method: str, mean: float, options: dict) -> tuple[float, dict]:
    """(mean PSNR, options) of ``method`` after the symmetry stage (``SYMMETRY_GAIN_DB``):
    the groups in order of size while each gains enough, then the weight of a kept group moved
    by factors of 2 while that gains (within ``REFINED_OPTIONS``' bounds)."""
    for group in GROUPS[1:]:
        trial = {**options, "symmetry": group}
        gained = score(method, trial) - mean
        if gained < SYMMETRY_GAIN_DB:
            break
        mean, options = mean + gained, trial
    if "symmetry" not in options or "prior_weight" not in options:
        return mean, options
    lowest, highest = REFINED_OPTIONS.get(method, {}).get("prior_weight", (1 / 64, 64.0))
    for factor in (2.0, 0.5):
        moved = False
        for _ in range(MAX_REFINEMENTS):
            weight = options["prior_weight"] * factor
            if not lowest <= weight <= highest:
                break
            trial = {**options, "prior_weight": weight}
            value = score(method, trial)
            if value <= mean:
                break
            mean, options, moved = value, trial, True
        if moved:
            break
    return mean, options


def write_tuning(folder: str | Path, tuning: dict) -> None:
    """Store ``solve_defaults``, the trial table and the switch tables (each switch also as
    its entry's ``SWITCH_KEY``) in ``folder/config.json`` (atomically).

    The entries tuned replace their defaults and trial rows; other entries keep theirs (a
    tuning of some families or entries only updates those)."""
    path = Path(folder) / CONFIG
    config = read_json(path)
    fixed = config.get("data", {}).get("image_size") is not None
    key_of = {t.name: defaults_key_of(t, fixed) for t in tasks_for(fixed)}
    kept = [row for row in config.get("card", {}).get("tuning", {}).get("trials", [])
            if key_of.get(row["task"]) not in tuning["solve_defaults"]]
    # an entry tuned again without its switch stage loses the switch it had; each entry's
    # SWITCH_KEY is then set from the switch tables alone, so the two cannot disagree
    switches = {key: switch for key, switch
                in config.get("card", {}).get("tuning", {}).get("switches", {}).items()
                if key not in tuning["solve_defaults"]} | tuning.get("switches", {})
    defaults = {key: {k: v for k, v in entry.items() if k != SWITCH_KEY} for key, entry
                in ({**config.get("solve_defaults", {}), **tuning["solve_defaults"]}).items()}
    for key, switch in switches.items():
        defaults[key][SWITCH_KEY] = switch[SWITCH_KEY]
    config["solve_defaults"] = defaults
    config.setdefault("card", {})["tuning"] = {"trials": kept + tuning["trials"],
                                               "validation": tuning["validation"]} | \
        ({"switches": switches} if switches else {})
    atomic_write_bytes(path, json.dumps(config, indent=2).encode())
