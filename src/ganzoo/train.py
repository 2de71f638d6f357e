"""The training loop: one loop for every objective.

A *step* is one generator update, preceded by ``n_critic`` critic updates,
each on a fresh real batch. The objective supplies the losses (and an
optional penalty, and an optional weight clip); the loop owns the
optimizers, the data, the progress bar and the outputs.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .checkpoint import save_checkpoint
from .data import BatchStream, build_augment, load_dataset
from .errors import GanzooError
from .models import build_models
from .recipe import Recipe
from .registry import Registry, get_registry
from .sampling import generate, write_samples


@dataclass
class RunResult:
    run_dir: Path
    checkpoint: Path
    steps: int
    seconds: float
    images_per_second: float
    metrics: dict


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
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


def train(recipe: Recipe, run_dir=None, *, registry: Registry | None = None, progress: bool = True,
          console: Console | None = None) -> RunResult:
    """Train the recipe; write checkpoint, samples and the resolved recipe into the run directory."""
    registry = registry or get_registry()
    console = console or Console(stderr=True, quiet=not progress)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.yaml").write_text(recipe.to_yaml())

    cfg = recipe.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(recipe.seed)
    device = pick_device(cfg.device)

    images, _ = load_dataset(recipe.data, registry, log=console.print)
    G, D = build_models(recipe, registry)
    G, D = G.to(device), D.to(device)
    objective = registry.get("objective", recipe.objective.name).cls(recipe.objective.params)
    opt_g = (recipe.optim.generator or objective.default_optimizer).build(G.parameters())
    opt_d = (recipe.optim.critic or objective.default_optimizer).build(D.parameters())
    n_critic = cfg.n_critic or objective.n_critic
    clip = objective.clip_value
    batches = BatchStream(images, cfg.batch_size, recipe.seed, device, augment=build_augment(recipe.data.augment))
    total = recipe.total_steps(len(images), n_critic)
    bs = cfg.batch_size
    console.print(
        f"[bold]{recipe.name}[/]: {len(images)} images {recipe.data.channels}x{recipe.data.resolution}², "
        f"G {recipe.generator.name} ({_count(G)}), critic {recipe.critic.name} ({_count(D)}), "
        f"{recipe.objective.name}, n_critic {n_critic}, {total} steps on {device} -> {run_dir}"
    )

    def checkpoint(step: int, name: str = "last") -> Path:
        meta = {"recipe": recipe.to_dict(), "step": step, "epoch": batches.epoch, "batch_index": batches.index}
        return save_checkpoint(run_dir / "checkpoints" / f"{name}.safetensors", generator=G, critic=D, opt_g=opt_g, opt_d=opt_d, meta=meta)

    metrics_file = (run_dir / "metrics.jsonl").open("a")
    sums = {k: torch.zeros((), device=device) for k in ("d_loss", "g_loss", "penalty", "d_real", "d_fake")}
    counts = {"critic": 0, "gen": 0}
    last: dict = {}
    data_time = 0.0
    t_start = t_log = time.perf_counter()
    step = 0
    columns = (TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
    try:
        with Progress(*columns, console=console, disable=not progress) as bar:
            task = bar.add_task(recipe.name, total=total, stats="")
            for step in range(1, total + 1):
                # -- critic ------------------------------------------------------
                D.requires_grad_(True)
                for _ in range(n_critic):
                    t0 = time.perf_counter()
                    real = next(batches)
                    data_time += time.perf_counter() - t0
                    with torch.no_grad():
                        fake = G(torch.randn(bs, G.latent_dim, device=device))
                    real_scores, fake_scores = D(real), D(fake)
                    d_loss = objective.critic_loss(real_scores, fake_scores)
                    penalty = objective.penalty(D, real, fake)
                    opt_d.zero_grad(set_to_none=True)
                    (d_loss if penalty is None else d_loss + penalty).backward()
                    opt_d.step()
                    if clip is not None:
                        with torch.no_grad():
                            for p in D.parameters():
                                p.clamp_(-clip, clip)
                    sums["d_loss"] += d_loss.detach()
                    sums["d_real"] += real_scores.detach().mean()
                    sums["d_fake"] += fake_scores.detach().mean()
                    if penalty is not None:
                        sums["penalty"] += penalty.detach()
                    counts["critic"] += 1
                # -- generator ---------------------------------------------------
                D.requires_grad_(False)  # no critic weight gradients needed for the G step
                g_loss = objective.generator_loss(D(G(torch.randn(bs, G.latent_dim, device=device))))
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                sums["g_loss"] += g_loss.detach()
                counts["gen"] += 1

                if step % cfg.log_every == 0 or step == total:
                    now = time.perf_counter()
                    last = _log_line(step, batches.epoch, sums, counts, bs * n_critic * counts["gen"] / (now - t_log), data_time / (now - t_log))
                    if not all(math.isfinite(v) for v in last.values()):
                        bad = next(k for k, v in last.items() if not math.isfinite(v))
                        raise GanzooError(f"training diverged: {bad} is {last[bad]} at step {step}; the last checkpoint on disk is untouched")
                    metrics_file.write(json.dumps(last) + "\n")
                    metrics_file.flush()
                    bar.update(task, completed=step, stats=_stats_text(last))
                    for v in sums.values():
                        v.zero_()
                    counts = {"critic": 0, "gen": 0}
                    data_time, t_log = 0.0, now
                else:
                    bar.update(task, completed=step)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != total:
                    checkpoint(step)
    except KeyboardInterrupt:
        path = checkpoint(step - 1)
        metrics_file.close()
        raise GanzooError(f"interrupted at step {step}; checkpoint of step {step - 1} saved to {path}") from None
    metrics_file.close()
    seconds = time.perf_counter() - t_start
    ckpt_path = checkpoint(total)
    if recipe.output.samples:
        samples = generate(G, recipe.output.samples, seed=recipe.seed, batch_size=recipe.output.sample_batch_size, device=device)
        write_samples(samples, run_dir / "samples")
    ips = total * n_critic * bs / seconds
    summary = {"name": recipe.name, "steps": total, "seconds": round(seconds, 2), "images_per_second": round(ips, 1),
               "device": str(device), "final": last}
    (run_dir / "run.json").write_text(json.dumps(summary, indent=2))
    console.print(f"done: {total} steps in {seconds:.1f}s ({ips:.1f} img/s); checkpoint {ckpt_path}; "
                  f"{recipe.output.samples} samples in {run_dir / 'samples'}")
    return RunResult(run_dir, ckpt_path, total, seconds, ips, last)


def _count(m: torch.nn.Module) -> str:
    n = sum(p.numel() for p in m.parameters())
    return f"{n / 1e6:.2f}M params"


def _log_line(step, epoch, sums, counts, ips, data_frac) -> dict:
    c, g = max(counts["critic"], 1), max(counts["gen"], 1)
    line = {"step": step, "epoch": epoch}
    line.update({k: (v.item() / (g if k == "g_loss" else c)) for k, v in sums.items()})
    line.update({"img_per_s": ips, "data_frac": data_frac})
    return line


def _stats_text(m: dict) -> str:
    text = f"D {m['d_loss']:.3f}  G {m['g_loss']:.3f}"
    if m["penalty"]:
        text += f"  GP {m['penalty']:.3f}"
    return text + f"  {m['img_per_s']:.0f} img/s  data {100 * m['data_frac']:.0f}%"
