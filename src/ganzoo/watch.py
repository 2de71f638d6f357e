"""What a run writes while it trains, so it can be watched.

* ``metrics.jsonl``: one JSON line per logged step,
* TensorBoard events in ``tb/`` (scalars, and each fixed-z grid as an image),
* ``grids/step_NNNNNNN.png``: the same latent vectors (``fixed_z.safetensors``,
  saved once per run and reused on resume) at a configurable interval and
  always at 0/25/50/75/100 % of training,
* ``curves.png``: G and critic losses and the critic gap, smoothed, redrawn
  at each grid.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .sampling import render, write_grid

MILESTONES = (0.0, 0.25, 0.5, 0.75, 1.0)


def grid_steps(total: int, every: int | None) -> set[int]:
    steps = {round(total * f) for f in MILESTONES}
    if every:
        steps |= set(range(0, total + 1, every))
    return steps


def fixed_latents(run_dir: Path, n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """The run's fixed latent vectors: created once, then read back (resumed runs included)."""
    path = run_dir / "fixed_z.safetensors"
    if path.exists():
        z = load_file(str(path))["z"]
        if z.shape == (n, latent_dim):
            return z
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed + 7919))
    save_file({"z": z}, str(path))
    return z


class RunLog:
    """Writes metrics, TensorBoard events, fixed-z grids and curves for one run."""

    def __init__(self, run_dir: Path, recipe, total: int, start: int = 0, tensorboard: bool = True):
        self.run_dir, self.total = run_dir, total
        out = recipe.output
        self.grid_at = grid_steps(total, out.grid_every)
        self.z = fixed_latents(run_dir, out.grid_size, recipe.generator.latent_dim, recipe.seed)
        self.metrics_path = run_dir / "metrics.jsonl"
        kept = _lines_up_to(self.metrics_path, start)  # resuming from an older checkpoint: drop what comes after it
        self.metrics_path.write_text("".join(json.dumps(line) + "\n" for line in kept))
        self.history = [line for line in kept if "d_loss" in line]
        self._file = self.metrics_path.open("a")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start else None)

    def log(self, line: dict) -> None:
        self.history.append(line)
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        if self.tb is not None:
            for key, value in line.items():
                if key not in ("step", "epoch"):
                    self.tb.add_scalar(key, value, line["step"])

    def event(self, step: int, **fields) -> None:
        """A non-metric line in metrics.jsonl (a warning, an evaluation)."""
        line = {"step": step, **fields}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        if self.tb is not None:
            for key, value in fields.get("eval", {}).items():
                if isinstance(value, float):
                    self.tb.add_scalar(f"eval/{key}", value, step)

    def grid(self, step: int, G, force: bool = False) -> torch.Tensor | None:
        """Write the fixed-z grid if ``step`` is a grid step; return its images."""
        if step not in self.grid_at and not force:
            return None
        images = render(G, self.z)
        write_grid(images, self.run_dir / "grids" / f"step_{step:07d}.png")
        if self.tb is not None:
            from torchvision.utils import make_grid

            self.tb.add_image("fixed_z", make_grid(images, nrow=max(1, int(math.sqrt(len(images))))), step)
            self.tb.flush()
        if self.history:
            write_curves(self.history, self.run_dir / "curves.png")
        return images

    def close(self) -> None:
        self._file.close()
        if self.tb is not None:
            self.tb.close()
            self.tb = None


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


class Monitor:
    """Collapse and divergence signals, checked at log and grid times (NaN/Inf is the loop's own stop).

    * the critic wins outright (the objective says so from the mean scores) for ``patience`` logs running,
      as experiment E2's critic did at epoch 17 (D loss ~1e-8, G loss large);
    * the diversity of the fixed-z batch (mean pairwise RMS distance) falls below ``diversity_drop`` of its best.
    """

    def __init__(self, spec, objective):
        self.spec, self.objective = spec, objective
        self.wins, self.best_diversity = 0, 0.0

    def state(self) -> dict:
        return {"wins": self.wins, "best_diversity": self.best_diversity}

    def load_state(self, state: dict) -> None:
        self.wins = state.get("wins", 0)
        self.best_diversity = state.get("best_diversity", 0.0)

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


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    out, avg = [], None
    for v in values:
        avg = v if avg is None else weight * avg + (1 - weight) * v
        out.append(avg)
    return out


def write_curves(history: list[dict], path: Path) -> Path:
    """G/critic losses and the critic gap E[D(x)] - E[D(G(z))] (the Wasserstein estimate for WGANs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    panels = [("losses", [("d_loss", "critic loss"), ("g_loss", "generator loss")]),
              ("critic gap E[D(x)] - E[D(G(z))]", [("gap", "gap")])]
    if any(h.get("penalty") for h in history):
        panels.append(("penalty", [("penalty", "penalty")]))
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
