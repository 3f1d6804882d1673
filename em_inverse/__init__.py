"""em-inverse: imaging inverse problems with a learned Energy Matching prior.

Public API::

    from em_inverse import solve, load_prior, operators
    physics = operators.build_operator("inpaint", x.shape, mask="random:0.5")
    solution = solve(y, physics, load_prior("natural-gray"), method="posterior")
"""
from em_inverse import operators
from em_inverse.priors import EnergyPrior, load_prior
from em_inverse.solvers import Solution, solve

__all__ = ["EnergyPrior", "Solution", "load_prior", "operators", "solve"]
__version__ = "0.1.0"
