"""The tuner's record: its ``solve_defaults`` and trial table, merged into a prior folder's
``config.json`` (``write_tuning``), one row per task and setting (``latest_rows``).
"""
from __future__ import annotations

import json
from pathlib import Path

from em_inverse.atomic import atomic_write_bytes
from em_inverse.bench.anscombe_choice import ANSCOMBE_TABLE
from em_inverse.bench.map_switch import MAP_SWITCH_SUFFIX
from em_inverse.bench.validation_set import defaults_key_of, tasks_for
from em_inverse.priors.checkpoint import CONFIG, read_json
from em_inverse.solvers.tuned_entries import ANSCOMBE_METHOD_KEY, MAP_ABOVE_KEY, SWITCH_KEY


#: The fields of an entry that the switch tables set (``switched_entry``).
SWITCHED_FIELDS = (SWITCH_KEY, MAP_ABOVE_KEY, ANSCOMBE_METHOD_KEY)


def switched_entry(key: str) -> tuple[str, str]:
    """(entry, field) that a switch table of the card sets: ``FAMILY-clean`` tables set that
    entry's ``SWITCH_KEY``, ``FAMILY-map`` tables the ``FAMILY`` entry's ``MAP_ABOVE_KEY``, the
    Anscombe stage's table the ``denoise`` entry's ``ANSCOMBE_METHOD_KEY``."""
    if key == ANSCOMBE_TABLE:
        return "denoise", ANSCOMBE_METHOD_KEY
    if key.endswith(MAP_SWITCH_SUFFIX):
        return key.removesuffix(MAP_SWITCH_SUFFIX), MAP_ABOVE_KEY
    return key, SWITCH_KEY


def latest_rows(rows: list[dict]) -> list[dict]:
    """The trial ``rows`` with one row per task and setting: the last one scored, in its place
    (a setting scored again replaces its earlier row)."""
    def setting(row: dict) -> str:
        return json.dumps({k: v for k, v in row.items() if k not in ("psnr", "predicted_gain_db")},
                          sort_keys=True)

    last = {setting(row): k for k, row in enumerate(rows)}
    return [row for k, row in enumerate(rows) if last[setting(row)] == k]


def write_tuning(folder: str | Path, tuning: dict) -> None:
    """Store ``solve_defaults``, the trial table and the switch tables (each switch also as
    its entry's ``SWITCHED_FIELDS`` field, ``switched_entry``) in
    ``folder/config.json`` (atomically).

    The entries tuned replace their defaults and trial rows; other entries keep theirs (a
    tuning of some families or entries only updates those)."""
    path = Path(folder) / CONFIG
    config = read_json(path)
    fixed = config.get("data", {}).get("image_size") is not None
    key_of = {t.name: defaults_key_of(t, fixed) for t in tasks_for(fixed)}
    kept = [row for row in config.get("card", {}).get("tuning", {}).get("trials", [])
            if key_of.get(row["task"]) not in tuning["solve_defaults"]]
    # an entry tuned again without its switch stage loses the switch it had; each entry's
    # SWITCHED_FIELDS are then set from the switch tables alone, so the two
    # cannot disagree
    switches = {key: switch for key, switch
                in config.get("card", {}).get("tuning", {}).get("switches", {}).items()
                if switched_entry(key)[0] not in tuning["solve_defaults"]} \
        | tuning.get("switches", {})
    defaults = {key: {k: v for k, v in entry.items() if k not in SWITCHED_FIELDS}
                for key, entry
                in ({**config.get("solve_defaults", {}), **tuning["solve_defaults"]}).items()}
    for key, switch in switches.items():
        entry, field = switched_entry(key)
        if switch[field] is not None:
            defaults[entry][field] = switch[field]
    config["solve_defaults"] = defaults
    config.setdefault("card", {})["tuning"] = {"trials": kept + tuning["trials"],
                                               "validation": tuning["validation"]} | \
        ({"switches": switches} if switches else {})
    atomic_write_bytes(path, json.dumps(config, indent=2).encode())
