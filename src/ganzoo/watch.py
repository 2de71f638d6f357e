"""What a run writes while it trains, so it can be watched.

* ``metrics.jsonl``: one JSON line per logged step,
* TensorBoard events in ``tb/`` (scalars, and each fixed-z grid as an image),
* ``grids/step_NNNNNNN.png``: the same latent vectors (``fixed_z.safetensors``,
  saved once per run and reused on resume) at a configurable interval and
  always at 0/25/50/75/100 % of training,
* ``curves.png``: G and critic losses and the critic gap, smoothed (centred, over a tenth of the run), redrawn
  at each grid.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from .errors import GanzooError
from .fileio import atomic_write
from .interfaces import Callback
from .rundir import RunFiles
from .sampling import render, write_grid

log = logging.getLogger("ganzoo")

MILESTONES = (0.0, 0.25, 0.5, 0.75, 1.0)


def grid_steps(total: int, every: int | None) -> set[int]:
    steps = {round(total * f) for f in MILESTONES}
    if every:
        steps |= set(range(0, total + 1, every))
    return steps


def fixed_latents(run_dir: Path, n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """The run's fixed latent vectors: created once, then read back (resumed runs included)."""
    path = RunFiles(run_dir).fixed_latents
    if path.exists():
        z = load_file(str(path))["z"]
        if z.shape == (n, latent_dim):
            return z
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed + 7919))
    atomic_write(path, save({"z": z}), "fixed latents")
    return z


class Metrics(Callback):
    """Means of each log window (``train.log_every`` steps) in ``metrics.jsonl`` and TensorBoard; the divergence
    check. On logged steps ``on_step`` sets ``run.logged`` to the line (means of every named value of the window's
    records, speed, learning rates); after every observer's ``on_step``, ``write_line`` adds what observers gave
    ``run.log``, writes it and sends ``on_log`` to every observer."""

    name = "metrics"

    def __init__(self):
        self.file = self.tb = self.run = None

    def on_start(self, run) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.first_bad = torch.full((), -1, dtype=torch.long, device=run.device)  # first non-finite step, no host sync
        self.steps, self.data_seconds, self.since = 0, 0.0, time.perf_counter()
        run.metrics_log, self.run = self, run
        if not run.world.main:
            return
        path = RunFiles(run.run_dir).metrics_lines
        kept = _lines_up_to(path, run.start)  # resuming from an older checkpoint: drop what comes after it
        path.write_text("".join(json.dumps(line) + "\n" for line in kept))
        self.file = path.open("a")
        if run.recipe.output.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(RunFiles(run.run_dir).tensorboard), purge_step=run.start + 1 if run.start else None)

    def on_step(self, run, record) -> None:
        values = record.values
        for key, value in values.items():
            if key not in self.sums:  # a value first seen now (a lazy penalty): its window mean counts the steps before as 0
                self.sums[key] = torch.zeros((), dtype=torch.float64, device=run.device)
            self.sums[key] += value
        ok = torch.isfinite(values["d_loss"] + values["g_loss"] + values["penalty"])
        self.first_bad = torch.where(ok | (self.first_bad >= 0), self.first_bad, record.step)
        self.steps += 1
        self.data_seconds += record.data_seconds
        run.logged = None
        if run.step % run.recipe.train.log_every == 0 or run.step == run.total or run.stop is not None:
            run.logged = self.line(run)

    def write_line(self, run) -> None:
        """After every observer's ``on_step``: the line with ``run.log``'s values, to metrics.jsonl, TensorBoard and
        ``on_log``. A stop requested after this observer's ``on_step`` (a callback's) logs the step it ended on."""
        if run.logged is None and run.stop is not None and not run.world.distributed and self.steps:
            run.logged = self.line(run)
        if run.logged is None:
            return
        line = run.logged
        line.update(run.pending)
        run.pending.clear()
        run.metrics = line
        self._write(line)
        run.delivering_line = True  # run.log now would miss this line: refused (observers.Run.log)
        try:
            run.emit("on_log", line)
        finally:
            run.delivering_line = False

    def _write(self, line: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(line) + "\n")
            self.file.flush()
        if self.tb is not None:
            for key, value in line.items():
                if key not in ("step", "epoch"):
                    self.tb.add_scalar(key, value, line["step"])

    def on_grid(self, run, step: int, images) -> None:
        """The fixed-latent grid into TensorBoard, beside the metrics."""
        if self.tb is not None:
            from torchvision.utils import make_grid

            nrow = len(images) // run.labels.sizes[0] if run.labels is not None else max(1, int(math.sqrt(len(images))))
            self.tb.add_image("fixed_z", make_grid(images, nrow=max(1, nrow)), step)
            self.tb.flush()

    def line(self, run) -> dict:
        from . import distributed

        now = time.perf_counter()
        keys = list(self.sums)
        means = distributed.mean_over_ranks(torch.stack([self.sums[k] for k in keys]), run.world) / max(self.steps, 1)
        line = {"step": run.step, "epoch": run.batches.epoch, **dict(zip(keys, means.tolist()))}
        line.update(gap=line["d_real"] - line["d_fake"], img_per_s=run.images_per_step * self.steps / (now - self.since),
                    data_frac=self.data_seconds / (now - self.since),
                    lr_g=run.opt_g.param_groups[0]["lr"], lr_d=run.opt_d.param_groups[0]["lr"])
        bad = next((k for k, v in line.items() if not math.isfinite(v)), None)
        if bad is not None:
            raise GanzooError(f"training diverged: {bad} is {line[bad]} (first non-finite loss at step {int(self.first_bad)}); "
                              f"the last checkpoint on disk is untouched ({RunFiles(run.run_dir).checkpoints})")
        for value in self.sums.values():
            value.zero_()
        self.steps, self.data_seconds, self.since = 0, 0.0, now
        return line

    def event(self, step: int, **fields) -> None:
        """A non-metric line in metrics.jsonl (a warning, an evaluation, the stop reason)."""
        if self.file is None:
            return
        self.file.write(json.dumps({"step": step, **fields}) + "\n")
        self.file.flush()

    def close(self) -> None:
        run = self.run
        if run is not None and run.pending:  # values given to run.log after the last line (in on_end): a line of their own
            self._write({"step": run.step, **run.pending})
            run.metrics.update(run.pending)
            run.pending.clear()
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def event(run, **fields) -> None:
    """Write a non-metric line (a warning, an evaluation) into the run's metrics.jsonl, if it keeps one."""
    metrics = getattr(run, "metrics_log", None)
    if metrics is not None:
        metrics.event(run.step, **fields)


