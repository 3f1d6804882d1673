"""Copy the committed benchmark numbers into the bundled priors' model cards.

    python benchmarks/update_cards.py

Reads every ``benchmarks/results/*/results.csv`` of the natural and fashion suites (written by
``em-inverse bench``; e.g. the gray and colour groups may be run into separate folders) and
stores, for each bundled prior, the mean PSNR per task of em-inverse's methods (MAP, HQS, both
posterior means) and of the best classical method (oracle-tuned baselines included, and
marked) in ``card.benchmark`` of its ``config.json``: one entry per results folder (e.g. the
Fashion-MNIST suite on 50 images and its box-hole task on 500). No number is typed by hand.
"""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from em_inverse.atomic import atomic_write_bytes
from em_inverse.priors.registry import BUNDLED_DIR

RESULTS = Path(__file__).parent / "results"
GROUPS = {("natural", "gray"): "natural-gray", ("natural", "colour"): "natural-rgb",
          ("fashion", "fashion"): "fashion-mnist"}
OURS = ("em-inverse MAP", "em-inverse HQS", "em-inverse posterior mean",
        "em-inverse annealed posterior mean")


def mean_psnr(rows) -> dict:
    table = defaultdict(list)
    for row in rows:
        if row["psnr"]:
            table[(row["task"], row["method"])].append(float(row["psnr"]))
    return {key: sum(v) / len(v) for key, v in table.items()}


def main() -> None:
    cards = defaultdict(list)
    for path in sorted(RESULTS.glob("*/results.csv")):
        if path.parent.name.startswith("ablation"):
            continue  # ablation tables compare recipes; the cards quote the full suites
        rows = list(csv.DictReader(path.open()))
        command = (path.parent / "results.md").read_text().split("`")[1]
        for (suite, group), prior in GROUPS.items():
            mine = [r for r in rows if r.get("suite") == suite and r.get("group") == group]
            if not mine:
                continue
            means = mean_psnr(mine)
            images = sorted({r["image"] for r in mine})
            tasks = sorted({task for task, _ in means})
            per_task = {}
            for task in tasks:
                entry = {m: round(means[(task, m)], 2) for m in OURS if (task, m) in means}
                classical = {m: v for (t, m), v in means.items() if t == task and
                             m not in OURS and m != "measurement y" and not m.startswith(
                                 ("em-inverse", "deepinv"))}
                if classical:
                    best = max(classical, key=classical.get)
                    entry["best classical"] = f"{best}: {classical[best]:.2f}"
                per_task[task] = entry
            cards[prior].append({"source": f"benchmarks/results/{path.parent.name}/results.md",
                                 "command": command, "images": len(images),
                                 "psnr_db": per_task})
    for prior, benchmark in cards.items():
        config_path = BUNDLED_DIR / prior / "config.json"
        config = json.loads(config_path.read_text())
        config.setdefault("card", {})["benchmark"] = benchmark
        atomic_write_bytes(config_path, json.dumps(config, indent=2).encode())
        for entry in benchmark:
            print(f"{prior}: {len(entry['psnr_db'])} tasks from {entry['source']}")


if __name__ == "__main__":
    main()
