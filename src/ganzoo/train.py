"""The training loop: one loop for every objective.

A *step* is one generator update, preceded by ``n_critic`` critic updates,
each on a fresh real batch. The objective supplies the losses (and an
optional penalty, and an optional weight clip); the loop owns the
optimizers, the data, the progress bar and the outputs.

A checkpoint holds everything the loop's future depends on (weights,
optimizer states, step, data position, every RNG), so a resumed run is
bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import signal
import threading
import time
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import distributed, rng
from .checkpoint import Checkpoint, load_checkpoint, load_state, restore_optimizer, save_checkpoint
from .data import BatchStream, build_augment, load_dataset
from .errors import GanzooError
from .models import build_models, build_regularizers, load_weights, make_ema
from .recipe import Recipe, load_recipe
from .registry import Registry, get_registry
from .sampling import generate, generate_distinct, write_samples
from .report import write_report
from .watch import Monitor, RunLog, grid_steps


class Interrupted(GanzooError):
    """Training stopped by Ctrl-C or SIGTERM after writing a checkpoint."""

    exit_code = 130


@dataclass
class RunResult:
    run_dir: Path
    checkpoint: Path
    steps: int
    seconds: float
    images_per_second: float
    metrics: dict


def pick_device(name: str) -> torch.device:
    if name not in ("auto", "cpu", "cuda"):
        raise GanzooError(f"unknown device '{name}': use auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise GanzooError("train.device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def new_run_dir(recipe: Recipe) -> Path:
    """``output.dir/name``, or ``name-YYYYmmdd-HHMMSS`` if that exists: never reuse a run's folder."""
    base = Path(recipe.output.dir) / recipe.name
    path = base if not base.exists() else base.with_name(f"{base.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{base.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    return path


def prepare_run_dir(path, force: bool = False) -> Path:
    """An empty run folder at ``path``; an existing non-empty one only with ``force`` (it is cleared)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GanzooError(f"run folder {path} is a file")
    if path.exists() and any(path.iterdir()):
        if not force:
            raise GanzooError(f"run folder {path} exists and is not empty: resume it (ganzoo resume {path}), "
                              "pick another folder, or pass --force to replace it")
        if not ((path / "recipe.yaml").exists() or (path / "checkpoints").is_dir()):
            raise GanzooError(f"--force: {path} does not look like a ganzoo run folder (no recipe.yaml, no checkpoints/); "
                              "refusing to delete it")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _stop_requests():
    """Ctrl-C / SIGTERM set a flag the loop checks after each step; a second Ctrl-C aborts at once."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum, frame):
        if requested.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def resume(run_dir, *, registry: Registry | None = None, progress: bool = True, console: Console | None = None) -> RunResult:
    """Continue the run in ``run_dir`` from its last checkpoint, with the recipe it was started with."""
    ckpt = load_checkpoint(run_dir)
    recipe = load_recipe(ckpt.recipe, registry=registry)
    return train(recipe, Path(run_dir), resume=ckpt, registry=registry, progress=progress, console=console)


def train(recipe: Recipe, run_dir=None, *, resume: Checkpoint | str | Path | None = None, registry: Registry | None = None,
          progress: bool = True, console: Console | None = None) -> RunResult:
    """Train the recipe; write checkpoint, samples and the resolved recipe into the run directory.

    ``resume`` (a checkpoint, its path, or a run directory) restores weights,
    optimizers, step, data position and RNG states and continues to the
    recipe's length. Under torchrun every rank calls this; only rank 0 writes.
    """
    registry = registry or get_registry()
    cfg = recipe.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    world = distributed.setup(device.type)
    device = distributed.device_for(world, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    console = console or Console(stderr=True, quiet=not progress)
    if not world.main:
        console = Console(stderr=True, quiet=True)
    try:
        return _train(recipe, run_dir, resume, registry, progress and world.main, console, device, world)
    finally:
        distributed.teardown(world)


def _train(recipe, run_dir, resume, registry, progress, console, device, world) -> RunResult:
    cfg = recipe.train
    if resume is not None and not isinstance(resume, Checkpoint):
        resume = load_checkpoint(resume)
    if run_dir is None:
        run_dir = resume.path.parent.parent if resume is not None else new_run_dir(recipe)
    run_dir = Path(distributed.gather_objects(str(run_dir), world)[0])  # rank 0 names the folder for everyone

    images, _ = load_dataset(recipe.data, registry, log=console.print)
    rng.seed_everything(recipe.seed)  # after loading: a dataset's own randomness cannot change the initial weights
    G, D = build_models(recipe, registry)  # identical on every rank; DDP also broadcasts rank 0's weights
    G, D = G.to(device), D.to(device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    if cfg.channels_last:
        G, D = G.to(memory_format=memory_format), D.to(memory_format=memory_format)
    ema = make_ema(G, recipe.ema.decay) if recipe.ema.decay else None
    regularizers = build_regularizers(recipe, registry)
    if world.distributed:
        rng.seed_everything(recipe.seed + 1_000_003 * world.rank)  # each rank draws its own latents
    objective = registry.get("objective", recipe.objective.name).cls(recipe.objective.params)
    opt_g = (recipe.optim.generator or objective.default_optimizer).build(G.parameters())
    opt_d = (recipe.optim.critic or objective.default_optimizer).build(D.parameters())
    n_critic = cfg.n_critic or objective.n_critic
    clip = objective.clip_value
    bs = cfg.batch_size
    total = recipe.total_steps(len(images) // world.size, n_critic)
    start, epoch, index = 0, 0, 0
    monitor = Monitor(recipe.monitor, objective)
    if resume is not None:
        start, epoch, index = _restore(resume, G, D, opt_g, opt_d, ema)
        monitor.load_state(resume.meta.get("monitor", {}))
        if world.distributed:  # the checkpoint holds rank 0's RNG state: give every rank its own stream again
            rng.seed_everything(recipe.seed + 1_000_003 * world.rank + start)
        if start >= total:
            raise GanzooError(f"{resume.path} is at step {start}, the recipe's length is {total}: nothing to resume "
                              "(lengthen it, e.g. --set train.steps=...)")
        saved_world = resume.meta.get("world_size", 1)
        if saved_world != world.size:
            console.print(f"note: resuming a {saved_world}-process run on {world.size}: weights, optimizers and step carry "
                          "over exactly, the data order from here on differs from an uninterrupted run")
            index = min(index, max(len(images) // (bs * world.size), 1))
    batches = BatchStream(images, bs, recipe.seed, device, epoch=epoch, index=index,
                          augment=build_augment(recipe.data.augment), rank=world.rank, world=world.size)
    G_train, D_train = distributed.wrap(G, world, device), distributed.wrap(D, world, device)
    if cfg.compile:
        G_train, D_train = torch.compile(G_train), torch.compile(D_train)
    D_plain = torch.compile(D) if cfg.compile else D  # the G step needs no critic weight gradients (and no DDP hooks)

    def see(images):  # what the critic sees: the regularizers' augmentations (DiffAugment), real and fake alike
        for reg in regularizers:
            images = reg.augment(images)
        return images

    def sampler():  # the generator that grids, evaluation and samples use: the weight average once it has begun
        return ema.module if ema is not None and int(ema.n_averaged) > 0 else G
    if world.main:  # only now: a run that cannot start leaves no folder behind, a failed resume no changed recipe
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(recipe.to_yaml())
    if cfg.precision == "bf16" and device.type != "cuda":
        console.print("[yellow]warning:[/] train.precision bf16 on a CPU: bf16 matmuls are far slower than fp32 on most CPUs")
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")  # noqa: E731
    console.print(
        f"[bold]{recipe.name}[/]: {len(images)} images {recipe.data.channels}x{recipe.data.resolution}², "
        f"G {recipe.generator.name} ({_count(G)}), critic {recipe.critic.name} ({_count(D)}), "
        f"{recipe.objective.name}, n_critic {n_critic}, steps {start}->{total} on {device}"
        + (f" x {world.size} processes (global batch {bs * world.size})" if world.distributed else "") + f" -> {run_dir}"
    )

    def checkpoint(step: int, name: str = "last", **extra_meta) -> Path | None:
        for net, what in ((G, "generator"), (D, "critic")):  # never replace a good checkpoint with a broken one
            if not all(torch.isfinite(p).all() for p in net.parameters()):
                raise GanzooError(f"training diverged: the {what} weights are not finite at step {step}; "
                                  f"the last checkpoint on disk is untouched ({run_dir / 'checkpoints'})")
        if not world.main:
            return None
        rng_tensors, rng_meta = rng.get_state()
        meta = {"recipe": recipe.to_dict(), "step": step, "epoch": batches.epoch, "batch_index": batches.index, "rng": rng_meta,
                "world_size": world.size, "monitor": monitor.state(), **extra_meta}
        return save_checkpoint(run_dir / "checkpoints" / f"{name}.safetensors", generator=G, critic=D,
                               opt_g=opt_g, opt_d=opt_d, meta=meta, extra=rng_tensors, generator_ema=ema)

    keys = ("d_loss", "g_loss", "penalty", "d_real", "d_fake")
    sums = torch.zeros(len(keys), dtype=torch.float64, device=device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)  # first step with a non-finite loss, no host sync
    counts = {"critic": 0, "gen": 0}
    last: dict = {}
    data_time = 0.0
    t_start = t_log = time.perf_counter()
    columns = (TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
    runlog = RunLog(run_dir, recipe, total, start, tensorboard=recipe.output.tensorboard) if world.main else None
    grid_at = grid_steps(total, recipe.output.grid_every)
    best_path = run_dir / "checkpoints" / "best.json"
    best = json.loads(best_path.read_text()).get("best") if best_path.exists() else None
    reference = None

    def warn(step: int, message: str | None) -> None:
        if message is None:
            return
        console.print(f"[yellow]warning (step {step}):[/] {message}", highlight=False)
        if runlog is not None:
            runlog.event(step, warning=message)
        if recipe.monitor.stop:
            last_path = checkpoint(step) or run_dir / "checkpoints" / "last.safetensors"
            kept = f"; best checkpoint (step {best['step']}, {best['metric']} {best['score']:.4g}) kept at " \
                   f"{best_path.with_suffix('.safetensors')}" if best else ""
            raise GanzooError(f"stopped at step {step} by the collapse monitor (monitor.stop): {message}; "
                              f"checkpoint of step {step} at {last_path}{kept}")

    def evaluate_now(step: int) -> None:
        nonlocal best, reference
        from .evaluation import evaluate_images, reference_features

        ev = recipe.eval
        # torch-fidelity's DataLoader draws from the global torch RNG: fork it, so training is the same with or without eval
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if reference is None:
                reference = reference_features(recipe.data, ev.n_real, recipe.seed, ev.weights, registry, console.print)
            images = generate(sampler(), ev.n, seed=recipe.seed, device=device)
            result = evaluate_images(images, recipe.data, seed=recipe.seed, weights=ev.weights, prc=False, reference=reference)
        score = result["kid_mean" if ev.metric == "kid" else "fid"]
        runlog.event(step, eval={k: v for k, v in result.items() if k != "protocol"}, eval_n=ev.n, eval_n_real=reference[1]["n"])
        console.print(f"eval (step {step}): FID@{ev.n} {_fmt(result['fid'])}, KID {_fmt(result['kid_mean'], 4)} ± {_fmt(result['kid_std'], 4)}")
        if score is not None and (best is None or score < best["score"]):
            best = {"metric": ev.metric, "score": score, "step": step, "n": ev.n}
            checkpoint(step, "best", best=best)

    with closing(runlog) if runlog else nullcontext(), _stop_requests() as stop, \
            Progress(*columns, console=console, disable=not progress) as bar:
        if start == 0 and runlog:
            runlog.grid(0, sampler())  # the untrained generator: not a diversity baseline
        task = bar.add_task(recipe.name, total=total, completed=start, stats="")
        end = total  # the last step trained: total, or earlier when train.time_limit ends the run
        for step in range(start + 1, total + 1):
            # -- critic ------------------------------------------------------
            D.requires_grad_(True)
            for i in range(n_critic):
                t0 = time.perf_counter()
                real = next(batches)
                if cfg.channels_last:
                    real = real.contiguous(memory_format=memory_format)
                data_time += time.perf_counter() - t0
                with autocast():
                    with torch.no_grad():
                        fake = G(torch.randn(bs, G.latent_dim, device=device))
                    real, fake = see(real), see(fake)
                    real_scores, fake_scores = D_train(real).float(), D_train(fake).float()
                    d_loss = objective.critic_loss(real_scores, fake_scores)
                    # a penalty takes its input gradients out of place (autograd.grad, create_graph=True), then the one
                    # backward below reaches DDP's all-reduce hooks: PyTorch's supported way under DDP
                    penalty = objective.penalty(D_train, real, fake)
                    critic_step = (step - 1) * n_critic + i
                    for reg in regularizers:
                        if critic_step % reg.every == 0:
                            extra = reg.penalty(D_train, real, fake)
                            if extra is not None:
                                penalty = extra if penalty is None else penalty + extra
                opt_d.zero_grad(set_to_none=True)
                (d_loss if penalty is None else d_loss + penalty).backward()
                opt_d.step()
                if clip is not None:
                    with torch.no_grad():
                        for p in D.parameters():
                            p.clamp_(-clip, clip)
                sums += torch.stack([d_loss.detach(), torch.zeros_like(d_loss), torch.zeros_like(d_loss) if penalty is None else penalty.detach(),
                                     real_scores.detach().mean(), fake_scores.detach().mean()]).double()
                counts["critic"] += 1
            # -- generator ---------------------------------------------------
            D.requires_grad_(False)  # no critic weight gradients needed for the G step; the plain critic, not DDP's
            with autocast():
                g_loss = objective.generator_loss(D_plain(see(G_train(torch.randn(bs, G.latent_dim, device=device)))).float())
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            if ema is not None and step > recipe.ema.start:
                ema.update_parameters(G)
            sums[1] += g_loss.detach().double()
            counts["gen"] += 1
            ok = torch.isfinite(g_loss.detach() + d_loss.detach() + (0 if penalty is None else penalty.detach()))
            first_bad = torch.where(ok | (first_bad >= 0), first_bad, step)

            stopping = distributed.any_rank(stop.is_set(), world, device)
            out_of_time = cfg.time_limit is not None and distributed.any_rank(
                time.perf_counter() - t_start >= 60 * cfg.time_limit, world, device)
            if step % cfg.log_every == 0 or step == total or stopping or out_of_time:
                now = time.perf_counter()
                means = distributed.mean_over_ranks(sums.clone(), world)
                last = _log_line(step, batches.epoch, dict(zip(keys, means.tolist())), counts,
                                 world.size * bs * n_critic * counts["gen"] / (now - t_log), data_time / (now - t_log))
                last.update(lr_g=opt_g.param_groups[0]["lr"], lr_d=opt_d.param_groups[0]["lr"])
                bad = next((k for k, v in last.items() if not math.isfinite(v)), None)
                if bad is not None:
                    raise GanzooError(f"training diverged: {bad} is {last[bad]} (first non-finite loss at step {int(first_bad)}); "
                                      f"the last checkpoint on disk is untouched ({run_dir / 'checkpoints'})")
                if runlog:
                    runlog.log(last)
                bar.update(task, completed=step, stats=_stats_text(last))
                warn(step, monitor.after_log(last))
                sums.zero_()
                counts = {"critic": 0, "gen": 0}
                data_time, t_log = 0.0, now
            else:
                bar.update(task, completed=step)
            if step in grid_at or (out_of_time and step < total):
                images = runlog.grid(step, sampler(), force=out_of_time) if runlog else None
                message = monitor.after_grid(images) if images is not None else None
                warn(step, distributed.gather_objects(message, world)[0])  # rank 0 decides for all
            if recipe.eval.every and step % recipe.eval.every == 0 and world.main:
                evaluate_now(step)
            if cfg.keep_every and step % cfg.keep_every == 0:
                checkpoint(step, f"step_{step:07d}")
            if stopping and step < total:
                path = checkpoint(step)
                distributed.barrier(world)
                raise Interrupted(f"interrupted: checkpoint of step {step}/{total} saved to {path or run_dir / 'checkpoints'}; "
                                  f"continue with: ganzoo resume {run_dir}")
            if out_of_time:
                console.print(f"train.time_limit: {cfg.time_limit:g} minutes reached at step {step}/{total}")
                end = step
                break
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != total:
                checkpoint(step)
    seconds = time.perf_counter() - t_start
    ckpt_path = checkpoint(end)
    ranks = distributed.gather_objects({"rank": world.rank, "steps": end - start, "weights_sha256": distributed.weights_digest(G)
                                        [:16] + distributed.weights_digest(D)[:16]}, world)
    ips = (end - start) * n_critic * bs * world.size / seconds
    if not world.main:
        return RunResult(run_dir, run_dir / "checkpoints" / "last.safetensors", end, seconds, ips, last)
    distinct = None
    if recipe.output.samples:
        samples, distinct = generate_distinct(sampler(), recipe.output.samples, seed=recipe.seed, batch_size=recipe.output.sample_batch_size, device=device)
        write_samples(samples, run_dir / "samples")
        (run_dir / "samples" / "distinctness.json").write_text(json.dumps(dataclasses.asdict(distinct), indent=2))
    summary = {"name": recipe.name, "steps": end, "planned_steps": total, "resumed_from": start or None, "seconds": round(seconds, 2),
               "images_per_second": round(ips, 1), "device": str(device), "world_size": world.size, "final": last,
               "samples": {"n": recipe.output.samples, "min_pairwise_rms": distinct.min_distance if distinct else None,
                           "near_identical_pairs": len(distinct.close_pairs) if distinct else None}}
    if world.distributed:
        summary["ranks"] = ranks
    (run_dir / "run.json").write_text(json.dumps(summary, indent=2))
    write_report(run_dir)
    console.print(f"done: steps {start}->{end} in {seconds:.1f}s ({ips:.1f} img/s); checkpoint {ckpt_path}; "
                  f"{recipe.output.samples} samples in {run_dir / 'samples'}")
    return RunResult(run_dir, ckpt_path, end, seconds, ips, last)


def _restore(ckpt: Checkpoint, G, D, opt_g, opt_d, ema) -> tuple[int, int, int]:
    load_weights(ckpt, G, D)
    if ema is not None:
        state = ckpt.state("generator_ema")
        if not state:
            raise GanzooError(f"{ckpt.path} has no EMA generator but the recipe asks for one (ema.decay): "
                              "an average cannot be resumed from a run that did not keep one")
        load_state(ema, state, "EMA generator", ckpt.path)
    for name, opt in (("generator", opt_g), ("critic", opt_d)):
        try:
            restore_optimizer(opt, ckpt, name)
        except (ValueError, KeyError) as exc:  # same type, other parameter layout
            raise GanzooError(f"{ckpt.path}: the {name} optimizer state does not match the recipe's optimizer ({exc})") from None
    if "rng" not in ckpt.meta:
        raise GanzooError(f"{ckpt.path} holds weights only (no RNG/data state): it can be sampled from, not resumed")
    rng.set_state(ckpt.tensors, ckpt.meta["rng"])
    return ckpt.meta["step"], ckpt.meta["epoch"], ckpt.meta["batch_index"]


def _fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _count(m: torch.nn.Module) -> str:
    n = sum(p.numel() for p in m.parameters())
    return f"{n / 1e6:.2f}M params"


def _log_line(step, epoch, sums: dict, counts, ips, data_frac) -> dict:
    c, g = max(counts["critic"], 1), max(counts["gen"], 1)
    line = {"step": step, "epoch": epoch}
    line.update({k: v / (g if k == "g_loss" else c) for k, v in sums.items()})
    line.update({"gap": line["d_real"] - line["d_fake"], "img_per_s": ips, "data_frac": data_frac})
    return line


def _stats_text(m: dict) -> str:
    text = f"D {m['d_loss']:.3f}  G {m['g_loss']:.3f}"
    if m["penalty"]:
        text += f"  GP {m['penalty']:.3f}"
    return text + f"  {m['img_per_s']:.0f} img/s  data {100 * m['data_frac']:.0f}%"
