"""Checkpoints: safetensors for every tensor, JSON for everything else. Never pickle.

One ``.safetensors`` file holds the generator, the critic and both
optimizers' state tensors; its header metadata holds the JSON (recipe as
resolved, step, epoch, optimizer hyper-parameters, versions). A ``.json``
sidecar repeats that JSON for people and tools. Files are written to a
temporary name in the same folder, fsynced and renamed, so a crash leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from .errors import GanzooError
from .fileio import atomic_write, shown
from .interfaces import Callback
from .rundir import RunFiles
from .version import __version__

FORMAT = "ganzoo-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    path: Path
    meta: dict
    tensors: dict[str, torch.Tensor]

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.tensors.items() if k.startswith(p)}

    @property
    def recipe(self) -> dict:
        return self.meta["recipe"]


def versions() -> dict:
    return {"ganzoo": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    sd = opt.state_dict()
    scalars = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{name}.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    meta[name] = {"type": type(opt).__name__, "param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, ckpt: Checkpoint) -> dict:
    info = ckpt.meta["optimizers"][name]
    state: dict[int, dict] = {}
    for key, value in ckpt.state(f"optim.{name}").items():
        pid, field = key.split(".", 1)
        state.setdefault(int(pid), {})[field] = value
    for key, value in info["scalars"].items():
        pid, field = key.split(".", 1)
        state.setdefault(int(pid), {})[field] = value
    return {"state": state, "param_groups": info["param_groups"]}


def save_checkpoint(path, *, generator, critic, opt_g=None, opt_d=None, meta: dict, extra: dict | None = None,
                    generator_ema=None) -> Path:
    """Write G, critic, optimizers, G's weight average and ``extra`` tensors to ``path`` (``.safetensors``)
    and a ``.json`` sidecar."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in (extra or {}).items()}
    for prefix, module in (("generator", generator), ("critic", critic), ("generator_ema", generator_ema)):
        if module is None:
            continue
        for k, v in module.state_dict().items():
            tensors[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
    optim_meta: dict = {}
    for name, opt in (("generator", opt_g), ("critic", opt_d)):
        if opt is not None:
            _flatten_optimizer(name, opt, tensors, optim_meta)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "optimizers": optim_meta, "versions": versions()}
    text = json.dumps(meta)
    atomic_write(path, st_save(tensors, metadata={"ganzoo": text}), "checkpoint")
    atomic_write(path.with_suffix(".json"), json.dumps(meta, indent=2).encode(), "checkpoint")
    return path


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint without unpickling anything; clear errors for anything else."""
    path = Path(path)
    if path.is_dir():
        files = RunFiles(path)
        if not files.last.is_file():
            if files.recipe.is_file():  # a run stopped before its first checkpoint
                raise GanzooError(f"{path} is a run that stopped before its first checkpoint (no {files.last.relative_to(path)}): "
                                  f"nothing to continue; start it again with: ganzoo run {files.recipe} --run-dir {path} --force")
            raise GanzooError(f"{path} is a folder with no {files.last.relative_to(path)}")
        path = files.last
    if not path.is_file():
        raise GanzooError(f"checkpoint not found: {shown(path)}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, ValueError, OSError) as exc:
        raise GanzooError(f"{path} is not a readable safetensors checkpoint (truncated or another format): {exc}") from None
    try:
        meta = json.loads(header["ganzoo"])
        assert meta.get("format") == FORMAT
    except Exception:
        raise GanzooError(f"{path} is a safetensors file but not a ganzoo checkpoint (no ganzoo metadata)") from None
    problem = _meta_problem(meta)
    if problem:
        raise GanzooError(f"{path}: damaged ganzoo checkpoint metadata ({problem})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise GanzooError(f"{path} was written by a newer ganzoo (format {meta['format_version']}); upgrade ganzoo")
    return Checkpoint(path, meta, tensors)


def compare_checkpoints(a, b, prefixes=("generator.", "critic.", "generator_ema.")) -> dict:
    """Which tensors of two checkpoints (files or run folders) differ: ``{"same": [...], "differ": {name: max abs
    difference, or "shape"/"dtype"}, "only_a": [...], "only_b": [...]}`` over the tensors whose names start with
    ``prefixes`` (networks and the weight average; ``()`` for all, optimizer state and RNG included). The files'
    own digests never match (their metadata holds times and paths): this is how to check that two runs are
    bit-identical."""
    ta, tb = load_checkpoint(a).tensors, load_checkpoint(b).tensors
    keep = lambda names: {n for n in names if not prefixes or n.startswith(tuple(prefixes))}  # noqa: E731
    na, nb = keep(ta), keep(tb)
    out = {"same": [], "differ": {}, "only_a": sorted(na - nb), "only_b": sorted(nb - na)}
    for name in sorted(na & nb):
        x, y = ta[name], tb[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            out["differ"][name] = "shape" if x.shape != y.shape else "dtype"
        elif torch.equal(x, y):
            out["same"].append(name)
        else:
            out["differ"][name] = float((x.double() - y.double()).abs().max()) if x.is_floating_point() else "values"
    return out


def checkpoint_identity(path) -> tuple[str | None, int | None]:
    """``(run_id, step)`` from a checkpoint file's header alone (no tensors read); ``(None, None)`` when unreadable."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["ganzoo"])
        return meta.get("run_id"), meta.get("step")
    except Exception:
        return None, None


