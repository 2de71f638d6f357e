"""A folder (searched recursively) or a .zip of images: jpg, jpeg, png, bmp, webp."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import Field

import ganzoo
from ganzoo import Dataset, GanzooError, Params
from ganzoo.fileio import files_sha256

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class ImagesParams(Params):
    path: str = Field(..., description="folder or .zip of images")


def _members(path: Path, skipped: Counter):
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


class Images(Dataset):
    name = "images"
    description = "Images from a folder (recursive) or a .zip; resized (Lanczos) and center-cropped"
    Params = ImagesParams

    @classmethod
    def fingerprint(cls, params):
        path = _existing(params)
        files, root = ([path], path.parent) if path.is_file() else (sorted(p for p in path.rglob("*") if p.is_file()), path)
        return {"sha256": files_sha256(files, root)}

    @classmethod
    def load(cls, params, resolution, channels, report):
        path = _existing(params)
        report.source = str(path)
        mode = "RGB" if channels == 3 else "L"
        arrays = []
        for name, read in _members(path, report.skipped):
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


    @classmethod
    def first_image_size(cls, path) -> tuple[int, int]:
        """(shorter side, channels) of the first readable image in a folder or zip (e.g. to score it as is)."""
        path = Path(path)
        if not (path.is_dir() or zipfile.is_zipfile(path)):
            raise GanzooError(f"{path} is neither a folder nor a zip of images")
        for name, read in _members(path, Counter()):
            try:
                with Image.open(io.BytesIO(read())) as img:
                    return min(img.size), 1 if img.mode in ("1", "L", "I", "I;16") else 3
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
                continue
        raise GanzooError(f"{path}: no readable images")


def _existing(params) -> Path:
    path = Path(params.path).expanduser()
    if not path.exists():
        raise GanzooError(f"data.path {path} does not exist (give a folder or .zip of images, e.g. --set data.path=...)")
    return path


@ganzoo.hookimpl
def register_datasets(register):
    register(Images)
