"""Training throughput and the cost of an Energy Matching phase-1 step.

    python benchmarks/training_throughput.py [--steps 20] [--out benchmarks/results/training]

For each bundled recipe family (toy2d MLP, Fashion-MNIST GlobalEnergy, 40x40 natural patches
ConvEnergy) it times full trainer steps (phase 1, and phase 2 with its Langevin negatives) and,
for the same network and batch, the cost of:
  - a plain forward+backward (V.sum().backward() into the parameters),
  - grad V alone (forward + backward into the input),
  - a phase-1 loss step (forward, grad V with create_graph, backward of the flow loss).
Ratios are relative to the plain forward+backward (the paper reports ~2.15x for grad V alone).
Writes results.md and results.csv under --out.
"""
from __future__ import annotations

import argparse
import csv
import io
import platform
import time
from pathlib import Path

import torch

from em_inverse.priors.checkpoint import atomic_write_bytes
from em_inverse.training import TrainConfig, Trainer, losses

RECIPES = {
    "toy2d:8gaussians (MLPEnergy)": dict(data="toy2d:8gaussians", batch_size=128,
                                         langevin_steps=200),
    "fashion-mnist (GlobalEnergy)": dict(
        data="fashion-mnist", batch_size=64, langevin_steps=30, negatives=32,
        arch={"type": "GlobalEnergy", "channels": 1, "image_size": [28, 28], "width": 16,
              "hidden": 256}),
    "natural patches 40x40 (ConvEnergy)": dict(
        data="patches:natural-gray", crop=40, batch_size=16, langevin_steps=20, negatives=8,
        arch={"type": "ConvEnergy", "channels": 1, "width": 16, "levels": 3, "blocks": 1}),
}


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def measure(name: str, recipe: dict, steps: int, out: Path) -> dict:
    config = TrainConfig.from_dict(dict(recipe, steps=10**6, phase2_steps=0, seed=0))
    trainer = Trainer(config, out / "scratch", torch.device("cpu"), quiet=True)
    phase1 = timed(lambda: trainer.train_step(0), steps)
    trainer.config.phase2_steps = 10**6
    phase2 = timed(lambda: trainer.train_step(0), max(2, steps // 5))
    net = trainer.net
    x1 = trainer.data_batch(config.batch_size)
    x0 = trainer.randn_like(x1)
    t = torch.rand(config.batch_size)
    xt = losses.interpolate(x0, x1, t)

    def plain():
        net.zero_grad()
        net(xt).sum().backward()

    def grad_only():
        losses.grad_energy(net, xt, create_graph=False)

    def flow_step():
        net.zero_grad()
        _, g = losses.grad_energy(net, xt.detach().requires_grad_(True), create_graph=True)
        losses.flow_matching_loss(g, x0, x1, t, config.tau_star).backward()

    base = timed(plain, steps)
    return {"recipe": name, "batch": config.batch_size,
            "phase1_steps_per_s": 1 / phase1, "phase2_steps_per_s": 1 / phase2,
            "plain_fwd_bwd_ms": 1e3 * base,
            "grad_v_ratio": timed(grad_only, steps) / base,
            "phase1_loss_ratio": timed(flow_step, steps) / base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/training"))
    parser.add_argument("--skip-fashion", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, recipe in RECIPES.items():
        if args.skip_fashion and recipe["data"] == "fashion-mnist":
            continue
        rows.append(measure(name, recipe, args.steps, args.out))
        print(rows[-1], flush=True)
    lines = [f"# Training throughput (CPU, {torch.get_num_threads()} threads, "
             f"{platform.processor() or platform.machine()})", "",
             f"Command: `python benchmarks/training_throughput.py --steps {args.steps}`", "",
             "| recipe | batch | phase-1 steps/s | phase-2 steps/s | plain fwd+bwd (ms) | "
             "grad V / plain | phase-1 step / plain |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['batch']} | {r['phase1_steps_per_s']:.2f} | "
                     f"{r['phase2_steps_per_s']:.2f} | {r['plain_fwd_bwd_ms']:.1f} | "
                     f"{r['grad_v_ratio']:.2f}x | {r['phase1_loss_ratio']:.2f}x |")
    atomic_write_bytes(args.out / "results.md", ("\n".join(lines) + "\n").encode())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(args.out / "results.csv", buffer.getvalue().encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
