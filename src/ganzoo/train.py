"""The training loop: one loop for every objective.

A step is ``n_critic`` critic updates, each on a fresh real batch, then one generator update (``GANStep``).
The objective supplies the losses, the regularizers every constraint on the critic; the loop owns the
optimizers and the data. Everything else a run does is an observer (``ganzoo.observers``), listed in
``observers_for``: the loop calls them after each step and stops when one of them asks.

A checkpoint holds everything the loop's future depends on (weights, optimizer states, step, data
position, every RNG, observers' state), so a resumed run is bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from . import conditional, distributed, rng, watch
from .checkpoint import Checkpoint, load_checkpoint, restore_training
from .data import BatchStream, build_augment, load_data
from .errors import GanzooError, Interrupted
from .fileio import atomic_write
from .interfaces import Callback, unwrap
from .models import build_models, build_objective, build_regularizers, make_ema, preflight
from .observers import Observers, Run, StepRecord
from .recipe import Recipe, flat_keys, load_recipe
from .registry import Registry, get_registry
from .rundir import ModelFiles, RunFiles, RunLock, new_run_dir
from .trained import checkpoint_labels

log = logging.getLogger("ganzoo")


@dataclass
class RunResult:
    run_dir: Path
    checkpoint: Path
    steps: int
    seconds: float
    images_per_second: float
    metrics: dict


class GANStep:
    """One training step: the critic updates, then the generator update. Returns the step's ``StepRecord``."""

    def __init__(self, run: Run, scaling: "LossScaling | None" = None):
        self.run, cfg = run, run.recipe.train
        G, D = run.generator, run.critic
        if cfg.compile:
            G, D = torch.compile(G), torch.compile(D)
        self.G = distributed.wrap(G, run.world, run.device)
        self.critic = distributed.wrap(D, run.world, run.device)  # the one critic handle: what the losses score with
        self.has_aux = bool(getattr(run.critic, "has_aux", False))
        named = [(term_name(r, i, run.regularizers), r) for i, r in enumerate(run.regularizers)]
        self.critic_regs = [(n, r) for n, r in named if getattr(r, "target", "critic") == "critic"]
        self.generator_regs = [(n, r) for n, r in named if getattr(r, "target", "critic") == "generator"]
        # mixed precision on CUDA only (prepare() says so on a CPU); fp16 scales its losses (LossScaling)
        self.amp_dtype = AMP_DTYPES.get(cfg.precision) if run.device.type == "cuda" else None
        self.scalers = scaling  # fp16's gradient scalers (an observer too: checkpoints keep their state)
        self.channels_last = cfg.channels_last
        self.mismatch = run.recipe.condition.mismatch if run.recipe.condition is not None else 0.0

    def see(self, images: torch.Tensor) -> torch.Tensor:
        """What the critic sees: every regularizer's augmentation (DiffAugment), real and fake alike."""
        for reg in self.run.regularizers:
            images = reg.augment(images)
        return images

    def autocast(self):
        return torch.autocast(self.run.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None else nullcontext()

    def update(self, loss: torch.Tensor, optimizer, role: str) -> None:
        """Backward and optimizer step; through the role's gradient scaler when the run has them (fp16)."""
        if self.scalers is None:
            loss.backward()
            optimizer.step()
            return
        scaler = getattr(self.scalers, role)
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # skipped when a gradient is inf/NaN; the scale then shrinks
        scaler.update()

    def __call__(self, step: int) -> StepRecord:
        run = self.run
        run.critic.requires_grad_(True)
        sums, data_seconds = {}, 0.0
        for i in range(run.n_critic):
            t0 = time.perf_counter()
            real, y = run.batches.next_labelled()
            if self.channels_last:
                real = real.contiguous(memory_format=torch.channels_last)
            data_seconds += time.perf_counter() - t0
            for key, value in self.critic_step(real, y, (step - 1) * run.n_critic + i).items():
                sums[key] = _add(sums.get(key), value)
        values = sums if run.n_critic == 1 else {k: v / run.n_critic for k, v in sums.items()}
        values.update(self.generator_step(step, real, y))
        zero = torch.zeros_like(values["d_loss"])
        values.setdefault("penalty", zero)
        if self.has_aux:
            values.setdefault("aux", zero), values.setdefault("aux_g", zero)
        return StepRecord(step, values, data_seconds)

    def scores(self, critic, images: torch.Tensor, y, aux: str | None = None):
        """``(scores, auxiliary loss or None)`` of ``critic`` (labels ``y`` for a conditional one; ``aux`` is the batch's
        kind, ``real``/``fake``/``generator``, for a critic with an auxiliary loss)."""
        args = (images,) if y is None else (images, y)
        if aux is None or not self.has_aux:
            return critic(*args).float(), None
        scores, extra = critic(*args, aux=aux)
        return scores.float(), extra

    def fake(self, n: int, y, grad: bool):
        """``(z, images)``: a latent batch and the images generated from it (for labels ``y`` when conditional)."""
        G, z = (self.G if grad else self.run.generator), self.run.generator.sample_latent(n, device=self.run.device)
        return z, (G(z) if y is None else G(z, y))

    def critic_step(self, real: torch.Tensor, y, critic_step: int) -> dict:
        run, bs = self.run, self.run.recipe.train.batch_size
        with self.autocast():
            with torch.no_grad():
                _, fake = self.fake(bs, y, grad=False)  # the data's labels: generated classes follow the data's frequencies
            real, fake = self.see(real), self.see(fake)
            real_scores, aux_real = self.scores(self.critic, real, y, "real")
            fake_scores, aux_fake = self.scores(self.critic, fake, y, "fake")
            loss = run.objective.critic_loss(real_scores, fake_scores)
            for reg in run.regularizers:
                reg.observe(real_scores.detach(), fake_scores.detach())
            if self.mismatch:  # E1's matching-aware term: real images with a wrong label are fakes too
                loss = conditional.matching_aware(loss, run.objective, real_scores, self.scores, self.critic, real, y,
                                                  run.labels, self.mismatch)
            aux = _add(aux_real, aux_fake)
            # a penalty takes its input gradients out of place (autograd.grad, create_graph=True), then the one
            # backward below reaches DDP's all-reduce hooks: PyTorch's supported way under DDP
            penalty, terms, critic = None, {}, conditional.bind_labels(self.critic, y)
            for name, reg in self.critic_regs:
                if critic_step % reg.every == 0:
                    term = reg.penalty(critic, real, fake)
                    scored = getattr(reg, "score_penalty", None)
                    term = _add(term, scored(critic, real, fake, real_scores, fake_scores) if scored else None)
                    if term is not None:
                        terms[name] = term.detach()
                    penalty = _add(penalty, term)
        run.opt_d.zero_grad(set_to_none=True)
        self.update(_add(_add(loss, penalty), aux), run.opt_d, "critic")
        for reg in run.regularizers:
            reg.after_critic_step(run.critic)
        out = {"d_loss": loss.detach(), "d_real": real_scores.detach().mean(), "d_fake": fake_scores.detach().mean(), **terms}
        if penalty is not None:
            out["penalty"] = penalty.detach()
        if aux is not None:
            out["aux"] = aux.detach()
        return out

    def generator_step(self, step: int, real: torch.Tensor, y) -> dict:
        run, bs = self.run, self.run.recipe.train.batch_size
        run.critic.requires_grad_(False)  # no critic weight gradients needed for the G step
        critic = unwrap(self.critic, through=("ddp",))  # nor DDP's all-reduce
        with self.autocast():
            z, fake = self.fake(bs, y, grad=True)
            fake_scores, aux = self.scores(critic, self.see(fake), y, "generator")
            real_scores = None
            if run.objective.generator_uses_real:  # relativistic losses: the current critic on the last real batch
                with torch.no_grad():
                    real_scores, _ = self.scores(critic, self.see(real), y)
            loss = run.objective.generator_loss(fake_scores, real_scores)
            penalty, terms = None, {}
            for name, reg in self.generator_regs:  # generator-side terms (path length)
                if step % reg.every == 0:
                    term = reg.generator_penalty(conditional.bind_labels(self.G, y), z, fake)
                    if term is not None:
                        terms[name] = term.detach()
                    penalty = _add(penalty, term)
        run.opt_g.zero_grad(set_to_none=True)
        self.update(_add(_add(loss, penalty), aux), run.opt_g, "generator")
        if run.ema is not None and step > run.recipe.ema.start:
            run.ema.update_parameters(run.generator)
        out = {"g_loss": loss.detach(), **terms}
        if aux is not None:
            out["aux_g"] = aux.detach()
        return out


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class LossScaling(Callback):
    """fp16's gradient scalers, one per optimizer (``torch.amp.GradScaler``), as an observer so that checkpoints keep
    their state: a resumed fp16 run scales its losses as an uninterrupted one would. Added for ``train.precision:
    fp16`` on CUDA; the loop uses them wherever a run has this observer.

    Penalties that take input gradients (R1, the gradient penalty) compute them from unscaled losses: under fp16
    small input gradients can underflow, so bf16 is the safer choice for those recipes."""

    name = "loss_scaling"
    state_key = "grad_scalers"

    def __init__(self, device_type: str = "cuda"):
        self.critic = torch.amp.GradScaler(device_type)
        self.generator = torch.amp.GradScaler(device_type)

    def state(self) -> dict:
        return {"critic": self.critic.state_dict(), "generator": self.generator.state_dict()}

    def load_state(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.generator.load_state_dict(state["generator"])


def loss_scaling(recipe: Recipe, device, callbacks=()) -> LossScaling | None:
    """fp16's gradient scalers for ``train.precision: fp16`` on CUDA, or ones given among ``train(callbacks=...)``
    (the scaled path on any device, as tests drive it); None otherwise."""
    given = next((c for c in callbacks if isinstance(c, LossScaling)), None)
    if given is not None:
        return given
    return LossScaling(device.type) if recipe.train.precision == "fp16" and device.type == "cuda" else None


def term_name(reg, index: int, regularizers: list) -> str:
    """The metrics key of a regularizer's term: ``penalty/NAME`` (``NAME_2``... when the name repeats)."""
    name = getattr(reg, "name", None) or type(reg).__name__.lower()
    same = [r for r in regularizers[:index] if (getattr(r, "name", None) or type(r).__name__.lower()) == name]
    return f"penalty/{name}" + (f"_{len(same) + 1}" if same else "")


def fit(run: Run, observers: Observers, scaling: "LossScaling | None" = None) -> None:
    """The loop: a step, then every observer, until the last step or until an observer asks to stop."""
    step_fn = GANStep(run, scaling)
    observers.on_start(run)
    for step in range(run.start + 1, run.total + 1):
        record = step_fn(step)
        run.step = step
        observers.on_step(run, record)
        if run.stop is not None:
            break
    run.seconds = time.perf_counter() - run.started


def train(recipe: Recipe, run_dir=None, *, resume: Checkpoint | str | Path | None = None, registry: Registry | None = None,
          progress=True, callbacks=()) -> RunResult:
    """Train the recipe; write checkpoint, samples and the resolved recipe into the run directory.

    ``resume`` (a checkpoint, its path, or a run directory) restores weights, optimizers, step, data
    position, RNG and observer states and continues to the recipe's length. ``progress``: a progress bar
    (``True``), none (``False``), or an observer of your own that shows it. ``callbacks``: more observers
    (``ganzoo.Callback`` instances) beside those the recipe names. Under torchrun every rank calls this;
    only rank 0 writes.
    """
    registry = registry or get_registry()
    threads_before = torch.get_num_threads()
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    else:
        busy_machine_note()
    try:
        return _train(recipe, run_dir, resume, registry, progress, callbacks)
    finally:  # the thread count is the process's: a notebook's later work must not inherit a recipe's
        torch.set_num_threads(threads_before)


def _train(recipe: Recipe, run_dir, resume, registry: Registry, progress, callbacks) -> RunResult:
    device = distributed.pick_device(recipe.train.device)
    world = distributed.setup(device.type)
    device = distributed.device_for(world, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        run, lock = prepare(recipe, run_dir, resume, registry, device, world)
        try:
            scaling = loss_scaling(recipe, device, callbacks)
            observers = Observers(observers_for(run, registry, progress if world.main else False, callbacks, scaling))
            run.observers = observers.items
            try:
                fit(run, observers, scaling)
                finish(run, observers)
            finally:
                observers.close()
        finally:
            if lock is not None:
                lock.release()
        result = RunResult(run.run_dir, run.checkpoint_path or RunFiles(run.run_dir).last, run.step,
                           run.seconds, (run.step - run.start) * run.images_per_step / max(run.seconds, 1e-9), run.metrics)
        distributed.barrier(world)  # ranks leave together: a rank tearing gloo down while rank 0 still writes can abort
        return result
    finally:
        distributed.teardown(world)


def finish(run: Run, observers: Observers) -> None:
    """After the loop: raise for an interrupted or stopped run (its checkpoint is written), else the final outputs."""
    stop, where = run.stop, run.checkpoint_path or RunFiles(run.run_dir).checkpoints
    if stop is not None and stop.kind == "interrupt":
        raise Interrupted(f"interrupted at step {run.step}/{run.total}: checkpoint saved to {where}; "
                          f"continue with: ganzoo resume {run.run_dir}")
    if stop is not None and stop.kind == "error":
        best = run.best
        kept = (f"; best checkpoint (step {best['step']}, {best['metric']} {best['score']:.4g}) kept at "
                f"{RunFiles(run.run_dir).checkpoint('best')}") if best else ""
        raise GanzooError(f"{stop.reason}; checkpoint of step {run.step} at {where}{kept}")
    if stop is not None:  # an early end asked for by an observer (train.time_limit, a callback): say why
        log.info(f"stopped at step {run.step}/{run.total}: {stop.reason}")
        watch.event(run, stop=stop.reason)
    try:
        observers.on_end(run)  # final checkpoint, samples, report: a Ctrl-C here stops at once (StopSignals)
    except KeyboardInterrupt:
        saved = run.checkpoint_path is not None
        raise Interrupted(f"interrupted while writing the run's final outputs at step {run.step}/{run.total}: "
                          + ("its checkpoint is saved, the samples and report are not complete" if saved else
                             "the final checkpoint was not written (the one before it is intact)")
                          + f"; finish with: ganzoo resume {run.run_dir}") from None


def prepare(recipe: Recipe, run_dir, resume, registry: Registry, device, world) -> tuple[Run, RunLock | None]:
    """Data, networks, optimizers and the data stream, restored from ``resume`` when given; the run folder and
    its lock (rank 0's)."""
    cfg = recipe.train
    if resume is not None and not isinstance(resume, Checkpoint):
        resume = load_checkpoint(resume)
    run_dir_given = run_dir is not None or resume is not None
    if run_dir is None:
        run_dir = _run_folder_of(resume) if resume is not None else new_run_dir(recipe)
    run_dir = Path(distributed.gather_objects(str(run_dir), world)[0])  # rank 0 names the folder for everyone
    preflight(recipe, registry)  # before decoding anything: a recipe that cannot run stops here
    data = load_data(recipe.data, registry)
    images, labels = data.images, data.labels
    if resume is not None:
        _same_components(resume, recipe)
    if resume is not None and recipe.condition is not None:
        saved = checkpoint_labels(resume)
        if saved is None:
            raise GanzooError(f"{resume.path} holds no labels: it was not trained conditionally")
        saved.check_same(labels, f"resuming {resume.path}")
    rng.seed_everything(recipe.seed)  # after loading: a dataset's own randomness cannot change the initial weights
    objective = build_objective(recipe, registry)
    regularizers = build_regularizers(recipe, registry, objective)
    G, D = build_models(recipe, registry, regularizers, labels)  # identical on every rank; DDP also broadcasts rank 0's weights
    G, D = G.to(device), D.to(device)
    if cfg.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    n_critic = cfg.n_critic  # resolved by load_recipe: the objective's default when the recipe gives none
    images_per_step = cfg.batch_size * n_critic * world.size
    ema = make_ema(G, recipe.ema.decay_per_step(images_per_step), recipe.ema.warmup) if recipe.ema.enabled else None
    if world.distributed:
        rng.seed_everything(recipe.seed + 1_000_003 * world.rank)  # each rank draws its own latents
    opt_g = (recipe.optim.generator or objective.default_optimizer).build(G.parameters())
    opt_d = (recipe.optim.critic or objective.default_optimizer).build(D.parameters())
    total = recipe.total_steps(len(images) // world.size, n_critic)
    start, epoch, index = 0, 0, 0
    if resume is not None:
        start, epoch, index = _resume_position(resume, recipe, G, D, opt_g, opt_d, ema, world, total, len(images),
                                               _end_unfinished(run_dir, resume))
        for reg in regularizers:  # state a regularizer keeps (ADA's augmentation probability)
            key = getattr(reg, "state_key", None)
            if key and key in resume.meta:
                reg.load_state(resume.meta[key])
    batches = BatchStream(images, cfg.batch_size, recipe.seed, device, epoch=epoch, index=index,
                          augment=build_augment(recipe.data.augment), rank=world.rank, world=world.size, labels=data.codes)
    lock = None
    if world.main:  # only now: a run that cannot start leaves no folder behind, a failed resume no changed recipe
        run_dir, lock = _claim(run_dir, recipe, named=run_dir_given)
        atomic_write(RunFiles(run_dir).recipe, recipe.to_yaml().encode(), "recipe")  # a link there is replaced, not followed
    if cfg.precision != "fp32" and device.type != "cuda":
        log.warning(f"train.precision {cfg.precision} is mixed precision for CUDA: on the {device.type} this run trains in fp32 "
                    "(autocast off; low-precision matmuls are far slower than fp32 on most CPUs)")
    log.info(f"{recipe.name}: {len(images)} images {recipe.data.channels}x{recipe.data.resolution}², "
             f"G {recipe.generator.name} ({_count(G)}), critic {recipe.critic.name} ({_count(D)}), "
             f"{recipe.objective.name}, n_critic {n_critic}, steps {start}->{total} on {device}"
             + (f" x {world.size} processes (global batch {cfg.batch_size * world.size})" if world.distributed else "")
             + f" -> {run_dir}")
    run_id = (resume.meta.get("run_id") if resume is not None else None) or uuid.uuid4().hex[:16]
    run = Run(recipe, run_dir, device, world, G, D, ema, opt_g, opt_d, objective, regularizers, batches, n_critic,
              len(images), start, total, resumed_from=resume, step=start, labels=labels, run_id=run_id)
    return run, lock


def _same_components(ckpt: Checkpoint, recipe: Recipe) -> None:
    """A resume trains with the components the run started with: a name that resolves to another package now (a
    plugin preferred then, ``GANZOO_PREFER_PLUGINS``, and not now; a built-in that took a plugin's name) is refused."""
    saved, now = ckpt.meta.get("components") or {}, recipe.components()
    moved = [(at, saved[at]["name"], now[at]["name"]) for at in saved if at in now and saved[at].get("name") != now[at]["name"]]
    if moved:
        at, then, here = moved[0]
        package = then.partition(":")[0]
        raise GanzooError(f"{ckpt.path}: {at} '{here.partition(':')[2]}' was {then} when this run started and is {here} now; "
                          f"resuming would train another component. Resume with GANZOO_PREFER_PLUGINS={package}, or name it "
                          f"{then} in the recipe" + (f" ({len(moved) - 1} more differ)" if len(moved) > 1 else ""))


def _end_unfinished(run_dir: Path, ckpt: Checkpoint) -> bool:
    """Whether the run was cut after its last checkpoint but before its final outputs: run.json (written last) is
    missing, or is of another run or an earlier step."""
    summary = RunFiles(run_dir).summary()  # {} when missing or unreadable
    return (not summary or summary.get("steps") != ckpt.meta.get("step")
            or summary.get("run_id", ckpt.meta.get("run_id")) != ckpt.meta.get("run_id"))


def _claim(run_dir: Path, recipe, named: bool):
    """Create and lock the run folder; a folder named by ganzoo that another process claimed first is replaced
    by a fresh name, a folder the user named is refused with one line."""
    for _ in range(5):
        try:
            return run_dir, RunLock(run_dir).acquire()
        except GanzooError:
            if named:
                raise
            run_dir = new_run_dir(recipe)
    return run_dir, RunLock(run_dir).acquire()


def _resume_position(ckpt: Checkpoint, recipe, G, D, opt_g, opt_d, ema, world, total: int, n_images: int,
                     end_unfinished: bool = False):
    start, epoch, index = restore_training(ckpt, G, D, opt_g, opt_d, ema)
    if world.distributed:  # the checkpoint holds rank 0's RNG state: give every rank its own stream again
        rng.seed_everything(recipe.seed + 1_000_003 * world.rank + start)
    if start == total and end_unfinished:
        log.info(f"resume: {ckpt.path} is at the run's last step ({total}) but its final outputs were not all written "
                 "(interrupted?): writing the samples and report")
    elif start >= total:
        raise GanzooError(f"{ckpt.path} is at step {start}, the recipe's length is {total}: nothing to resume "
                          f"(lengthen it: ganzoo resume {_run_folder_of(ckpt)} --set train.steps={2 * total})")
    saved_world = ckpt.meta.get("world_size", 1)
    if saved_world != world.size:
        log.info(f"note: resuming a {saved_world}-process run on {world.size}: weights, optimizers and step carry "
                 "over exactly, the data order from here on differs from an uninterrupted run")
        index = min(index, max(n_images // (recipe.train.batch_size * world.size), 1))
    return start, epoch, index


def observers_for(run: Run, registry: Registry, progress, callbacks=(), scaling: "LossScaling | None" = None) -> list:
    """Every observer of a run, in the order they are called after each step (``scaling``: fp16's gradient scalers,
    which the step uses and checkpoints keep)."""
    from .checkpoint import Checkpoints
    from .evaluation import TrainingEval
    from .report import RunSummary
    from .sampling import FinalSamples
    from .stopping import StopSignals, TimeLimit
    from .watch import Grids, Metrics, Monitor

    recipe, main, ddp = run.recipe, run.world.main, run.world.distributed
    out = [StopSignals()]
    if recipe.schedules:  # first: the values of the next step are set before anything else looks at the run
        from .schedules import Schedules

        out.append(Schedules(recipe.schedules))
    if recipe.train.time_limit is not None:
        out.append(TimeLimit(recipe.train.time_limit))
    if ddp:  # every rank must agree on a stop before the collective metrics and checkpoints
        out.append(distributed.StopAgreement(run.device))
    out.append(Metrics())
    if scaling is not None and scaling not in callbacks:
        out.append(scaling)
    if main:
        out.append(Grids())
        if recipe.eval.every:
            out.append(TrainingEval())
        out += [registry.get("callback", c.name).create(c.params) for c in recipe.callbacks]
        out += list(callbacks)
    if progress is True:
        from .progress import ProgressBar

        progress = ProgressBar()
    if progress:
        out.append(progress)
    if main:
        out.append(Monitor(recipe.monitor, run.objective))
    if ddp:
        out.append(distributed.StopAgreement(run.device, digests=True))
    out.append(Checkpoints())
    if main:
        out += [FinalSamples(), RunSummary()]
    return out


def busy_machine_note() -> None:
    """torch's default (a thread per core) is fastest on an idle machine, and several times slower when other work
    holds the cores (measured 7-8x on a busy 2-core machine): say so when the machine is busy at the start."""
    try:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
    except (OSError, AttributeError):
        return
    if cores > 1 and load >= cores - 0.5:
        log.warning(f"the machine is busy (load {load:.1f} on {cores} cores): torch's default of {torch.get_num_threads()} "
                    "threads can run several times slower than one while other work holds the cores; "
                    "--set train.threads=1 (a resume may change it too)")


# what a resume may change: the length, logging and outputs; anything else would not continue the same run
RESUMABLE_KEYS = ("description", "expected_time", "train.steps", "train.epochs", "train.time_limit", "train.threads", "train.log_every", "train.checkpoint_every",
                  "train.keep_every", "output.", "eval.every", "monitor.")


def resume(run_dir, *, registry: Registry | None = None, progress=True, callbacks=(), overrides=()) -> RunResult:
    """Continue the run in ``run_dir`` from its last checkpoint, with the recipe it was started with.

    ``overrides`` (``"train.steps=5000"``, ...) and edits of ``RUN/recipe.yaml`` may change its length, logging or
    outputs (e.g. to lengthen a finished run), and are logged as a diff; any other change would make it another
    run, and is refused with the diff.
    """
    run_dir, ckpt = resume_source(Path(run_dir))
    load_recipe(ckpt.recipe, list(overrides), registry=registry)  # an unknown or misspelt key: that error, with its "did you mean"
    for item in overrides:
        key = item.partition("=")[0].strip()
        if not _resumable(key):
            raise GanzooError(f"resume --set {item!r}: a resume changes only the length, logging and outputs "
                              f"({', '.join(RESUMABLE_KEYS)}); for other changes start a new run from {RunFiles(run_dir).recipe}")
    saved = load_recipe(ckpt.recipe, registry=registry)
    edited_path = RunFiles(run_dir).recipe
    source = ckpt.recipe
    if edited_path.is_file():
        edited = load_recipe(edited_path, registry=registry)
        if recipe_diff(saved, edited):
            _same_run(run_dir, ckpt)
        if check_resume_changes(saved, edited, f"{edited_path} was edited", where=ckpt.path):
            source = edited.to_dict()
    recipe = load_recipe(source, list(overrides), registry=registry)
    return train(recipe, Path(run_dir), resume=ckpt, registry=registry, progress=progress, callbacks=callbacks)


def resume_source(path: Path) -> tuple[Path, Checkpoint]:
    """``(run folder, checkpoint)`` for ``ganzoo resume PATH``: a run folder continues from its last checkpoint, a
    checkpoint file inside a run folder's checkpoints/ (step_NNNNNNN, best) from that one, in its run folder."""
    if ModelFiles(path).claims_model():
        raise GanzooError(f"{path} is an exported model folder (a generator alone, without its critic and optimizers): it "
                          "cannot be resumed; train a new run from its recipe.yaml with ganzoo run")
    if path.is_file() or path.suffix == ".safetensors":
        files = RunFiles.of_checkpoint(path)
        if files is None:
            raise GanzooError(f"{path} is not in a run folder's checkpoints/: resume continues a run in its own folder "
                              "(ganzoo resume RUN); to start a new run from its weights' recipe use ganzoo run")
        ckpt = load_checkpoint(path)
        if path != files.last:
            log.info(f"resume: from {path.name} (step {ckpt.meta.get('step')}), not from the last checkpoint")
        return files.root, ckpt
    return path, load_checkpoint(path)


def _run_folder_of(ckpt: Checkpoint) -> Path:
    """The run folder a checkpoint being resumed belongs to."""
    files = RunFiles.of_checkpoint(ckpt.path)
    if files is None:
        raise GanzooError(f"{ckpt.path} is not in a run folder's checkpoints/: resume continues a run in its own folder")
    return files.root


def _same_run(run_dir: Path, ckpt: Checkpoint) -> None:
    """A checkpoint whose run id differs from the run folder's (its run.json, or its other checkpoints) was copied in
    from another run: say so, instead of calling the difference an edit of recipe.yaml."""
    from .checkpoint import checkpoint_identity

    mine = ckpt.meta.get("run_id")
    if not mine:
        return
    files = RunFiles(run_dir)
    others = {files.summary().get("run_id")}
    for other in files.checkpoint_files():
        if other.resolve() != ckpt.path.resolve():
            others.add(checkpoint_identity(other)[0])
    others.discard(None)
    if others and mine not in others:
        raise GanzooError(f"{ckpt.path} belongs to another run than {run_dir} (run id {mine}; this folder's is "
                          f"{', '.join(sorted(others))}): it was copied in from elsewhere. Resume that run in its own folder, "
                          f"or start a new one from {run_dir}/recipe.yaml; nothing was changed")


def _resumable(key: str, also=()) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in (*RESUMABLE_KEYS, *also))


def check_resume_changes(saved: Recipe, new: Recipe, what: str, also=(), where=None) -> list:
    """The differences between the recipe a run was trained with and the one it resumes with: those a resume can
    honour (length, logging, outputs, and ``also``) are logged as a diff; any other is an error showing the diff.
    ``where``: the checkpoint whose recipe is ``saved`` (named in the error, which may also come from a copied one)."""
    changes = recipe_diff(saved, new)
    refused = [c for c in changes if not _resumable(c[0], also)]
    if refused:
        origin = (f"; if recipe.yaml was not edited, {where} was trained with another recipe (copied in from another "
                  "run?): resume that run in its own folder") if where is not None else ""
        raise GanzooError(f"{what}: changes a resume cannot honour ({_diff_text(refused)}); undo them, or start a new "
                          f"run with them{origin}")
    if changes:
        log.info(f"resume ({what}): honouring {_diff_text(changes)}")
    return changes


def recipe_diff(a: Recipe, b: Recipe) -> list[tuple[str, object, object]]:
    """``(dotted key, value in a, value in b)`` for every resolved value that differs."""
    fa, fb = flat_keys(a.to_dict()), flat_keys(b.to_dict())
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def _diff_text(changes) -> str:
    return "; ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in changes)


def _add(a, b):  # a lazy penalty is on some critic updates only
    return b if a is None else a if b is None else a + b


def _count(m: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f}M params"