class Grids(Callback):
    """The fixed-z grid at step 0, every ``output.grid_every`` steps, at 25/50/75/100 % and at an early end;
    redraws ``curves.png`` with each. Sets ``run.grid`` to the images on the steps it draws."""

    name = "grids"

    def on_start(self, run) -> None:
        out = run.recipe.output
        self.at = grid_steps(run.total, out.grid_every)
        self.z = fixed_latents(run.run_dir, out.grid_size, run.recipe.generator.latent_dim, run.recipe.seed)
        self.y, self.nrow = None, None
        if run.labels is not None:  # one row per class of the first attribute, the same latents in every row
            k = run.labels.sizes[0]
            self.nrow = max(1, out.grid_size // k)
            self.y = run.labels.draw(self.nrow, run.recipe.seed).repeat(k, 1)
            self.y[:, 0] = torch.arange(k).repeat_interleave(self.nrow)
            self.z = self.z[: self.nrow].repeat(k, 1)
        self.last, self.curves_due = None, False
        self.history = [line for line in RunFiles(run.run_dir).lines() if "d_loss" in line]  # a resume's lines up to its step
        if run.start == 0:
            self.draw(run, 0)  # the untrained generator: not a diversity baseline

    def on_step(self, run, record) -> None:
        run.grid = self.draw(run, run.step) if run.step in self.at else None

    def on_log(self, run, line) -> None:
        if "d_loss" in line:
            self.history.append(line)
        self.write_curves(run)  # a grid's curves once its step's line (if it has one) is written

    def on_end(self, run) -> None:
        if self.last != run.step:  # a run ended early (train.time_limit) shows where it ended
            run.grid = self.draw(run, run.step)
        self.write_curves(run)

    def write_curves(self, run) -> None:
        """``curves.png`` redrawn once per grid drawn since the last redraw."""
        if self.curves_due and self.history:
            write_curves(self.history, RunFiles(run.run_dir).curves)
            self.curves_due = False

    def draw(self, run, step: int) -> torch.Tensor:
        # render runs on a fork of the RNG (fixed noise inputs): grids leave training's random stream as it was
        images = render(run.sampler(), self.z, y=self.y, seed=run.recipe.seed + 7919)
        rows = list(run.labels.classes[0]) if self.y is not None else None  # a conditional run: rows named by class
        write_grid(images, RunFiles(run.run_dir).grid(step), nrow=self.nrow, row_labels=rows)
        self.last, self.curves_due = step, True
        run.emit("on_grid", step, images)  # the metrics observer adds it to TensorBoard
        return images


def _lines_up_to(path: Path, step: int) -> list[dict]:
    """The JSON lines of ``path`` with ``step <= step``; a half-written last line (a crash) is dropped."""
    if not path.exists() or step == 0:
        return []
    out = []
    for text in path.read_text().splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict) and line.get("step", 0) <= step:
            out.append(line)
    return out


