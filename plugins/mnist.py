"""MNIST handwritten digits through torchvision, from a local root (download off by default)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

import ganzoo
from ganzoo import Dataset, GanzooError, Params
from ganzoo.fileio import expand, files_sha256

log = logging.getLogger("ganzoo")


class MNISTParams(Params):
    root: str = Field("data/mnist", pattern=r"\S", description="torchvision root: files go in ROOT/<Class>/raw/")
    split: Literal["train", "test", "all"] = Field("train", description="which images to use")
    download: bool = Field(False, description="download the files if missing (needs internet)")


FILES = {True: "train-images-idx3-ubyte", False: "t10k-images-idx3-ubyte"}  # as the data sets are distributed
LABEL_FILES = {True: "train-labels-idx1-ubyte", False: "t10k-labels-idx1-ubyte"}


class MNIST(Dataset):
    name = "mnist"
    description = "MNIST digits (local files as distributed, .gz or not; 28x28 gray, resized/replicated as the recipe says)"
    Params = MNISTParams
    torchvision_class = "MNIST"  # a class of torchvision.datasets (imported when loading: torchvision is slow to import)
    label_name = "digit"  # the label attribute (data.labels: [digit])
    class_names = [str(i) for i in range(10)]

    def _where(self) -> list[Path]:
        root = expand(self.params.root)
        return [root / self.torchvision_class / "raw", root]  # torchvision's layout, or the four files in one folder

    def _files(self, names=FILES) -> dict[bool, Path]:
        """The image (or label) file of each split wanted: uncompressed or .gz, in torchvision's layout or a flat folder."""
        found = {}
        for train in {"train": [True], "test": [False], "all": [True, False]}[self.params.split]:
            for folder in self._where():
                hit = next((folder / f"{names[train]}{ext}" for ext in ("", ".gz") if (folder / f"{names[train]}{ext}").is_file()), None)
                if hit is not None:
                    found[train] = hit
                    break
            else:
                if not self.params.download and names is FILES:
                    a, b = self._where()
                    raise GanzooError(f"{self.torchvision_class} not found: put {FILES[train]}.gz (as distributed, or "
                                      f"uncompressed) in {b} or {a}, or set data.download: true")
        return found

    def check(self):
        self._files()

    def fingerprint(self):
        files = sorted([*self._files().values(), *self._files(LABEL_FILES).values()])
        return {"sha256": files_sha256(files, expand(self.params.root))}

    def load(self, resolution, channels, report):
        params = self.params
        report.source = f"{params.root} ({self.torchvision_class}, {params.split})"
        files, label_files = self._files(), self._files(LABEL_FILES)
        parts, labels = [], []
        for train in {"train": [True], "test": [False], "all": [True, False]}[params.split]:
            if train in files:
                parts.append(read_idx(files[train]))
                labels.append(read_idx(label_files[train], labels=True) if train in label_files else None)
            else:
                data = self._download(train)
                parts.append(data.data)
                labels.append(data.targets)
        images = torch.cat(parts).unsqueeze(1)  # (N, 1, 28, 28) uint8
        columns = {}
        if all(t is not None for t in labels):
            codes = torch.cat(labels).tolist()
            if len(codes) != len(images):
                raise GanzooError(f"{self.torchvision_class}: {len(codes)} labels for {len(images)} images (label and image files differ)")
            names = self.class_names
            columns[self.label_name] = [names[c] if 0 <= c < len(names) else None for c in codes]
            bad = [i for i, c in enumerate(codes) if not 0 <= c < len(names)]
            if bad:  # no class: left out of a conditional run (with a count), harmless to an unconditional one
                sources = ", ".join(str(label_files[t]) for t in sorted(label_files, reverse=True))
                log.warning(f"{self.torchvision_class}: {len(bad)} label byte(s) in {sources} are not a class 0-{len(names) - 1} "
                            f"(the first: {codes[bad[0]]} for image {bad[0]}): those images have no {self.label_name} label")
        if resolution != images.shape[-1]:
            from torchvision.transforms.v2 import functional as TF

            images = TF.resize(images, [resolution, resolution], antialias=True)
        return images.expand(-1, channels, -1, -1).contiguous(), columns

    def _download(self, train: bool):
        from torchvision import datasets

        try:
            return getattr(datasets, self.torchvision_class)(self.params.root, train=train, download=True)
        except (RuntimeError, OSError) as exc:
            raise GanzooError(f"{self.torchvision_class}: download to {self.params.root} failed ({exc}); put the files there by hand") from None


def read_idx(path: Path, labels: bool = False) -> torch.Tensor:
    """An IDX image file (uncompressed or .gz) as uint8 ``(N, H, W)`` (a label file: long ``(N,)``), read by
    torchvision's reader."""
    import gzip
    import tempfile

    from torchvision.datasets.mnist import read_image_file, read_label_file

    reader = read_label_file if labels else read_image_file
    try:
        if path.suffix != ".gz":
            return reader(str(path))
        with gzip.open(path) as f, tempfile.NamedTemporaryFile(suffix=".idx") as tmp:
            tmp.write(f.read())
            tmp.flush()
            return reader(tmp.name)
    except (OSError, EOFError, AssertionError, RuntimeError, ValueError, gzip.BadGzipFile) as exc:
        raise GanzooError(f"{path} is not a readable IDX {'label' if labels else 'image'} file ({type(exc).__name__}: {exc})") from None


@ganzoo.hookimpl
def register_datasets(register):
    register(MNIST)
