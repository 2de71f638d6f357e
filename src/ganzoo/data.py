"""From a recipe's ``data`` section to batches of float images in [-1, 1].

Datasets decode once into a uint8 tensor ``(N, C, H, W)``. When a dataset
can fingerprint its source, that tensor is cached on disk (keyed by dataset,
params, resolution, channels and a digest of the source's bytes) and
memory-mapped by later runs, so no image is decoded twice. Batches are
slices of it in a per-epoch permutation drawn from the recipe seed, so the
data order is reproducible and its position (epoch, batch) is two integers.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import contracts
from .errors import GanzooError
from .fileio import atomic_write, expand
from .imagefiles import EXTENSIONS, NOT_AN_IMAGE
from .interfaces import DataReport
from .labels import LabelSpace, encode
from .registry import Registry, get_registry

CACHE_FORMAT = 2  # 2: 16-bit, float and transparent images decoded by imagefiles.to_mode
log = logging.getLogger("ganzoo")


def cache_dir(kind: str = "datasets") -> Path:
    """``$GANZOO_CACHE_DIR/KIND``, else ``~/.cache/ganzoo/KIND`` (``datasets``: decoded images, ``eval``: features)."""
    env = os.environ.get("GANZOO_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "ganzoo") / kind


def _located(value):
    """A parameter that names an existing file or folder, as its real absolute path: ``../data/faces.zip``, its
    absolute spelling and a link to it are one key (the fingerprint, not the spelling, tells sources apart)."""
    if isinstance(value, str) and value.strip():
        try:
            path = expand(value)
            if path.exists():
                return os.path.realpath(path)
        except (OSError, ValueError):  # a name too long for a path, or one holding NUL: not a path
            pass
    return value


def dataset_key(section, registry: Registry | None = None) -> str | None:
    """A hash of everything that decides the decoded images (dataset, params, shape, source files), or None."""
    component = (registry or get_registry()).get("dataset", section.name)
    dataset = component.create(section.params)
    with contracts.calling(component, "fingerprint"):
        fingerprint = dataset.fingerprint()
    contracts.check_json(component, fingerprint, "fingerprint")
    if fingerprint is None:
        return None
    params = {k: _located(v) for k, v in section.params.model_dump(mode="json").items()}
    key = json.dumps({"dataset": section.name, "params": params, "resolution": section.resolution,
                      "channels": section.channels, "source": fingerprint, "format": CACHE_FORMAT}, sort_keys=True)
    return f"{section.name}-{section.resolution}px-{section.channels}ch-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def load_dataset(section, registry: Registry | None = None) -> tuple[torch.Tensor, DataReport]:
    """Every image of the recipe's dataset as uint8 ``(N, C, H, W)``, and what loading met (logged). With
    ``data.labels``, only the images that have every label named there (``load_data`` also gives the labels)."""
    data = load_data(section, registry)
    return data.images, data.report


@dataclass
class Data:
    """A recipe's dataset, decoded: images, what loading met, every label column the dataset gave, and, when the
    recipe names ``data.labels``, their codes ``(N, A)`` and label space (images without them are left out)."""

    images: torch.Tensor
    report: DataReport
    columns: dict = field(default_factory=dict)
    codes: torch.Tensor | None = None
    labels: LabelSpace | None = None


def load_data(section, registry: Registry | None = None) -> Data:
    """The recipe's dataset as ``Data``: decoded (or read from the data cache), labels encoded as the recipe says."""
    component = (registry or get_registry()).get("dataset", section.name)
    res, ch = section.resolution, section.channels

    def decode(report: DataReport):
        with contracts.calling(component, "load"):
            out = component.create(section.params).load(res, ch, report)
        images, columns = out if isinstance(out, tuple) and len(out) == 2 else (out, {})
        if not isinstance(images, torch.Tensor):
            raise contracts.ContractError(f"{contracts.who(component)}: load returned {type(images).__name__}, expected a uint8 tensor (N, {ch}, {res}, {res})")
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (ch, res, res):
            raise contracts.ContractError(f"{contracts.who(component)}: load returned {tuple(images.shape)} {images.dtype}, expected (N, {ch}, {res}, {res}) uint8")
        if not isinstance(columns, dict) or any(not isinstance(v, (list, tuple)) or len(v) != len(images) for v in columns.values()):
            raise contracts.ContractError(f"{contracts.who(component)}: load returned labels that are not "
                                          f"{{attribute: [one class name per image, {len(images)} in all]}}")
        if len(images) == 0:
            raise GanzooError(f"dataset '{section.name}' has no images")
        return images, {str(k): list(v) for k, v in columns.items()}

    images, report, columns = cached_images(dataset_key(section, registry) if section.cache else None, (ch, res, res), decode, section.name)
    data = Data(images, report, columns)
    if section.labels:
        keep, data.codes, data.labels, dropped = encode(columns, list(section.labels), len(images), f"dataset '{section.name}' ({report.source or section.name})")
        if dropped:
            data.images = images[keep]
            report.skipped[f"no {'/'.join(section.labels)} label"] += dropped
            log.info(f"data: left out {dropped} image(s) without a {'/'.join(section.labels)} label")
        log.info(f"data: labels {data.labels.describe()}")
    return data


