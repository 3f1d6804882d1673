"""Mode coverage of 2-D samples of the 8-Gaussians prior (issue 2's acceptance check).

    em-inverse train --data toy2d:8gaussians --steps 3000 --out RUN --seed 0
    em-inverse sample --prior RUN -n 4000 -o s.npy --seed 1
    python benchmarks/toy2d_modes.py s.npy

Prints the fraction of samples within 1.5 of a centre 4(cos k pi/4, sin k pi/4) and the
share of all samples that each of the 8 modes receives (goal: >= 90% and >= 6% each).
"""
import argparse
import math

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("samples", help="(N, 2) .npy array written by em-inverse sample")
samples = np.load(parser.parse_args().samples)
angles = np.arange(8) * math.pi / 4
centres = 4 * np.stack([np.cos(angles), np.sin(angles)], 1)
distance = np.linalg.norm(samples[:, None] - centres[None], axis=-1)
near = distance.min(1) < 1.5
shares = np.bincount(distance.argmin(1)[near], minlength=8) / len(samples)
print(f"within 1.5 of a centre: {near.mean():.3f}")
print("share per mode:", " ".join(f"{s:.3f}" for s in shares))
