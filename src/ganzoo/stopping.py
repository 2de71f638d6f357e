"""Observers that end a run early: Ctrl-C / SIGTERM / SIGHUP (a closed terminal), and ``train.time_limit``."""

from __future__ import annotations

import logging
import signal
import threading
import time

from .interfaces import Callback

log = logging.getLogger("ganzoo")


# Ctrl-C, a polite kill, and a closed terminal (SIGHUP, where the system has it): each ends a run with a checkpoint
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignals(Callback):
    """Ctrl-C / SIGTERM / SIGHUP ask the run to stop after the current step (checkpoint, then ``Interrupted``);
    a second Ctrl-C aborts at once, and so does the first once the final outputs are being written."""

    name = "stop_signals"

    def __init__(self):
        self.requested = threading.Event()
        self.ending = False
        self.previous: dict = {}

    def on_start(self, run) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            if self.ending or (self.requested.is_set() and signum == signal.SIGINT):
                raise KeyboardInterrupt  # the final outputs (or a second Ctrl-C): stop now; checkpoints are written atomically
            self.requested.set()

        self.previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}

    def on_step(self, run, record) -> None:
        if self.requested.is_set() and run.step < run.total:
            run.request_stop("interrupt", "interrupted")

    def on_end(self, run) -> None:
        """From here on (final checkpoint, samples, report) a Ctrl-C stops at once: ``ganzoo resume`` finishes them."""
        if self.requested.is_set():
            raise KeyboardInterrupt  # asked during the last step: the run ends here, as it would have at any other step
        self.ending = True

    def close(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)
        self.previous = {}


class TimeLimit(Callback):
    """Ends the run (final checkpoint, samples, report) at the first step past ``minutes`` of training;
    ``ganzoo resume`` continues it."""

    name = "time_limit"

    def __init__(self, minutes: float):
        self.minutes = minutes

    def on_step(self, run, record) -> None:
        if run.step < run.total and time.perf_counter() - run.started >= 60 * self.minutes:
            run.request_stop("end", f"train.time_limit: {self.minutes:g} minutes reached")
