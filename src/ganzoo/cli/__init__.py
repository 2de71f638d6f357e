"""The ``ganzoo`` command: a thin typer layer over the Python API.

A module per group of commands, each registering on the one ``app`` (``common``), in the order ``ganzoo --help``
lists them: training, catalog (what is installed), images (what a trained generator draws), scores, explore, data.
"""

from __future__ import annotations

import signal

from . import training, catalog, images, scores, explore, data  # noqa: F401,E401  (registering the commands, in order)
from .common import app, err, out, sane_columns

__all__ = ["app", "main", "out", "err"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C is a KeyboardInterrupt again (see errors.py)
    for name in ("SIGTERM", "SIGHUP"):  # a kill or a closed terminal stops a command as Ctrl-C does: what it wrote is said
        if hasattr(signal, name):  # (a training run replaces these with its own: a checkpoint first)
            signal.signal(getattr(signal, name), _interrupt)
    sane_columns()
    try:
        app()
    except KeyboardInterrupt:  # outside a command's own handling (while typer parses, say): one line, no traceback
        err.print("[bold red]aborted[/] (Ctrl-C)", highlight=False)
        raise SystemExit(130) from None
