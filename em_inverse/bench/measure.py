"""Timing and memory of a benchmarked call: wall time inside grad V (``PriorTimer``) and peak
memory (``PeakMemory``), synchronised with the GPU where there is one. Times in seconds,
memory in MiB."""
from __future__ import annotations

import functools
import resource
import time

import torch

from em_inverse.cpu_memory import return_freed_memory


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work on ``device`` (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PriorTimer:
    """Wraps a prior's ``energy_and_grad`` and ``energy`` (the calls every other prior method goes
    through) on the instance, and adds up the wall time spent inside them (outermost calls only).
    Use as a context manager; the prior is restored on exit."""

    NAMES = ("energy_and_grad", "energy")

    def __init__(self, prior, device: torch.device):
        self.prior = prior
        self.device = device
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0

    def _wrap(self, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            synchronize(self.device)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                synchronize(self.device)
                self.seconds += time.perf_counter() - start
                self.calls += 1
                self._depth -= 1
        return timed

    def __enter__(self):
        for name in self.NAMES:
            self.prior.__dict__[name] = self._wrap(getattr(self.prior, name))
        return self

    def __exit__(self, *exc):
        for name in self.NAMES:
            self.prior.__dict__.pop(name, None)
        return False


class PeakMemory:
    """Peak memory of a block, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset (tensors only). CPU: the process's
    peak resident set size (``VmHWM``) after resetting it through ``/proc/self/clear_refs``
    (Linux), minus the resident size before the block; where the reset is not allowed, the
    process-wide peak (``ru_maxrss``) is reported and ``scope`` says so.

    Before the CPU baseline is read, the C allocator hands its freed pages back to the system
    (``cpu_memory.return_freed_memory``). Without that, a block's tensors reuse memory that an
    earlier, larger call freed but kept resident, and the peak above the baseline reads near 0:
    one colour grad V at 128 px after a 1024-px gray one read 1.6 MiB instead of about 130.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.mib = float("nan")
        self.scope = ""

    @staticmethod
    def describe(device: torch.device) -> str:
        """What the numbers measure on ``device`` (for report headers)."""
        if device.type == "cuda":
            return "peak CUDA memory allocated by tensors during the measured call"
        return ("peak resident memory (VmHWM, reset before each call) above the resident "
                "memory before the call")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            self.scope = "cuda allocated, above what was allocated before"
        else:
            return_freed_memory()
            self._reset = _reset_peak_rss()
            self._base = _status_kib("VmRSS") if self._reset else 0
            self.scope = ("CPU peak RSS above the RSS before" if self._reset
                          else "CPU process peak RSS (could not reset)")
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) - self._base
            self.mib = peak / 2**20
        elif self._reset:
            self.mib = max(0, _status_kib("VmHWM") - self._base) / 1024
        else:
            self.mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return False


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return bool(_status_kib("VmHWM"))
    except OSError:
        return False