def _meta_problem(meta: dict) -> str | None:
    if not isinstance(meta.get("format_version", 0), int):
        return "format_version is not an integer"
    if not isinstance(meta.get("recipe"), dict):
        return "no recipe mapping"
    for key in ("step", "epoch", "batch_index"):
        if key in meta and (not isinstance(meta[key], int) or isinstance(meta[key], bool) or meta[key] < 0):
            return f"{key} is {meta[key]!r}, not a count"
    if "rng" in meta and not all(k in meta for k in ("step", "epoch", "batch_index")):
        return "training position (step, epoch, batch_index) incomplete"
    return None


def load_state(module: torch.nn.Module, state: dict, what: str, where) -> None:
    """``load_state_dict`` with a one-line message naming the first mismatch."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise GanzooError(f"{where}: {what} weights do not match the recipe's architecture ({detail}, {len(missing)} missing, {len(extra)} unexpected)")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise GanzooError(f"{where}: {what} weight {k} has shape {tuple(v.shape)}, the architecture expects {tuple(own[k].shape)}")
    module.load_state_dict(state)


def require_finite(module: torch.nn.Module, what: str, path, consequence: str = "this checkpoint cannot draw images") -> None:
    """Refuse weights holding NaN or Inf: they would draw black (or noise) images, scores without meaning, or a
    resumed run that 'diverges' at once."""
    bad = {name: int((~torch.isfinite(t)).sum()) for name, t in module.state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())}
    if bad:
        total = sum(bad.values())
        first = ", ".join(f"{k} ({v})" for k, v in list(bad.items())[:3]) + (" ..." if len(bad) > 3 else "")
        raise GanzooError(f"{path}: the {what}'s weights hold {total:,} NaN or infinite value(s) in {len(bad)} tensor(s): {first}; "
                          f"{consequence} (use an earlier one: checkpoints/best or step_NNNNNNN)")


def restore_optimizer(opt: torch.optim.Optimizer, ckpt: Checkpoint, name: str) -> None:
    saved = ckpt.meta["optimizers"].get(name, {}).get("type")
    if saved != type(opt).__name__:
        raise GanzooError(f"{ckpt.path}: the {name} optimizer state does not match the recipe's optimizer "
                          f"(checkpoint has {saved}, recipe builds {type(opt).__name__})")
    recipe_groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    opt.load_state_dict(_unflatten_optimizer(name, ckpt))
    for group, wanted in zip(opt.param_groups, recipe_groups):  # the recipe's lr, betas, ... win over the saved ones
        group.update(wanted)


def load_weights(ckpt: Checkpoint, generator, critic) -> None:
    """Load a checkpoint's G and critic weights; a mismatch is one message naming it."""
    load_state(generator, ckpt.state("generator"), "generator", ckpt.path)
    load_state(critic, ckpt.state("critic"), "critic", ckpt.path)


