"""What every suite shares: its settings and result, the prior to benchmark, the report header
and the environment it names (timing and memory: ``bench.measure``)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from em_inverse.cpu_memory import freed_memory_kept
from em_inverse.errors import UserError

RESULTS_DIR = Path("benchmarks") / "results"
QUICK_PRIOR_NOTE = "untrained prior (quick mode)"


@dataclass
class SuiteSettings:
    """Options of one suite run (the ``em-inverse bench`` options).

    quick: tiny inputs and few steps (seconds; CI). out: output folder. device: torch device.
    seed: base seed of every simulation and solver. prior: prior name or folder overriding the
    bundled default (None: the bundled prior for the images' channels). limit: at most this
    many images per group (None: the suite's own count). quiet: no progress on stderr.
    command: the command line quoted in the report header.

    Quality suites (``natural``, ``fashion``) and ``calibration``: tasks (quality suites only) /
    methods / groups: run only these (names as in the tables; None: all). size: natural crop
    size (None: the suite's own).
    posterior_steps / posterior_chains / deepinv_steps: the prior methods' budget (None: the
    suite's CPU budget, see ``quality.solver_options``). extra_priors: ``(label, name or
    folder)`` pairs, each adding ``em-inverse MAP [label]`` and ``em-inverse HQS [label]`` rows
    (ablations).
    """

    quick: bool = False
    out: Path = RESULTS_DIR
    device: torch.device = torch.device("cpu")
    seed: int = 0
    prior: str | None = None
    limit: int | None = None
    quiet: bool = False
    command: str = ""
    tasks: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    size: int | None = None
    posterior_steps: int | None = None
    posterior_chains: int | None = None
    deepinv_steps: int | None = None
    extra_priors: tuple[tuple[str, str], ...] = ()
    #: the code's commit when the run started (priors and settings are read then; a commit
    #: made while a long run goes on must not be credited with its numbers)
    commit: str = field(default_factory=lambda: _git_commit())


@dataclass
class SuiteResult:
    """What a suite produced: its files, result rows, failures and a skip reason if any."""

    name: str
    files: list[Path] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0


def say(settings: SuiteSettings, message: str) -> None:
    if not settings.quiet:
        print(message, file=sys.stderr, flush=True)


# -- the prior under test --------------------------------------------------------------------------
@dataclass
class PriorChoice:
    """The prior a suite benchmarks and how to describe it in the report header."""

    prior: object
    description: str
    untrained: bool = False


def untrained_prior(channels: int, image_size: tuple[int, int] | None, seed: int,
                    device: torch.device):
    """A tiny randomly initialised prior for quick mode and tests when none is bundled yet:
    ``ConvEnergy`` (width 8, 2 levels) for natural images, ``GlobalEnergy`` (width 8) for
    fixed-size images. Its numbers mean nothing about quality; reports say so."""
    from em_inverse.priors import ConvEnergy, EnergyPrior, GlobalEnergy

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if image_size is None:
            net = ConvEnergy(channels=channels, width=8, levels=2)
        else:
            net = GlobalEnergy(channels=channels, image_size=image_size, width=8, hidden=32)
    finally:
        torch.random.set_rng_state(generator_state)
    data = {"kind": "image", "channels": channels,
            "image_size": list(image_size) if image_size else None}
    return EnergyPrior(net, eps=1.0, data=data, name="untrained").to(device).frozen()


def choose_prior(settings: SuiteSettings, default_name: str, channels: int,
                 image_size: tuple[int, int] | None = None, hint: str = "") -> PriorChoice:
    """``--prior`` if given; else the bundled ``default_name``; in quick mode, when that is not
    bundled, an untrained tiny prior. A missing prior in full mode, or a ``--prior`` made for
    another number of channels, is a ``UserError`` (``hint`` is appended to its message)."""
    from em_inverse.priors.registry import bundled_names

    if settings.prior or default_name in bundled_names():
        source = settings.prior or default_name
        prior = load_bench_prior(source, settings.device, channels, hint)
        return PriorChoice(prior, _describe(prior, source if settings.prior
                                            else f"bundled {default_name}"))
    if settings.quick:
        prior = untrained_prior(channels, image_size, settings.seed, settings.device)
        return PriorChoice(prior, f"{QUICK_PRIOR_NOTE}: {type(prior.net).__name__}, "
                                  f"{prior.num_parameters} parameters, random weights "
                                  f"('{default_name}' is not bundled yet)", untrained=True)
    raise UserError(f"the bundled prior {default_name!r} does not exist yet: train it, pass "
                    f"--prior NAME|PATH, or use --quick{hint}")


def load_bench_prior(source: str, device: torch.device, channels: int, hint: str = ""):
    """The frozen prior ``source`` (name or folder); a ``UserError`` if it was made for another
    number of channels than ``channels``."""
    from em_inverse.priors import load_prior

    prior = load_prior(source, device=device).frozen()
    if prior.channels is not None and prior.channels != channels:
        raise UserError(f"prior {source!r} is for {prior.channels}-channel images, these "
                        f"images have {channels}{hint}")
    return prior


def _describe(prior, source: str) -> str:
    return (f"{source}: {type(prior.net).__name__}, {prior.num_parameters} parameters, "
            f"eps {prior.eps:g}")


# -- the environment -------------------------------------------------------------------------------
def environment(device: torch.device) -> dict:
    """Versions and hardware for the report header. The CPU's model and the vector
    instructions torch's kernels use are named: they change float results in the last digits
    (and so, through a chaotic sampler, a chain's path) from one machine to another. On the
    CPU, whether freed memory is kept for reuse (``em_inverse.cpu_memory``; the command line
    keeps it): it changes the timings."""
    import deepinv

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "deepinv": getattr(deepinv, "__version__", "?"), "device": str(device),
            "cpu": platform.processor() or platform.machine(), "cpu_model": _cpu_model(),
            "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
            "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    else:
        info["cpu_freed_memory"] = "kept" if freed_memory_kept() else "returned"
    return info


def _cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), or '?'."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def header(title: str, settings: SuiteSettings, lines: list[str]) -> str:
    """The Markdown header every report starts with: command, date, environment, notes."""
    env = environment(settings.device)
    text = [f"# {title}\n",
            f"Produced by `{settings.command or 'em-inverse bench'}` on "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')} (started at commit {settings.commit}).\n",
            "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()) + ".\n"]
    if settings.quick:
        text.append("**Quick mode**: tiny inputs and few steps, to check the machinery; these "
                    "numbers say nothing about quality.\n")
    text += [f"- {line}" for line in lines]
    return "\n".join(text) + "\n"


def select(items: list, wanted, kind: str) -> list:
    """The items whose ``.name`` is in ``wanted`` (all if None), in their own order; an unknown
    name is a ``UserError`` listing the valid ones."""
    if wanted is None:
        return list(items)
    known = list(dict.fromkeys(item.name for item in items))
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise UserError(f"unknown {kind} {', '.join(repr(u) for u in unknown)}: use "
                        f"{', '.join(repr(k) for k in known)}")
    return [item for item in items if item.name in wanted]
