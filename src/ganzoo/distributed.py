"""Running under torchrun: PyTorch's own DistributedDataParallel, nothing home-made.

``torchrun --nproc_per_node N -m ganzoo run RECIPE`` sets RANK, WORLD_SIZE
and LOCAL_RANK; ``setup`` then joins the process group (gloo on CPU, nccl on
CUDA). Every rank trains on its own slice of each global batch (the recipe's
``train.batch_size`` is per rank: global batch = batch_size x world size);
DDP averages gradients; only rank 0 writes anything.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import GanzooError
from .interfaces import Callback


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def pick_device(name: str, what: str = "train.device") -> torch.device:
    if name not in ("auto", "cpu", "cuda"):
        raise GanzooError(f"unknown device '{name}': use auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise GanzooError(f"{what} is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def setup(device_kind: str) -> World:
    """Join the torchrun process group if the environment says so; a single process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return world


def device_for(world: World, device: torch.device) -> torch.device:
    return torch.device("cuda", world.local_rank) if device.type == "cuda" else device


def wrap(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    if not world.distributed:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)


def any_rank(flag: bool, world: World, device) -> bool:
    """True on every rank if it is true on any rank (stop requests, non-finite losses)."""
    if not world.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over_ranks(values: torch.Tensor, world: World) -> torch.Tensor:
    if world.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= world.size
    return values


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 of the parameters (not the buffers: BatchNorm running statistics are per rank, DDP syncs parameters)."""
    h = hashlib.sha256()
    for p in module.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_objects(obj, world: World) -> list:
    if not world.distributed:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def barrier(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


class StopAgreement(Callback):
    """After each step: if any rank was asked to stop, every rank stops the same way (the most severe request).
    With ``digests``, at the end: each rank's weight digests, for run.json (the ranks must agree)."""

    name = "stop_agreement"

    def __init__(self, device, digests: bool = False):
        self.device, self.digests = device, digests

    def on_step(self, run, record) -> None:
        if not self.digests:  # early in the step: before the collective metrics
            self.agree(run)

    def after_step(self, run) -> None:
        if self.digests:  # late: after the rank-0 observers (monitor, callbacks), before checkpoints
            self.agree(run)

    def agree(self, run) -> None:
        if any_rank(run.stop is not None, run.world, self.device):
            for stop in gather_objects(run.stop, run.world):
                if stop is not None:
                    run.request_stop(stop.kind, stop.reason)

    def on_end(self, run) -> None:
        if self.digests:
            run.ranks = gather_objects({"rank": run.world.rank, "steps": run.step - run.start,
                                                 "weights_sha256": weights_digest(run.generator)[:16] + weights_digest(run.critic)[:16]},
                                                run.world)
