"""Showing a run's progress: a rich bar in a terminal or a Jupyter cell, plain log lines anywhere else.

With stderr redirected (nohup, a cluster job's log file), a bar would only be written once, at the end: the
observer logs a plain line (step, losses with the step they were logged at, img/s, elapsed, ETA) every
``every_seconds`` instead; so does a notebook without ipywidgets (rich's bar there needs them), every 5 s. In a
narrow terminal the bar keeps the step count, total and ETA and drops the loss columns first.
"""

from __future__ import annotations

import importlib.util
import logging
import time

from .interfaces import Callback

log = logging.getLogger("ganzoo")


class ProgressBar(Callback):
    """Step N/total, elapsed, ETA, and the last logged losses and speed."""

    name = "progress"

    def __init__(self, console=None, every_seconds: float = 10.0):
        self.console, self.every, self.bar = console, every_seconds, None
        self.last_tick = None  # when the last plain line was logged

    def on_start(self, run) -> None:
        from rich.console import Console

        console = self.console or Console(stderr=True)
        self.t0, self.done0, self.last_line = time.perf_counter(), run.start, None
        if console.is_jupyter and importlib.util.find_spec("ipywidgets") is None:
            self.plain, self.every = True, min(self.every, 5.0)  # rich draws a notebook bar with ipywidgets only
            return
        if not (console.is_terminal or console.is_jupyter):
            self.plain = True
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.plain = False
        wide = console.width >= 110
        self.stats_width = max(console.width - 60, 0)  # what the name, bar, N/total and both times leave
        columns = [TextColumn("[bold blue]{task.description}"), BarColumn(bar_width=None if wide else 16), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
        if self.stats_width >= 12:
            columns.append(TextColumn("{task.fields[stats]}"))
        name = run.recipe.name if wide or len(run.recipe.name) <= 14 else run.recipe.name[:13] + "…"
        self.bar = Progress(*columns, console=console)
        self.bar.start()
        self.task = self.bar.add_task(name, total=run.total, completed=run.start, stats="")

    def on_step(self, run, record) -> None:
        if self.plain:
            self._plain_line(run)
        else:
            self.bar.update(self.task, completed=run.step)

    def on_log(self, run, line) -> None:
        self.last_line = line
        if not self.plain and self.bar is not None:
            self.bar.update(self.task, completed=run.step, stats=stats_text(line, self.stats_width))

    def _plain_line(self, run) -> None:
        now = time.perf_counter()
        if run.logged:
            self.last_line = run.logged
        first = run.step == self.done0 + 1
        if not (first or run.step == run.total or self.last_tick is None or now - self.last_tick >= self.every):
            return
        self.last_tick = now
        elapsed = now - self.t0
        rate = (run.step - self.done0) / elapsed if elapsed > 0 else 0.0
        eta = (run.total - run.step) / rate if rate > 0 else float("nan")
        stats = ""
        if self.last_line:
            at = self.last_line.get("step", run.step)
            stats = f"  {stats_text(self.last_line, 200)}" + (f" (logged at step {at})" if at != run.step else "")
        log.info(f"{run.recipe.name} step {run.step}/{run.total} ({100 * run.step / run.total:.0f}%){stats}  "
                 f"elapsed {clock(elapsed)}  eta {clock(eta)}")

    def on_end(self, run) -> None:
        self.close()  # before the final outputs' log lines

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def clock(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def stats_text(m: dict, width: int = 200) -> str:
    """The last logged losses and speed, as much of them as ``width`` characters allow (losses first)."""
    parts = [f"D {m['d_loss']:.3f}", f"G {m['g_loss']:.3f}"]
    terms = [k for k in m if k.startswith("penalty/")]  # each regularizer's term under its own name
    parts += [f"{k.removeprefix('penalty/')} {m[k]:.3g}" for k in terms]
    if not terms and m.get("penalty"):
        parts.append(f"penalty {m['penalty']:.3f}")
    parts += [f"{m['img_per_s']:.0f} img/s", f"data {100 * m['data_frac']:.0f}%"]
    text = ""
    for part in parts:
        if len(text) + len(part) + 2 > width:
            break
        text = f"{text}  {part}" if text else part
    return text
