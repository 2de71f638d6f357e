"""What observers of a run see: the ``Run``, each step's ``StepRecord``, and the events they receive.

The training loop only trains. Everything else a run does (metrics and TensorBoard, grids, the collapse
monitor, evaluation and the best checkpoint, checkpoints, the time limit, stop signals, agreement between
DDP processes, the final samples and report, and the callbacks a recipe names) is an observer with the
``ganzoo.Callback`` shape. Each lives in the module that owns its concern; ``train.observers_for`` lists them.

The contract, in order:

1. ``on_start(run)`` to every observer in list order (a resumed observer's saved state is loaded just before).
2. Each step: ``on_step(run, record)`` to every observer in list order. Events raised during a step reach every
   observer at once, in list order: ``on_grid(run, step, images)`` when the grid observer draws,
   ``on_eval(run, result)`` when the evaluation observer scores, and ``on_log(run, line)`` when the metrics
   observer writes a line (on logged steps, after every observer's ``on_step``: values given to ``run.log``
   during the step are in it). Last, the checkpoint observer saves (every ``train.checkpoint_every`` steps, and
   on a stop requested anywhere in the step). The list: stop signals, the recipe's schedules (which set the next step's values after the step's line), the time limit, metrics, grids,
   evaluation, the recipe's callbacks and ``train(callbacks=...)``, the progress bar, the collapse monitor,
   checkpoints, final samples, the run summary.
3. ``on_end(run)`` to every observer in list order after the last step of a run that did not fail (checkpoint,
   then samples, then ``run.json`` and the report); ``run.stop`` holds why a run ended early.
4. ``close()`` to every observer in reverse order, however the run ended.

An observer stops a run with ``run.request_stop(kind, reason)``: ``end`` finishes normally (final checkpoint,
samples, report; the reason is printed and kept in run.json and the report), ``interrupt`` and ``error`` save the
last checkpoint and raise. ``run.log({"name": value})`` adds a value of its own to the step's metrics line
(metrics.jsonl, TensorBoard, MLflow, the report).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

SEVERITY = {"end": 0, "interrupt": 1, "error": 2}
# attributes of Run that earlier versions had, and what replaced each (ganzoo.compat's table says when these notes go)
REMOVED = {"extra": "the last in-training evaluation is run.eval (step, n and scores); values of your own go to run.log"}


# the keys of a metrics line that ganzoo itself writes; anything else in a line was given to run.log
STANDARD_KEYS = ("step", "epoch", "d_loss", "g_loss", "penalty", "d_real", "d_fake", "aux", "aux_g", "gap", "img_per_s",
                 "data_frac", "lr_g", "lr_d")


@dataclass
class StepRecord:
    """One step's named values, as tensors on the training device (reading one waits for it).

    ``values``: ``d_loss``, ``g_loss``, ``d_real``, ``d_fake`` (mean critic scores), ``penalty`` (the sum of the critic
    regularizers' terms, 0 on steps without one), each regularizer's own term under ``penalty/NAME``
    (``penalty/r1``, ``penalty/gradient_penalty``, ``penalty/path_length``), and ``aux``/``aux_g`` for a critic with
    an auxiliary loss. Critic values
    are means over the step's ``n_critic`` critic updates. ``record.d_loss`` reads ``values["d_loss"]``.
    """

    step: int
    values: dict[str, torch.Tensor]
    data_seconds: float = 0.0

    def __getattr__(self, name):
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]
        if name in ("aux", "aux_g"):
            return None
        raise AttributeError(f"StepRecord has no value '{name}' (it has: {', '.join(values or ())})")


@dataclass
class Stop:
    kind: Literal["end", "interrupt", "error"]
    reason: str
    step: int = 0


@dataclass
class Run:
    """A training run as observers see it. The loop advances ``step``; observers read the rest."""

    recipe: Any
    run_dir: Path
    device: torch.device
    world: Any  # distributed.World
    generator: torch.nn.Module
    critic: torch.nn.Module
    ema: Any
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    objective: Any
    regularizers: list
    batches: Any  # data.BatchStream
    n_critic: int
    n_images: int
    start: int
    total: int
    resumed_from: Any = None  # the Checkpoint a resume started from
    step: int = 0
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    stop: Stop | None = None
    logged: dict | None = None  # the metrics line of this step when it is a logged step (set by watch.Metrics)
    metrics: dict = field(default_factory=dict)  # the last metrics line written
    grid: torch.Tensor | None = None  # the fixed-z grid images of this step when one was drawn (set by watch.Grids)
    eval: dict | None = None  # the last in-training evaluation: step, n and scores (set by evaluation.TrainingEval)
    best: dict | None = None  # the best evaluation so far (set by evaluation.TrainingEval)
    eval_seconds: float = 0.0  # time spent in in-training evaluation in this segment
    distinct: Any = None  # the final samples' distinctness check (set by sampling.FinalSamples)
    ranks: list | None = None  # per-process step counts of a DDP run (set by distributed.StopAgreement)
    checkpoint_path: Path | None = None
    labels: Any = None  # the LabelSpace of a conditional run (data.labels), else None
    run_id: str = ""  # drawn when a run begins, kept by its checkpoints and resumes: tells a run from another in the same folder
    observers: list = field(default_factory=list)
    pending: dict = field(default_factory=dict)  # values given to run.log since the last metrics line
    metrics_log: Any = None  # the metrics observer (watch.Metrics), for events and TensorBoard

    def __getattr__(self, name: str):
        replaced = REMOVED.get(name)
        if replaced is None:
            raise AttributeError(f"'Run' object has no attribute '{name}'")
        raise AttributeError(f"run.{name} was removed: {replaced} (docs/plugins.md, 'Porting')")

    def sampler(self) -> torch.nn.Module:
        """The generator that grids, evaluation and samples use: the weight average once it has begun."""
        return self.ema.module if self.ema is not None and int(self.ema.n_averaged) > 0 else self.generator

    def request_stop(self, kind: str, reason: str) -> None:
        """Stop after this step: ``end`` finishes normally (the reason is printed and kept in run.json and the report),
        ``interrupt`` and ``error`` save the last checkpoint and raise."""
        if kind not in SEVERITY:
            raise ValueError(f"request_stop: kind must be one of {', '.join(SEVERITY)}, got {kind!r}")
        if self.stop is None or SEVERITY[kind] > SEVERITY[self.stop.kind]:
            self.stop = Stop(kind, str(reason), self.step)

    def log(self, values: dict) -> None:
        """Add values of your own to the run's metrics: each name goes into the next line of metrics.jsonl (this
        step's when it is a logged step; the last value given wins), TensorBoard, MLflow and the report. Not from
        ``on_log`` (that line is written already); values given after the last line (in ``on_end``) are written as a
        line of their own when the run closes."""
        for key, value in values.items():
            if not isinstance(key, str) or not key or key in ("step", "epoch"):
                raise ValueError(f"run.log: {key!r} is not a name a value can be logged under")
            if self.__dict__.get("delivering_line"):
                raise ValueError(f"run.log({key!r}) in on_log: this step's line is already written; give values in "
                                 "on_step (they join this step's line) or later (they join the next)")
            if key in STANDARD_KEYS or key.startswith("penalty/"):
                raise ValueError(f"run.log: '{key}' is a value ganzoo logs itself (it would be overwritten, or overwrite it): "
                                 f"log yours under another name, e.g. 'my/{key}'")
            number = float(value)
            if not math.isfinite(number):
                logging.getLogger("ganzoo").warning(f"run.log: {key} is {number} at step {self.step}")
            self.pending[key] = number

    def emit(self, event: str, *args) -> None:
        """Deliver an event (``on_log``, ``on_grid``, ``on_eval``) to every observer, in list order."""
        for o in self.observers:
            method = getattr(o, event, None)
            if method is not None:
                method(self, *args)

    @property
    def images_per_step(self) -> int:
        return self.recipe.train.batch_size * self.n_critic * self.world.size

    def elapsed(self) -> dict:
        """Seconds of this run over all its segments (resumes included): in all, and of that, in evaluation."""
        before = (self.resumed_from.meta.get("time") or {}) if self.resumed_from is not None else {}
        now = self.seconds or time.perf_counter() - self.started
        return {"seconds": round(before.get("seconds", 0.0) + now, 3),
                "eval_seconds": round(before.get("eval_seconds", 0.0) + self.eval_seconds, 3)}

    def states(self) -> dict:
        """The JSON state of every observer and regularizer that keeps one, by its ``state_key`` (saved in checkpoints)."""
        return {o.state_key: o.state() for o in [*self.observers, *self.regularizers] if getattr(o, "state_key", None)}


class Observers:
    """Calls each observer in order; ``close()`` on those that have one, however the run ends."""

    def __init__(self, observers: list):
        self.items = list(observers)

    def on_start(self, run: Run) -> None:
        saved = run.resumed_from.meta if run.resumed_from is not None else {}
        for o in self.items:
            key = getattr(o, "state_key", None)
            if key and key in saved:
                o.load_state(saved[key])
            o.on_start(run)

    def on_step(self, run: Run, record: StepRecord) -> None:
        for o in self.items:
            o.on_step(run, record)
        for phase in ("write_line", "after_step"):  # the metrics line (then on_log); then checkpoints act on any stop
            for o in self.items:
                method = getattr(o, phase, None)
                if method is not None:
                    method(run)

    def on_end(self, run: Run) -> None:
        for o in self.items:
            o.on_end(run)

    def close(self) -> None:
        """Every observer's ``close``, even when one fails (its failure is a warning: the run's own outcome stands)."""
        for o in reversed(self.items):
            close = getattr(o, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - a failing close must not hide why the run ended
                logging.getLogger("ganzoo").warning(f"{getattr(o, 'name', type(o).__name__)}: closing failed: {type(exc).__name__}: {exc}")
