"""What observers of a run see: the ``Run``, each step's ``StepRecord``, and how they are called.

The training loop only trains. Everything else a run does — metrics and TensorBoard, grids, the collapse
monitor, evaluation and the best checkpoint, checkpoints, the time limit, stop signals, agreement between
DDP processes, the final samples and report, and the callbacks a recipe names — is an observer with the
``ganzoo.Callback`` shape: ``on_start(run)``, ``on_step(run, record)`` after each step, ``on_end(run)``.
Each lives in the module that owns its concern; ``train.observers_for`` lists them in the order they run.

An observer stops a run with ``run.request_stop(kind, reason)``: ``end`` finishes normally (final checkpoint,
samples, report), ``interrupt`` and ``error`` save the last checkpoint and raise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

SEVERITY = {"end": 0, "interrupt": 1, "error": 2}


@dataclass
class StepRecord:
    """One step's losses and mean scores, as tensors on the training device (reading one waits for it).

    Critic values are means over the step's ``n_critic`` critic updates; ``penalty`` sums every regularizer's
    (``None`` when no regularizer added one on this step). ``aux`` and ``aux_g`` are a critic's own auxiliary
    losses (an AC-GAN classifier's) in the critic and the generator step, ``None`` for critics without one.
    """

    step: int
    d_loss: torch.Tensor
    g_loss: torch.Tensor
    penalty: torch.Tensor | None
    d_real: torch.Tensor
    d_fake: torch.Tensor
    data_seconds: float = 0.0
    aux: torch.Tensor | None = None
    aux_g: torch.Tensor | None = None

    def values(self) -> dict[str, torch.Tensor]:
        zero = torch.zeros_like(self.d_loss)
        out = {"d_loss": self.d_loss, "g_loss": self.g_loss, "penalty": zero if self.penalty is None else self.penalty,
               "d_real": self.d_real, "d_fake": self.d_fake}
        if self.aux is not None or self.aux_g is not None:
            out.update(aux=zero if self.aux is None else self.aux, aux_g=zero if self.aux_g is None else self.aux_g)
        return out


@dataclass
class Stop:
    kind: Literal["end", "interrupt", "error"]
    reason: str


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
    grid: torch.Tensor | None = None  # the fixed-z grid images of this step when one was drawn (set by watch.Grids)
    best: dict | None = None  # the best evaluation so far (set by evaluation.TrainingEval)
    checkpoint_path: Path | None = None
    labels: Any = None  # the LabelSpace of a conditional run (data.labels), else None
    observers: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # anything observers share that has no field here

    def sampler(self) -> torch.nn.Module:
        """The generator that grids, evaluation and samples use: the weight average once it has begun."""
        return self.ema.module if self.ema is not None and int(self.ema.n_averaged) > 0 else self.generator

    def request_stop(self, kind: str, reason: str) -> None:
        if self.stop is None or SEVERITY[kind] > SEVERITY[self.stop.kind]:
            self.stop = Stop(kind, reason)

    @property
    def images_per_step(self) -> int:
        return self.recipe.train.batch_size * self.n_critic * self.world.size

    def elapsed(self) -> dict:
        """Seconds of this run over all its segments (resumes included): in all, and of that, in evaluation."""
        before = (self.resumed_from.meta.get("time") or {}) if self.resumed_from is not None else {}
        now = self.seconds or time.perf_counter() - self.started
        return {"seconds": round(before.get("seconds", 0.0) + now, 3),
                "eval_seconds": round(before.get("eval_seconds", 0.0) + self.extra.get("eval_seconds", 0.0), 3)}

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
