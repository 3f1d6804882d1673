"""A graceful stop for training: SIGINT/SIGTERM are noted, and the loop ends between steps."""
from __future__ import annotations

import signal
import threading


class StopRequest:
    """SIGINT/SIGTERM set a flag; the loop stops between steps, so the saved state is whole."""

    def __init__(self):
        self.requested = False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.request)

    def request(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
