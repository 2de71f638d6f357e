"""From a recipe's ``data`` section to batches of float images in [-1, 1].

Datasets decode once into a uint8 tensor ``(N, C, H, W)``; batches are
slices of it in a per-epoch permutation drawn from the recipe seed, so the
data order is reproducible and its position (epoch, batch) is two integers.
"""

from __future__ import annotations

import torch

from .errors import GanzooError
from .registry import Registry, get_registry


def load_dataset(section, registry: Registry | None = None, log=print) -> torch.Tensor:
    """Every image of the recipe's dataset as uint8 ``(N, C, H, W)``."""
    component = (registry or get_registry()).get("dataset", section.name)
    images = component.cls.load(section.params, section.resolution, section.channels, log=log)
    expected = (section.channels, section.resolution, section.resolution)
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != expected:
        raise GanzooError(
            f"dataset '{section.name}' returned {tuple(images.shape)} {images.dtype}, expected (N, {expected[0]}, {expected[1]}, {expected[2]}) uint8"
        )
    if len(images) == 0:
        raise GanzooError(f"dataset '{section.name}' has no images")
    return images


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class BatchStream:
    """An endless stream of shuffled batches (last incomplete batch of an epoch dropped).

    The permutation of epoch ``e`` depends only on ``(seed, e)``, so a stream
    can be recreated at any ``(epoch, index)``.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, device, epoch: int = 0, index: int = 0):
        if batch_size > len(images):
            raise GanzooError(f"train.batch_size {batch_size} is larger than the dataset ({len(images)} images)")
        self.images, self.batch_size, self.seed, self.device = images, batch_size, seed, device
        self.batches_per_epoch = len(images) // batch_size
        self.epoch, self.index = epoch, index
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.images), generator=g)

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        if self.index >= self.batches_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.index * self.batch_size : (self.index + 1) * self.batch_size]
        self.index += 1
        batch = self.images[idx]
        return to_float(batch.to(self.device, non_blocking=True))