def cached_images(key: str | None, shape, decode, label: str):
    """Decoded images (and label columns) from the data cache under ``key``, else ``decode(report)``, cached for
    next time (``key`` None: no cache). What loading met is logged either way. ``decode`` returns the images, or
    ``(images, columns)``; this returns ``(images, report, columns)``."""
    stem = cache_dir() / key if key else None
    t0 = time.perf_counter()
    cached = _read_cache(stem, shape) if stem is not None else None
    if cached is not None:
        images, report, columns = cached
        log.info(f"data: {len(images)} images from cache ({time.perf_counter() - t0:.2f} s, no decoding)")  # one short line
    else:
        report = DataReport()
        out = decode(report)
        images, columns = out if isinstance(out, tuple) else (out, {})
        took = time.perf_counter() - t0
        written = stem is not None and _write_cache(stem, images, report, columns)
        log.info(f"data: {len(images)} images decoded from {report.source or label} in {took:.1f} s"
                 + (" (cached for next time)" if written else ""))
    _log_report(report)
    return images, report, columns


def _read_cache(stem: Path, shape):
    npy, meta = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if not npy.exists() or not meta.exists():
        return None
    try:
        saved = json.loads(meta.read_text())
        if "labels" not in saved:  # written before datasets gave labels: decode once more to learn them
            return None
        report = DataReport.from_dict(saved)
        columns = {k: [c["classes"][i] if i >= 0 else None for i in c["codes"]] for k, c in saved.get("labels", {}).items()}
        array = np.load(npy, mmap_mode="c")  # copy-on-write memory map: nothing is read until used
        if array.dtype != np.uint8 or array.ndim != 4 or tuple(array.shape[1:]) != shape:
            raise ValueError(f"shape {array.shape} {array.dtype}")
        if any(len(v) != len(array) for v in columns.values()):
            raise ValueError("labels and images differ in number")
        return torch.from_numpy(array), report, columns
    except Exception as exc:
        log.warning(f"unreadable data cache {npy} ({type(exc).__name__}: {exc}); rebuilding it")
        return None


def _write_cache(stem: Path, images: torch.Tensor, report: DataReport, columns: dict) -> bool:
    labels = {}
    for name, values in columns.items():
        classes = sorted({str(v) for v in values if v is not None})
        index = {c: i for i, c in enumerate(classes)}
        labels[name] = {"classes": classes, "codes": [-1 if v is None else index[str(v)] for v in values]}
    buf = io.BytesIO()
    np.save(buf, images.numpy())
    try:
        atomic_write(stem.with_suffix(".npy"), buf.getvalue(), "data cache")
        atomic_write(stem.with_suffix(".json"), json.dumps({**report.to_dict(), "labels": labels}).encode(), "data cache")
    except (GanzooError, OSError) as exc:  # a cache that cannot be written only costs time: no cache, a warning
        log.warning(f"data cache not written ({exc}); continuing without it (set GANZOO_CACHE_DIR to a writable folder)")
        return False
    return True


