"""Generate images from a generator and write them as PNGs and a grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from .data import to_uint8


def write_png(image: torch.Tensor, path) -> None:
    """One uint8 ``(C, H, W)`` image as a PNG (gray for C == 1)."""
    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else np.ascontiguousarray(array)).save(path, compress_level=1)


@torch.no_grad()
def generate(generator, n: int, seed: int = 0, batch_size: int = 250, device=None) -> torch.Tensor:
    """``n`` images as uint8 ``(n, C, H, W)``, from latents drawn with ``seed``."""
    device = device or next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.latent_dim, generator=g)
    out = [to_uint8(generator(z[i : i + batch_size].to(device))).cpu() for i in range(0, n, batch_size)]
    generator.train(was_training)
    return torch.cat(out) if out else torch.empty(0, generator.shape.channels, generator.shape.resolution, generator.shape.resolution, dtype=torch.uint8)


def write_grid(images: torch.Tensor, path, nrow: int | None = None) -> Path:
    """One PNG grid of uint8 images (``nrow`` defaults to a square)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=255)
    write_png(grid[:1] if images.shape[1] == 1 else grid, path)
    return path


def write_samples(images: torch.Tensor, out_dir, grid: bool = True) -> Path:
    """``out_dir/00000.png`` ... one PNG per image, plus ``out_dir/grid.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(images) - 1)))
    for i, img in enumerate(images):
        write_png(img, out_dir / f"{i:0{width}d}.png")
    if grid and len(images):
        write_grid(images, out_dir / "grid.png")
    return out_dir
