"""The progress bar: an observer that shows a run's progress with rich (a terminal or a Jupyter cell)."""

from __future__ import annotations

from .interfaces import Callback


class ProgressBar(Callback):
    """Step N/total, elapsed, ETA, and the last logged losses and speed."""

    name = "progress"

    def __init__(self, console=None):
        self.console, self.bar = console, None

    def on_start(self, run) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
        self.bar = Progress(*columns, console=self.console or Console(stderr=True))
        self.bar.start()
        self.task = self.bar.add_task(run.recipe.name, total=run.total, completed=run.start, stats="")

    def on_step(self, run, record) -> None:
        if run.logged:
            self.bar.update(self.task, completed=run.step, stats=stats_text(run.logged))
        else:
            self.bar.update(self.task, completed=run.step)

    def on_end(self, run) -> None:
        self.close()  # before the final outputs' log lines

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def stats_text(m: dict) -> str:
    text = f"D {m['d_loss']:.3f}  G {m['g_loss']:.3f}"
    if m["penalty"]:
        text += f"  GP {m['penalty']:.3f}"
    return text + f"  {m['img_per_s']:.0f} img/s  data {100 * m['data_frac']:.0f}%"