class Monitor(Callback):
    """Collapse signals, checked at log and grid times (NaN/Inf is the metrics' own stop).

    * the critic wins outright (the objective says so from the mean scores) for ``patience`` logs running,
      as experiment E2's critic did at epoch 17 (D loss ~1e-8, G loss large);
    * the diversity of the fixed-z batch (mean pairwise RMS distance) falls below ``diversity_drop`` of its best.

    A warning is logged and written to metrics.jsonl; with ``monitor.stop`` it stops the run (checkpoint first).
    """

    name = "monitor"
    state_key = "monitor"

    def __init__(self, spec, objective):
        self.spec, self.objective = spec, objective
        self.wins, self.best_diversity = 0, 0.0

    def state(self) -> dict:
        return {"wins": self.wins, "best_diversity": self.best_diversity}

    def load_state(self, state: dict) -> None:
        self.wins = state.get("wins", 0)
        self.best_diversity = state.get("best_diversity", 0.0)

    def on_log(self, run, line) -> None:
        self.warn(run, self.after_log(line))

    def on_grid(self, run, step, images) -> None:
        if step:  # the untrained generator is not a diversity baseline
            self.warn(run, self.after_grid(images))

    def warn(self, run, message: str | None) -> None:
        if message is None:
            return
        log.warning(f"step {run.step}: {message}")
        event(run, warning=message)
        if self.spec.stop:
            run.request_stop("error", f"stopped at step {run.step} by the collapse monitor (monitor.stop): {message}")

    def after_log(self, line: dict) -> str | None:
        if not self.spec.collapse:
            return None
        self.wins = self.wins + 1 if self.objective.critic_wins(line["d_real"], line["d_fake"]) else 0
        if self.wins == self.spec.patience:
            return (f"the critic wins outright (mean critic score real {line['d_real']:.1f}, fake {line['d_fake']:.1f}; "
                    f"D loss {line['d_loss']:.2g}, G loss {line['g_loss']:.2g}) for {self.wins} logs running: likely collapse")
        return None

    def after_grid(self, images: torch.Tensor) -> str | None:
        if not self.spec.collapse or len(images) < 2:
            return None
        from .sampling import pairwise_rms

        dist = pairwise_rms(images)
        diversity = float(dist[torch.isfinite(dist)].mean())
        self.best_diversity = max(self.best_diversity, diversity)
        if diversity < self.spec.diversity_drop * self.best_diversity:
            return (f"diversity of the fixed batch fell to {diversity:.3f} ({100 * diversity / self.best_diversity:.0f}% of its best "
                    f"{self.best_diversity:.3f}): likely mode collapse")
        return None


def penalty_terms(history: list[dict]) -> list[str]:
    """The regularizers' own terms in metrics lines (``penalty/NAME``), else the summed ``penalty`` of older runs."""
    own = list(dict.fromkeys(k for h in history for k in h if k.startswith("penalty/")))
    return own or ["penalty"]


def smooth(values: list[float], window: int | None = None) -> list[float]:
    """A centred moving average (no lag, unlike an exponential one) over ``window`` logged points, about a tenth
    of the run (odd, 1 to 51); shorter at the ends, NaNs (keys logged on some lines only) left out."""
    n = len(values)
    if window is None:
        window = min(max(n // 10, 1), 51) | 1
    half, out = window // 2, []
    for i in range(n):
        part = [v for v in values[max(0, i - half): i + half + 1] if not math.isnan(v)]
        out.append(sum(part) / len(part) if part else float("nan"))
    return out


def write_curves(history: list[dict], path: Path) -> Path:
    """G/critic losses and the critic gap E[D(x)] - E[D(G(z))] (the Wasserstein estimate for WGANs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    panels = [("losses", [("d_loss", "critic loss"), ("g_loss", "generator loss")]),
              ("critic gap E[D(x)] - E[D(G(z))]", [("gap", "gap")])]
    from .observers import STANDARD_KEYS

    terms = [k for k in penalty_terms(history) if any(h.get(k) for h in history)]
    if terms:
        panels.append(("regularizer terms", [(k, k.removeprefix("penalty/")) for k in terms]))
    own = list(dict.fromkeys(k for h in history for k in h if k not in STANDARD_KEYS and not k.startswith(("penalty/", "eval/"))))
    if own:
        panels.append(("logged by callbacks", [(k, k) for k in own]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        for key, label in series:
            values = [h.get(key, float("nan")) for h in history]
            ax.plot(steps, values, alpha=0.25)
            ax.plot(steps, smooth(values), label=label, color=ax.lines[-1].get_color())
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
