"""Does keeping freed memory (``em_inverse.keep_freed_memory``) speed up grad V on the CPU?

    python benchmarks/cpu_memory_check.py [--sizes 256,512,1024] [--repeats 3] [--solves]

Times the bundled priors' grad V (``prior.value_and_grad``) on random images: natural-gray on
one image and on a batch of 4 (chains, or the flips of one image), natural-rgb on one colour
image (three opponent channels in one batch). ``--solves`` adds the default solves of a 512x512
crop of astronaut (a training image): gray and colour deblurring (Gaussian std 2) and colour
50% inpainting, all at noise 0.01. Each setting runs in a fresh process of its own, with glibc's
default policy ("plain") and with freed memory kept ("kept"); every time is the median of
``--repeats`` calls after one warm-up call (a solve: one call). Prints one line per case.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def measure(sizes: list[int], repeats: int, solves: bool) -> dict:
    """Seconds per case in this process."""
    import torch

    from em_inverse import load_prior, operators, solve

    torch.manual_seed(0)
    gray, colour = load_prior("natural-gray"), load_prior("natural-rgb")
    times = {}

    def timed(f, n: int) -> float:
        f()
        runs = []
        for _ in range(n):
            start = time.perf_counter()
            f()
            runs.append(time.perf_counter() - start)
        return sorted(runs)[len(runs) // 2]

    for size in sizes:
        for label, prior, shape in (("gray", gray, (1, 1)), ("gray x4", gray, (4, 1)),
                                    ("colour", colour, (1, 3))):
            x = torch.rand(*shape, size, size)
            times[f"grad V {label} {size}"] = timed(lambda: prior.value_and_grad(x), repeats)
    if solves:
        from skimage import data
        rgb = torch.tensor(data.astronaut()[:512, :512] / 255.0, dtype=torch.float32)
        rgb = rgb.permute(2, 0, 1)[None]
        for label, x, task, spec in (("gray deblur", rgb.mean(1, keepdim=True), "deblur",
                                      {"kernel": "gaussian:2"}),
                                     ("colour deblur", rgb, "deblur", {"kernel": "gaussian:2"}),
                                     ("colour inpaint 50%", rgb, "inpaint",
                                      {"mask": "random:0.5"})):
            prior = gray if x.shape[1] == 1 else colour
            physics = operators.build_operator(task, tuple(x.shape[1:]), noise=0.01,
                                               generator=torch.Generator().manual_seed(0),
                                               **spec)
            y = physics(x)
            start = time.perf_counter()
            solve(y, physics, prior, progress=False)
            times[f"solve {label} 512"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--solves", action="store_true")
    parser.add_argument("--child", choices=("plain", "kept"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        if args.child == "kept":
            from em_inverse import keep_freed_memory
            if not keep_freed_memory():
                sys.exit("this C library is not glibc: nothing to compare")
        print(json.dumps(measure(sizes, args.repeats, args.solves)))
        return
    results = {}
    for policy in ("plain", "kept"):
        command = [sys.executable, __file__, "--sizes", args.sizes, "--repeats",
                   str(args.repeats), "--child", policy] + (["--solves"] if args.solves else [])
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
        if done.returncode:
            sys.exit(done.stderr.strip() or f"the {policy} run failed")
        results[policy] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"torch threads: {os.environ.get('OMP_NUM_THREADS', 'default')}")
    for case, plain in results["plain"].items():
        kept = results["kept"][case]
        print(f"{case}: plain {plain * 1000:.0f} ms, kept {kept * 1000:.0f} ms, "
              f"x{plain / kept:.2f}", flush=True)


if __name__ == "__main__":
    main()
