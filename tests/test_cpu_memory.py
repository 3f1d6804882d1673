"""Keeping freed memory on the CPU (``em_inverse.cpu_memory``): grad V called again reuses the
pages of the last call instead of faulting in fresh ones; the command line opts in."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PAGE_FAULTS_OF_REPEATED_GRAD_V = """
import resource, sys, torch
from em_inverse import keep_freed_memory
from em_inverse.cpu_memory import freed_memory_kept
from em_inverse.priors import ConvEnergy, EnergyPrior
assert not freed_memory_kept()
if sys.argv[1] == "kept":
    assert keep_freed_memory() and keep_freed_memory()  # a second call is harmless
    assert freed_memory_kept()
torch.manual_seed(0)
prior = EnergyPrior(ConvEnergy(channels=1, width=8, levels=2)).frozen()
x = torch.rand(4, 1, 384, 384)  # activations of 4 to 18 MiB each
def page_faults_of_grad_v():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    prior.value_and_grad(x)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
for _ in range(2):  # the first calls map their memory under either policy
    page_faults_of_grad_v()
print(sum(page_faults_of_grad_v() for _ in range(3)))
"""


def _page_faults_of_three_grad_v(policy: str) -> int:
    done = subprocess.run([sys.executable, "-c", PAGE_FAULTS_OF_REPEATED_GRAD_V, policy],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator policy")
def test_repeated_grad_v_reuses_its_memory_once_freed_memory_is_kept():
    plain = _page_faults_of_three_grad_v("plain")  # glibc's default: fresh pages every call
    assert plain > 30_000
    assert _page_faults_of_three_grad_v("kept") < plain / 10


def test_the_command_line_keeps_freed_memory(monkeypatch):
    from em_inverse.cli import app

    calls = []
    monkeypatch.setattr(app, "keep_freed_memory", lambda: calls.append(True))
    monkeypatch.setattr(sys, "argv", ["em-inverse", "priors", "--help"])
    with pytest.raises(SystemExit) as exited:
        app.main()
    assert exited.value.code == 0 and calls == [True]
