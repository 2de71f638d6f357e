"""MNIST handwritten digits through torchvision, from a local root (download off by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

import ganzoo
from ganzoo import Dataset, GanzooError, Params
from ganzoo.fileio import files_sha256


class MNISTParams(Params):
    root: str = Field("data/mnist", description="torchvision root: files go in ROOT/<Class>/raw/")
    split: Literal["train", "test", "all"] = Field("train", description="which images to use")
    download: bool = Field(False, description="download the files if missing (needs internet)")


class MNIST(Dataset):
    name = "mnist"
    description = "MNIST digits (torchvision, local root; 28x28 gray, resized/replicated as the recipe says)"
    Params = MNISTParams
    torchvision_class = "MNIST"  # a class of torchvision.datasets (imported when loading: torchvision is slow to import)

    def fingerprint(self):
        params = self.params
        raw = Path(params.root) / self.torchvision_class / "raw"
        files = sorted(raw.glob("*")) if raw.is_dir() else []
        return {"sha256": files_sha256(files, raw)}

    def load(self, resolution, channels, report):
        params = self.params
        from torchvision import datasets

        tv = getattr(datasets, self.torchvision_class)
        report.source = f"{params.root} ({tv.__name__}, {params.split})"
        parts = []
        for train in {"train": [True], "test": [False], "all": [True, False]}[params.split]:
            try:
                parts.append(tv(params.root, train=train, download=params.download).data)
            except RuntimeError as exc:
                raise GanzooError(
                    f"{tv.__name__} not found under {params.root}/{tv.__name__}/raw "
                    f"(put train-images-idx3-ubyte[.gz] and the other raw files there, or set data.download: true): {exc}"
                ) from None
        images = torch.cat(parts).unsqueeze(1)  # (N, 1, 28, 28) uint8
        if resolution != images.shape[-1]:
            from torchvision.transforms.v2 import functional as TF

            images = TF.resize(images, [resolution, resolution], antialias=True)
        return images.expand(-1, channels, -1, -1).contiguous()


@ganzoo.hookimpl
def register_datasets(register):
    register(MNIST)
