"""Solvers for y = A x + noise with an energy prior, behind ``solve``: MAP (L-BFGS), annealed
half-quadratic splitting (HQS), posterior sampling (ULA/MALA chains), Langevin chains annealed
over the prior's noise levels, and the Energy Matching annealed sampler."""
from em_inverse.solvers.api import METHODS, SAMPLERS, noise_level, solve
from em_inverse.solvers.init import initial_estimate
from em_inverse.solvers.interaction import Interaction
from em_inverse.solvers.objective import Objective, SolverError
from em_inverse.solvers.solution import Diagnostics, Solution
from em_inverse.solvers.stabilised import stabilised_problem
from em_inverse.solvers.tuned_entries import (CLEAN_SUFFIX, HOLE_KEY, clean_below, hqs_fallback,
                                             tuned_defaults)

__all__ = ["CLEAN_SUFFIX", "HOLE_KEY", "METHODS", "SAMPLERS", "Diagnostics", "Interaction",
           "Objective", "Solution", "SolverError", "clean_below", "hqs_fallback",
           "initial_estimate", "noise_level", "solve", "stabilised_problem", "tuned_defaults"]
