"""A folder (searched recursively) or a .zip of images: jpg, jpeg, png, bmp, webp."""

from __future__ import annotations

import zipfile
from pathlib import Path

from pydantic import Field

import ganzoo
from ganzoo import Dataset, GanzooError, Params
from ganzoo import imagefiles


class ImagesParams(Params):
    path: str = Field(..., pattern=r"\S", description="folder or .zip of images (never empty: an empty path is not the current folder)")


class Images(Dataset):
    name = "images"
    description = "Images from a folder (recursive) or a .zip; resized (Lanczos) and center-cropped"
    Params = ImagesParams

    def fingerprint(self):
        return imagefiles.fingerprint(_existing(self.params))

    def load(self, resolution, channels, report):
        return imagefiles.read_images(_existing(self.params), resolution, channels, report)

    def check(self):
        path = _existing(self.params)
        if path.is_file() and not zipfile.is_zipfile(path):
            raise GanzooError(f"data.path {path} is neither a folder nor a readable zip")


def _existing(params) -> Path:
    path = Path(params.path).expanduser()
    if not path.exists():
        raise GanzooError(f"data.path {path} does not exist (give a folder or .zip of images, e.g. --set data.path=...)")
    return path


@ganzoo.hookimpl
def register_datasets(register):
    register(Images)
