"""Solvers for y = A x + noise with an energy prior: MAP (L-BFGS), posterior sampling
(ULA/MALA chains) and the Energy Matching annealed sampler, behind ``solve``."""
from em_inverse.solvers.api import METHODS, solve
from em_inverse.solvers.init import initial_estimate
from em_inverse.solvers.interaction import Interaction
from em_inverse.solvers.objective import Objective, SolverError
from em_inverse.solvers.solution import Diagnostics, Solution

__all__ = ["METHODS", "Diagnostics", "Interaction", "Objective", "Solution", "SolverError",
           "initial_estimate", "solve"]