def restore_training(ckpt: Checkpoint, G, D, opt_g, opt_d, ema) -> tuple[int, int, int]:
    """Weights, EMA, optimizers and RNG states from a checkpoint; returns ``(step, epoch, batch_index)``."""
    from . import rng

    load_weights(ckpt, G, D)
    for net, what in ((G, "generator"), (D, "critic")):  # a broken checkpoint is named as such, not as a diverging run
        require_finite(net, what, ckpt.path, "it cannot be resumed")
    if ema is not None:
        state = ckpt.state("generator_ema")
        if not state:
            raise GanzooError(f"{ckpt.path} has no EMA generator but the recipe asks for one (ema): "
                              "an average cannot be resumed from a run that did not keep one")
        load_state(ema, state, "EMA generator", ckpt.path)
        require_finite(ema, "EMA generator", ckpt.path, "it cannot be resumed")
    for name, opt in (("generator", opt_g), ("critic", opt_d)):
        try:
            restore_optimizer(opt, ckpt, name)
        except (ValueError, KeyError) as exc:  # same type, other parameter layout
            raise GanzooError(f"{ckpt.path}: the {name} optimizer state does not match the recipe's optimizer ({exc})") from None
    if "rng" not in ckpt.meta:
        raise GanzooError(f"{ckpt.path} holds weights only (no RNG/data state): it can be sampled from, not resumed")
    rng.set_state(ckpt.tensors, ckpt.meta["rng"])
    return ckpt.meta["step"], ckpt.meta["epoch"], ckpt.meta["batch_index"]


def save_run(run, name: str = "last", **extra_meta) -> Path | None:
    """Checkpoint a run at its current step as ``checkpoints/NAME.safetensors`` (rank 0 writes; every rank checks).

    Never replaces a good checkpoint with a broken one: non-finite weights are an error instead.
    """
    from . import rng

    for net, what in ((run.generator, "generator"), (run.critic, "critic")):
        if not all(torch.isfinite(p).all() for p in net.parameters()):
            raise GanzooError(f"training diverged: the {what} weights are not finite at step {run.step}; "
                              f"the last checkpoint on disk is untouched ({RunFiles(run.run_dir).checkpoints})")
    if not run.world.main:
        return None
    rng_tensors, rng_meta = rng.get_state()
    meta = {"recipe": run.recipe.to_dict(), "step": run.step, "epoch": run.batches.epoch, "batch_index": run.batches.index,
            "rng": rng_meta, "world_size": run.world.size, "time": run.elapsed(), "run_id": run.run_id,
            "components": run.recipe.components(), **run.states(), **extra_meta}
    if run.labels is not None:
        meta["labels"] = run.labels.to_dict()
    return save_checkpoint(RunFiles(run.run_dir).checkpoint(name), generator=run.generator, critic=run.critic,
                           opt_g=run.opt_g, opt_d=run.opt_d, meta=meta, extra=rng_tensors, generator_ema=run.ema)


class Checkpoints(Callback):
    """``checkpoints/last`` every ``train.checkpoint_every`` steps, when a run is interrupted or stopped, and at
    the end; ``checkpoints/step_NNNNNNN`` every ``train.keep_every`` steps. It acts after every other observer
    (``after_step``), so a stop requested anywhere in the step is saved at that step."""

    name = "checkpoints"

    def after_step(self, run) -> None:
        cfg, step = run.recipe.train, run.step
        if cfg.keep_every and step % cfg.keep_every == 0:
            save_run(run, f"step_{step:07d}")
        if run.stop is not None and run.stop.kind != "end":
            run.checkpoint_path = save_run(run)
            from .distributed import barrier

            barrier(run.world)
        elif cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != run.total and run.stop is None:
            save_run(run)

    def on_end(self, run) -> None:
        run.checkpoint_path = save_run(run)
