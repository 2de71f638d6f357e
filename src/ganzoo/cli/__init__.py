"""The ``ganzoo`` command: a thin typer layer over the Python API.

A module per group of commands, each registering on the one ``app`` (``common``), in the order ``ganzoo --help``
lists them: training, catalog (what is installed), images (what a trained generator draws), scores, explore, data.
"""

from __future__ import annotations

import inspect
import signal

from . import training, catalog, images, scores, explore, data  # noqa: F401,E401  (registering the commands, in order)
from .common import app, err, out, sane_columns

__all__ = ["app", "main", "out", "err"]


def _reflowed(doc: str) -> str:
    """A docstring as help text: each paragraph on one line, so the help screen wraps it to the terminal (typer
    keeps a docstring's own line breaks inside paragraphs after the first)."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _reflow_help(typer_app) -> None:
    for command in typer_app.registered_commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            command.help = _reflowed(command.callback.__doc__)
    for group in typer_app.registered_groups:
        _reflow_help(group.typer_instance)


_reflow_help(app)


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
