"""What every command shares: the consoles, the error handling, the app and its global options, option types
declared once, tables and progress bars."""

from __future__ import annotations

import functools
import logging
import os
import traceback
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..version import __version__
from ..contracts import ContractError
from ..errors import GanzooError
from ..fileio import expand
from ..log import PlainHandler
from ..progress import ProgressBar

MIN_COLUMNS = 40


def sane_columns() -> None:
    """A COLUMNS that no output fits (0, 5, text) would make rich print nothing or a column of ellipses: read it as
    80 when it is not a width at all, as 40 when it is narrower than that (lines wrap, nothing is lost)."""
    raw = os.environ.get("COLUMNS")
    if raw is None:
        return
    width = int(raw) if raw.strip().isdecimal() else 0
    if width < MIN_COLUMNS:
        os.environ["COLUMNS"] = str(MIN_COLUMNS if width > 0 else 80)


sane_columns()  # before the consoles below read it
app = typer.Typer(help="ganzoo: a plugin-based GAN zoo. One YAML recipe per experiment.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=True)
out = Console()
err = Console(stderr=True)


def unwrapped_when_redirected() -> None:
    """Output into a file or a pipe is not wrapped at 80 columns (a JSON line or a message stays one line), unless
    COLUMNS says how wide to wrap; tables still fit the width. Decided per command (the consoles outlive one)."""
    columns = "COLUMNS" in os.environ
    out.soft_wrap = not out.is_terminal and not columns
    err.soft_wrap = not err.is_terminal and not columns
DEBUG = {"on": False}  # --debug: set once per command line


class RichLogHandler(logging.Handler):
    """The core's plain log lines, rendered for a terminal: warnings in yellow, errors in red, no markup read."""

    STYLES = {logging.WARNING: ("warning: ", "yellow"), logging.ERROR: ("error: ", "bold red")}

    def emit(self, record: logging.LogRecord) -> None:
        level = max((lv for lv in self.STYLES if record.levelno >= lv), default=None)
        prefix, style = self.STYLES.get(level, ("", ""))
        text = Text(prefix, style=style) + Text(record.getMessage()) if prefix else Text(record.getMessage())
        err.print(text, highlight=False, soft_wrap=True)


def use_rich_logging() -> None:
    logger = logging.getLogger("ganzoo")
    logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, (PlainHandler, RichLogHandler))] + [RichLogHandler()]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def friendly(fn):
    """Print a GanzooError as one red line and exit 2: no traceback for problems the user can fix."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        sane_columns()
        unwrapped_when_redirected()
        use_rich_logging()
        try:
            return fn(*args, **kwargs)
        except GanzooError as exc:
            if DEBUG["on"] and exc.__cause__ is not None:  # a plugin's exception: its traceback, for its author
                err.print("".join(traceback.format_exception(exc.__cause__)), highlight=False, markup=False, soft_wrap=True)
            label = getattr(exc, "label", "error")  # "stopped" for a clean interruption (its checkpoint written)
            style = "bold red" if label == "error" else "bold yellow"
            hint = (" (its traceback: ganzoo --debug COMMAND ...)" if isinstance(exc, ContractError) and exc.__cause__ is not None
                    and not DEBUG["on"] else "")
            err.print(f"[{style}]{label}:[/] {escape(str(exc) + hint)}", highlight=False, soft_wrap=True)
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None
        except OSError as exc:  # an unwritable output folder, a full disk: still one line
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            err.print(f"[bold red]error:[/] {escape(exc.strerror or str(exc))}{escape(where)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[bold red]aborted[/] (Ctrl-C) before the command finished: what it had written is complete (files are "
                      "written whole) and checkpoints on disk are intact", highlight=False)
            raise typer.Exit(130) from None
    return wrapper


def path_arg(value: str) -> Path:
    """A path option or argument: never empty (``Path("")`` would silently mean the current folder)."""
    if not str(value).strip():
        raise typer.BadParameter("an empty path; give a file or folder (use . for the current folder)")
    try:
        return expand(value)
    except GanzooError as exc:
        raise typer.BadParameter(str(exc)) from None


def task_progress(bar):
    """``progress(what, done, total)`` drawing one task of a rich ``Progress`` per ``what``."""
    tasks: dict = {}

    def progress(what, done, total):
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    return progress


def version_option(value: bool):
    if value:
        out.print(f"ganzoo {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main_options(version: bool = typer.Option(False, "--version", callback=version_option, is_eager=True, help="print the version and exit"),
                 debug: bool = typer.Option(False, "--debug", help="with an error raised in a plugin's code, also print its traceback")):
    """ganzoo: a plugin-based GAN zoo. One YAML recipe per experiment."""
    DEBUG["on"] = debug


def training_progress(quiet: bool):
    return False if quiet else ProgressBar(console=err)


def label_choice(given: list[str]):
    return "random" if given == ["random"] else (given or None)


def report_distinct(report) -> None:
    i, j = report.closest_pair
    line = (f"distinct: min pairwise RMS distance {report.min_distance:.4f} (images {i} and {j}); "
            f"{len(report.close_pairs)} pairs under {report.threshold}; {report.regenerated} regenerated")
    err.print(("[green]" if report.ok else "[yellow]") + line + "[/]", highlight=False)


def progress_display(*fields, eta: bool = True) -> Progress:
    """A transient progress display on stderr (off when stderr is not a terminal): what, a bar, done of total,
    ``fields`` (more rich columns), the time elapsed and (``eta``) the time left."""
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), *fields, TimeElapsedColumn(),
                    *((TextColumn("eta"), TimeRemainingColumn()) if eta else ()), console=err, transient=True,
                    disable=not err.is_terminal)


def key_values(title: str, rows) -> Table:
    """A two-column table without header: ``rows`` of (key, value)."""
    table = Table(title=title, show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    return table


# -- option types shared by several commands (one declaration, one wording) -----------------------------------------------
Ema = Annotated[bool, typer.Option("--ema/--no-ema", help="use the generator's weight average when the checkpoint has one")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda")]
Seed = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="seed of the latent vectors")]
Truncation = Annotated[Optional[float], typer.Option("--truncation", min=0.05, help="truncation trick: draw z from N(0,1) cut to [-t, t]")]
Overrides = Annotated[Optional[List[str]], typer.Option("--set", "-s", help="override a key: --set train.steps=200")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]
RecipeArg = Annotated[str, typer.Argument(help="recipe YAML file, or the name of a shipped recipe (ganzoo recipes)")]
Source = Annotated[Path, typer.Argument(help="run directory, checkpoint .safetensors file or exported model folder",
                                        parser=path_arg)]


def force_option(help: str):
    """``--force`` with what it replaces, said per command."""
    return Annotated[bool, typer.Option("--force", help=help)]


def labels_option(help: str):
    return Annotated[List[str], typer.Option("--label", "-l", help=help)]