def _log_report(report: DataReport) -> None:
    unreadable = report.skipped.get("unreadable or corrupt", 0)
    if unreadable:
        corrupt = [b for b in report.bad_files if not b.endswith("(the name is not UTF-8: rename it)")]
        shown = "; ".join(corrupt[:5]) + (" ..." if len(corrupt) > 5 else "")
        log.warning(f"skipped {unreadable} unreadable image(s) in {report.source}: {shown}")
    not_utf8 = report.skipped.get("name not UTF-8", 0)
    if not_utf8:
        named = [b for b in report.bad_files if b.endswith("(the name is not UTF-8: rename it)")]
        log.warning(f"skipped {not_utf8} file or folder name(s) that are not UTF-8 in {report.source}: "
                    + "; ".join(n.split(" (the name")[0] for n in named[:5]) + (" ..." if len(named) > 5 else "") + " (rename them to use them)")
    other = {k[len(NOT_AN_IMAGE):].strip(" ()") or "other": v for k, v in report.skipped.items()  # "other": an older cache's
             if k.startswith(NOT_AN_IMAGE)}
    if other:
        log.info(f"note: ignored {sum(other.values())} non-image file(s) in {report.source} "
                 f"({', '.join(f'{n} {ext}' for ext, n in sorted(other.items()))}; images are {' '.join(sorted(EXTENSIONS))})")
    if report.upscaled:
        log.warning(f"{report.upscaled} image(s) smaller than the target resolution were upscaled")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def build_augment(spec):
    """The recipe's augmentations as a torchvision transforms.v2 pipeline, or None."""
    from torchvision.transforms import v2

    steps = []
    if spec.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if spec.brightness or spec.contrast or spec.saturation or spec.hue:
        steps.append(v2.ColorJitter(brightness=spec.brightness or None, contrast=spec.contrast or None,
                                    saturation=spec.saturation or None, hue=spec.hue or None))
    return v2.Compose(steps) if steps else None


class BatchStream:
    """An endless stream of shuffled float batches (last incomplete batch of an epoch dropped).

    The permutation of epoch ``e`` depends only on ``(seed, e)``, so a stream
    can be recreated at any ``(epoch, index)``; under DDP every rank draws the
    same permutation and takes its own slice of each global batch. ``augment``
    (a transforms.v2 pipeline) is applied per image, so every image draws its
    own flip/jitter.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, device, epoch: int = 0, index: int = 0,
                 augment=None, rank: int = 0, world: int = 1, labels: torch.Tensor | None = None):
        if batch_size * world > len(images):
            raise GanzooError(f"train.batch_size {batch_size}" + (f" x {world} processes" if world > 1 else "")
                              + f" is larger than the dataset ({len(images)} images)")
        self.images, self.batch_size, self.seed, self.device = images, batch_size, seed, device
        self.augment, self.rank, self.world, self.labels = augment, rank, world, labels
        self.batches_per_epoch = len(images) // (batch_size * world)  # global batches
        self.epoch, self.index = epoch, index
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.images), generator=g)

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        return self.next_labelled()[0]

    def next_labelled(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next batch and its label codes ``(B, A)`` (None for a stream without labels)."""
        if self.index >= self.batches_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
            self._perm = self._permutation(self.epoch)
        first = (self.index * self.world + self.rank) * self.batch_size  # this rank's slice of the global batch
        idx = self._perm[first : first + self.batch_size]
        self.index += 1
        batch = self.images[idx]
        if self.augment is not None:
            batch = torch.stack([self.augment(img) for img in batch])
        y = None if self.labels is None else self.labels[idx].to(self.device, non_blocking=True)
        return to_float(batch.to(self.device, non_blocking=True)), y
