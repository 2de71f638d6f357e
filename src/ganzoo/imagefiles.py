"""Reading a folder (searched recursively) or a .zip of images: jpg, jpeg, png, bmp, webp, tif(f).

The core's own reader: the ``images`` dataset plugin is a thin layer over it, and evaluation reads folders of
generated or real images with it, so the core never has to ask for a particular dataset plugin.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import GanzooError
from .fileio import files_sha256, shown
from .interfaces import DataReport

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


NOT_UTF8 = "name not UTF-8"


def files(root: Path, skipped: Counter | None = None, bad: list | None = None) -> list[Path]:
    """Every file under ``root``, sorted; symlinked folders are followed once (a second link to a folder already
    read, or a link loop, is counted in ``skipped``, not read twice). A file or folder whose name is not UTF-8
    (bytes no path of the data can be written in, in a cache key or a report) is left out: counted in ``skipped``
    and named in ``bad``, its undecodable bytes shown as ``\\xNN``."""
    seen, out = set(), []
    skipped = Counter() if skipped is None else skipped
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            skipped["symlinked folder already read (or a link loop)"] += 1
            continue
        seen.add(real)
        for name in [n for n in dirs + names if not _utf8(n)]:
            skipped[NOT_UTF8] += 1
            if bad is not None:
                bad.append(f"{shown(Path(folder, name).relative_to(root))} (the name is not UTF-8: rename it)")
        dirs[:] = sorted(d for d in dirs if _utf8(d))
        out += [Path(folder) / n for n in names if _utf8(n) and os.path.isfile(os.path.join(folder, n))]
    return sorted(out)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.walk gives undecodable bytes as lone surrogates
        return False
    return True


NOT_AN_IMAGE = "not an image extension"


def not_an_image(name: str) -> str:
    """The ``skipped`` reason of a file left out for its extension, which it names: ``not an image extension (.gif)``."""
    return f"{NOT_AN_IMAGE} ({Path(name).suffix.lower() or 'no extension'})"


def members(path: Path, skipped: Counter, bad: list | None = None):
    """(name, read()) for every image file; other files are counted in ``skipped`` (and names that are not UTF-8
    listed in ``bad``)."""
    if path.is_dir():
        for p in files(path, skipped, bad):
            if p.suffix.lower() in EXTENSIONS:
                yield str(p.relative_to(path)), p.read_bytes
            else:
                skipped[not_an_image(p.name)] += 1
    else:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise GanzooError(f"data.path {shown(path)} is neither a folder nor a readable zip: {exc}") from None
        with zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                if Path(info.filename).suffix.lower() in EXTENSIONS:
                    # read in memory only: a member named ../x.jpg is never extracted anywhere
                    yield info.filename, (lambda info=info: zf.read(info))
                else:
                    skipped[not_an_image(info.filename)] += 1


def fingerprint(path: Path) -> dict:
    """What identifies a folder or zip of images: a digest of its files' bytes."""
    found, root = ([path], path.parent) if path.is_file() else (files(path), path)
    return {"sha256": files_sha256(found, root)}


def read_images(path: Path, resolution: int, channels: int, report: DataReport, names: list | None = None) -> torch.Tensor:
    """Every readable image of a folder or zip as uint8 ``(N, C, H, W)``: resized (Lanczos) and center-cropped.
    ``names`` (a list) receives each image's path inside the folder or zip (``/``-separated), in order."""
    report.source = str(path)
    mode = "RGB" if channels == 3 else "L"
    arrays = []
    for name, read in members(path, report.skipped, report.bad_files):
        name = name.replace(os.sep, "/")
        try:
            with Image.open(io.BytesIO(read())) as img:
                report.source_sizes[f"{img.size[0]}x{img.size[1]}"] += 1
                if min(img.size) < resolution:
                    report.upscaled += 1
                img.draft(mode, (resolution, resolution))  # JPEG: decode at a reduced size when much larger
                img = ImageOps.fit(to_mode(img, mode), (resolution, resolution), method=Image.Resampling.LANCZOS)
                arrays.append(np.asarray(img, dtype=np.uint8))
                if names is not None:
                    names.append(name)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, NotImplementedError, zlib.error,
                zipfile.BadZipFile, Image.DecompressionBombError) as exc:  # BadZipFile: a member whose CRC does not match
            report.skip("unreadable or corrupt", name, f"{type(exc).__name__}: {exc}")
    if not arrays:
        raise GanzooError(f"data.path {path}: no readable images ({', '.join(sorted(EXTENSIONS))})"
                          + (f"; skipped {dict(report.skipped)}" if report.skipped else ""))
    data = torch.from_numpy(np.stack(arrays))
    return data.unsqueeze(1) if channels == 1 else data.permute(0, 3, 1, 2).contiguous()


def to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Any PIL mode as ``L`` or ``RGB``: 16-bit, 32-bit and float images scaled to 8 bits (not clipped white),
    palettes expanded, transparency composited over white, CMYK converted."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        a = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16") or (img.mode == "I" and a.max() > 255):
            a = a * (255 / 65535) if a.max() <= 65535 else a * (255 / 4294967295)  # 16-bit data, or full 32-bit range
        elif img.mode == "F" and a.max() <= 1.0:
            a = a * 255  # floats in [0, 1]
        img = Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8), "L")
    if img.mode in ("P", "PA") or (img.mode in ("L", "RGB") and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert(mode)


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
