"""Reading a folder (searched recursively) or a .zip of images: jpg, jpeg, png, bmp, webp.

The core's own reader: the ``images`` dataset plugin is a thin layer over it, and evaluation reads folders of
generated or real images with it, so the core never has to ask for a particular dataset plugin.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import GanzooError
from .fileio import files_sha256
from .interfaces import DataReport

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def members(path: Path, skipped: Counter):
    """(name, read()) for every image file; other files are counted in ``skipped``."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                if p.suffix.lower() in EXTENSIONS:
                    yield str(p.relative_to(path)), p.read_bytes
                else:
                    skipped["not an image extension"] += 1
    else:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise GanzooError(f"data.path {path} is neither a folder nor a readable zip: {exc}") from None
        with zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                if Path(info.filename).suffix.lower() in EXTENSIONS:
                    # read in memory only: a member named ../x.jpg is never extracted anywhere
                    yield info.filename, (lambda info=info: zf.read(info))
                else:
                    skipped["not an image extension"] += 1


def fingerprint(path: Path) -> dict:
    """What identifies a folder or zip of images: a digest of its files' bytes."""
    files, root = ([path], path.parent) if path.is_file() else (sorted(p for p in path.rglob("*") if p.is_file()), path)
    return {"sha256": files_sha256(files, root)}


def read_images(path: Path, resolution: int, channels: int, report: DataReport) -> torch.Tensor:
    """Every readable image of a folder or zip as uint8 ``(N, C, H, W)``: resized (Lanczos) and center-cropped."""
    report.source = str(path)
    mode = "RGB" if channels == 3 else "L"
    arrays = []
    for name, read in members(path, report.skipped):
        try:
            with Image.open(io.BytesIO(read())) as img:
                report.source_sizes[f"{img.size[0]}x{img.size[1]}"] += 1
                if min(img.size) < resolution:
                    report.upscaled += 1
                img.draft(mode, (resolution, resolution))  # JPEG: decode at a reduced size when much larger
                img = img.convert("RGBA").convert(mode) if img.mode in ("P", "PA") else img.convert(mode)
                img = ImageOps.fit(img, (resolution, resolution), method=Image.Resampling.LANCZOS)
                arrays.append(np.asarray(img, dtype=np.uint8))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            report.skip("unreadable or corrupt", name, f"{type(exc).__name__}: {exc}")
    if not arrays:
        raise GanzooError(f"data.path {path}: no readable images ({', '.join(sorted(EXTENSIONS))})"
                          + (f"; skipped {dict(report.skipped)}" if report.skipped else ""))
    data = torch.from_numpy(np.stack(arrays))
    return data.unsqueeze(1) if channels == 1 else data.permute(0, 3, 1, 2).contiguous()


def first_image_size(path) -> tuple[int, int]:
    """(shorter side, channels) of the first readable image in a folder or zip (e.g. to score it as is)."""
    path = Path(path)
    if not (path.is_dir() or zipfile.is_zipfile(path)):
        raise GanzooError(f"{path} is neither a folder nor a zip of images")
    for name, read in members(path, Counter()):
        try:
            with Image.open(io.BytesIO(read())) as img:
                return min(img.size), 1 if img.mode in ("1", "L", "I", "I;16") else 3
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            continue
    raise GanzooError(f"{path}: no readable images")
