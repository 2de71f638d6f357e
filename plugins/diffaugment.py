"""DiffAugment (Zhao et al. 2020): differentiable augmentations of every batch the critic sees, real and fake.

Each image draws its own parameters. The generator's gradient flows through the augmentation, so the
critic never sees un-augmented images and the generator is not pushed to reproduce the augmentations.
"""

from typing import Literal

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer


class DiffAugmentParams(Params):
    policy: list[Literal["color", "translation", "cutout"]] = Field(
        ["color", "translation", "cutout"], description="augmentations, applied in this order")
    translation: float = Field(0.125, ge=0, le=0.5, description="largest shift, as a fraction of the image size")
    cutout: float = Field(0.5, gt=0, le=1, description="side of the erased square, as a fraction of the image size")
    p: float = Field(1.0, ge=0, le=1, description="probability that an image gets each operation (1: every image, as "
                     "DiffAugment; lower it, or ramp it with a schedule, as R3GAN ramps its augmentation)")


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image, for images in [-1, 1]."""
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (2 * torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y (whole pixels), filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (n, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1), device=x.device)
    padded = torch.nn.functional.pad(x, (sw, sw, sh, sh))
    rows = torch.arange(h, device=x.device) + sh - dy  # (n, h): source row in the padded image
    cols = torch.arange(w, device=x.device) + sw - dx  # (n, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Erase (set to 0) one square of side ``ratio`` x size per image, centred anywhere in the image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device) - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def apply(images: torch.Tensor, what: str, params) -> torch.Tensor:
    """One DiffAugment operation (``color``, ``translation``, ``cutout``) with the sizes in ``params``."""
    if what == "color":
        return color(images)
    if what == "translation":
        return translation(images, params.translation)
    return cutout(images, params.cutout)


def augment(images: torch.Tensor, params, p: float) -> torch.Tensor:
    """Each operation of ``params.policy`` in turn, applied to each image with probability ``p`` (all when p is 1)."""
    if p <= 0:
        return images
    for what in params.policy:
        if p >= 1:
            images = apply(images, what, params)
        else:
            chosen = (torch.rand(len(images), device=images.device) < p).view(-1, 1, 1, 1)
            images = torch.where(chosen, apply(images, what, params), images)
    return images


class DiffAugment(Regularizer):
    name = "diffaugment"
    description = "Differentiable augmentation (colour, translation, cutout) of real and fake batches for the critic"
    Params = DiffAugmentParams

    def augment(self, images):
        return augment(images, self.params, self.params.p)


@ganzoo.hookimpl
def register_regularizers(register):
    register(DiffAugment)
