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
    def load(cls, params, resolution, channels, log=print):
        path = Path(params.path).expanduser()
        if not path.exists():
            raise GanzooError(f"data.path {path} does not exist (give a folder or .zip of images, e.g. --set data.path=...)")
        mode = "RGB" if channels == 3 else "L"
        skipped, bad, upscaled, arrays = Counter(), [], 0, []
        for name, read in _members(path, skipped):
            try:
                with Image.open(io.BytesIO(read())) as img:
                    img.draft(mode, (resolution, resolution))  # JPEG: decode at a reduced size when much larger
                    img = img.convert("RGBA").convert(mode) if img.mode in ("P", "PA") else img.convert(mode)
                    if min(img.size) < resolution:
                        upscaled += 1
                    img = ImageOps.fit(img, (resolution, resolution), method=Image.Resampling.LANCZOS)
                    arrays.append(np.asarray(img, dtype=np.uint8))
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
                skipped["unreadable or corrupt"] += 1
                bad.append(f"{name} ({type(exc).__name__}: {exc})")
        if not arrays:
            raise GanzooError(f"data.path {path}: no readable images ({', '.join(sorted(EXTENSIONS))})"
                              + (f"; skipped {dict(skipped)}" if skipped else ""))
        if bad:
            log(f"[yellow]warning:[/] skipped {len(bad)} unreadable image(s) in {path}: " + "; ".join(bad[:5])
                + (" ..." if len(bad) > 5 else ""))
        if skipped["not an image extension"]:
            log(f"note: ignored {skipped['not an image extension']} non-image file(s) in {path}")
        if upscaled:
            log(f"[yellow]warning:[/] {upscaled} image(s) smaller than {resolution}px were upscaled")
        data = torch.from_numpy(np.stack(arrays))
        return data.unsqueeze(1) if channels == 1 else data.permute(0, 3, 1, 2).contiguous()


@ganzoo.hookimpl
def register_datasets(register):
    register(Images)
