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
from .fileio import atomic_write

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
    import ganzoo
    return {"ganzoo": ganzoo.__version__, "torch": torch.__version__, "python": platform.python_version()}


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
        candidate = path / "checkpoints" / "last.safetensors"
        if not candidate.is_file():
            raise GanzooError(f"{path} is a folder with no checkpoints/last.safetensors")
        path = candidate
    if not path.is_file():
        raise GanzooError(f"checkpoint not found: {path}")
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
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise GanzooError(f"{path} was written by a newer ganzoo (format {meta['format_version']}); upgrade ganzoo")
    return Checkpoint(path, meta, tensors)


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


def restore_optimizer(opt: torch.optim.Optimizer, ckpt: Checkpoint, name: str) -> None:
    saved = ckpt.meta["optimizers"].get(name, {}).get("type")
    if saved != type(opt).__name__:
        raise GanzooError(f"{ckpt.path}: the {name} optimizer state does not match the recipe's optimizer "
                          f"(checkpoint has {saved}, recipe builds {type(opt).__name__})")
    recipe_groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    opt.load_state_dict(_unflatten_optimizer(name, ckpt))
    for group, wanted in zip(opt.param_groups, recipe_groups):  # the recipe's lr, betas, ... win over the saved ones
        group.update(wanted)
