"""Devices and seeds: only CPU and CUDA are accepted; a seed is an integer in [0, 2^63); a
generator must draw where the prior runs."""
from __future__ import annotations

import pytest
import torch

from em_inverse.devices import check_generator_device, make_generator, resolve_device
from em_inverse.errors import UserError


def test_cpu_and_auto_resolve_and_other_device_types_are_refused():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    for name in ("mps", "meta", "xpu", "gpu", "cuda:x"):
        with pytest.raises(UserError, match="use auto, cpu or cuda"):
            resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_seeds_outside_0_to_2_63_are_user_errors_not_overflows():
    assert make_generator(2**63 - 1).initial_seed() == 2**63 - 1
    for bad in (-1, 2**63, 2**70, 1.5, True):
        with pytest.raises(UserError, match="seed must be an integer"):
            make_generator(bad)


def test_a_generator_must_draw_on_the_priors_device():
    check_generator_device(torch.Generator(), "cpu")
    with pytest.raises(UserError, match=r"the generator draws on cpu, the prior runs on cuda:0: "
                                        r"make it with torch.Generator\(device='cuda:0'\)"):
        check_generator_device(torch.Generator(), torch.device("cuda", 0))
