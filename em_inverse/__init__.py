"""em-inverse: imaging inverse problems with a learned Energy Matching prior.

Public API::

    from em_inverse import solve, load_prior, operators
    physics = operators.build_operator("inpaint", x.shape, mask="random:0.5")
    solution = solve(y, physics, load_prior("natural-gray"), method="posterior")

The names are imported on first use (PEP 562), so the command line starts without torch and
deepinv when it only prints help or a usage error.
"""
from __future__ import annotations

import importlib

#: Public name -> the module that defines it.
_EXPORTS = {"EnergyPrior": "em_inverse.priors", "load_prior": "em_inverse.priors",
            "Solution": "em_inverse.solvers", "solve": "em_inverse.solvers",
            "operators": "em_inverse.operators",
            "keep_freed_memory": "em_inverse.cpu_memory"}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'em_inverse' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if name == "operators" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
