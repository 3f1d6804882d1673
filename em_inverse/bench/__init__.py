"""Benchmark machinery (SPEC 7, issue 5): test images, metrics, offline baselines, suites.

Entry points: ``run_suite(name, ...)`` (also ``em-inverse bench SUITE``), and the building
blocks ``load_test_images``, ``load_fashion_images``, ``psnr``, ``ssim`` and ``BASELINES``.
Imports are lazy so that ``import em_inverse.bench`` stays cheap.
"""
from __future__ import annotations

__all__ = ["SUITES", "run_suite"]


def __getattr__(name):
    if name in __all__:
        from em_inverse.bench import suites

        return getattr(suites, name)
    raise AttributeError(name)
