"""A prior's model card (its ``config.json``) as short lines of text, for ``em-inverse priors``.

The full card, every tuning trial included, is ``em-inverse priors --json``.
"""
from __future__ import annotations

import textwrap

from em_inverse.bench.methods import ANNEAL, HQS, MAP, POSTERIOR
from em_inverse.operators.noise import MIN_SIGMA
from em_inverse.solvers.tuned_entries import ANSCOMBE_METHOD_KEY, MAP_ABOVE_KEY, SWITCH_KEY

#: Benchmark columns: the method's name in the card (the benchmark's row name) -> the heading.
COLUMNS = {MAP: "MAP", HQS: "HQS", POSTERIOR: "posterior", ANNEAL: "annealed"}


def card_lines(config: dict) -> list[str]:
    """The lines ``em-inverse priors`` prints for one prior (no line over ~100 characters)."""
    card = config.get("card", {})
    lines = [f"{config['name']}: {config['architecture']['type']}, "
             f"{card.get('parameters', '?')} parameters, temperature eps {config['eps']:g}",
             f"  data:      {card.get('data', '?')}; {_shape(config['data'])}"]
    for key in ("recipe", "colour"):
        if key in card:
            lines.append(f"  {key + ':':10s} {card[key]}")
    if "training_time" in card:
        lines.append(f"  training:  {card['training_time']}; {card.get('hardware', '?')}")
    defaults = config.get("solve_defaults", {})
    if defaults:
        where = card.get("tuning", {}).get("validation", {}).get("images", "training images")
        lines.append(f"  defaults (tuned on {where}):")
        for task, entry in defaults.items():
            lines += textwrap.wrap(f"    {task:14s} {_settings(entry)}", width=100,
                                   subsequent_indent=" " * 21, break_on_hyphens=False)
    for entry in card.get("benchmark", []):
        lines += _benchmark_lines(entry)
    lines.append("  (every setting, trial and command: em-inverse priors --json)")
    return lines


def _shape(data: dict) -> str:
    if data.get("kind") == "vector":
        return f"vectors of dimension {data.get('dim')}"
    channels = data.get("channels")
    size = data.get("image_size")
    trained = data.get("training_size")
    shape = f"{size[0]}x{size[1]} images" if size else "images of any size"
    if not size and trained:
        shape += f" (trained on {trained[0]}x{trained[1]} patches)"
    return f"{channels}-channel {shape}"


def _settings(entry: dict) -> str:
    """'hqs: steps 40, sigma_start 0.1, ...': the task's default method and its settings, and
    for a ``-clean`` entry the noise level below which solve takes it (none, if its switch is
    the data term's floor ``MIN_SIGMA``: solve's noise level is never below it), the level
    above which an HQS entry gives way to its MAP, and the method that denoises a Poisson
    measurement's Anscombe transform."""
    method = entry.get("method", "map")
    options = ", ".join(f"{key} {_number(value)}" for key, value in entry.get(method, {}).items())
    text = f"{method}: {options}" if options else method
    if SWITCH_KEY in entry:
        text += (f" (below noise {entry[SWITCH_KEY]:.2g})" if entry[SWITCH_KEY] > MIN_SIGMA else
                 " (never taken: not worth its cost on the tuning crops)")
    if MAP_ABOVE_KEY in entry:
        text += f" (map above noise {entry[MAP_ABOVE_KEY]:.2g})"
    if ANSCOMBE_METHOD_KEY in entry:
        text += f" (Poisson: {entry[ANSCOMBE_METHOD_KEY]})"
    return text


def _number(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _benchmark_lines(entry: dict) -> list[str]:
    """A PSNR table (dB) of one results folder: em-inverse's methods and the best classical."""
    table = entry.get("psnr_db", {})
    columns = [name for name in COLUMNS if any(name in row for row in table.values())]
    width = max([len("task"), *map(len, table)]) + 1
    images = entry.get("images", "?")
    lines = [f"  benchmark: {entry.get('source', '?')} ({images} image{'' if images == 1 else 's'}"
             f"), PSNR dB",
             "    " + f"{'task':{width}s}" + "".join(f"{COLUMNS[c]:>10s}" for c in columns)
             + "   best classical"]
    for task, row in table.items():
        values = "".join(f"{row[c]:10.2f}" if c in row else f"{'-':>10s}" for c in columns)
        lines.append(f"    {task:{width}s}{values}   {row.get('best classical', '-')}")
    return lines
