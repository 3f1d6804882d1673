"""The progress report of a solve: a tqdm bar on stderr plus the caller's callback."""
from __future__ import annotations

import sys


class SolveProgress:
    """tqdm on stderr plus the user's callback; ``update(step, info)`` (solvers fill ``info``
    every 10 steps only, so a GPU run is not synchronised on every step). ``enabled``: None
    draws the bar only when stderr is a terminal; ``callback(step, total, info)`` or None."""

    def __init__(self, enabled: bool | None, total: int, desc: str, callback):
        from tqdm.auto import tqdm

        self.total, self.callback, self.done = total, callback, 0
        self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False,
                        disable=None if enabled is None else not enabled, dynamic_ncols=True)

    def update(self, step: int, info: dict) -> None:
        if info:  # before the update, which renders it: the bar shows this step's values
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in info.items()}, refresh=False)
        self.bar.update(step - self.done)
        self.done = step
        if self.callback is not None:
            self.callback(step, self.total, info)

    def close(self) -> None:
        self.bar.close()

