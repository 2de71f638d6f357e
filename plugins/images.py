"""A folder (searched recursively) or a .zip of images: jpg, jpeg, png, bmp, webp; with labels from class
sub-folders or a labels file."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from pathlib import Path

from pydantic import Field

import ganzoo
from ganzoo import Dataset, GanzooError, Params
from ganzoo import imagefiles
from ganzoo.fileio import expand, file_sha256, shown


class ImagesParams(Params):
    path: str = Field(..., pattern=r"\S", description="folder or .zip of images (never empty: an empty path is not the current folder)")
    labels_file: str | None = Field(None, pattern=r"\S", description="CSV inside the folder or zip (e.g. tags.csv): a file column "
                                    "and one or more categorical label columns; images in sub-folders also get the label "
                                    "'folder' (the ImageFolder convention) when there are at least two")
    file_column: str = Field("file", pattern=r"\S", description="the labels file's column of image paths (relative to the folder or zip)")


class Images(Dataset):
    name = "images"
    description = "Images from a folder (recursive) or a .zip; resized (Lanczos) and center-cropped; labels from sub-folders or a CSV"
    Params = ImagesParams

    def fingerprint(self):  # labels 2: a lone top folder is no label (images cached before are decoded once more)
        path = _existing(self.params)
        out = {**imagefiles.fingerprint(path), "labels": 2}
        if self.params.labels_file and path.is_dir():  # a labels file may live outside the folder (../tags.csv): its own digest
            file = _labels_path(path, self.params)
            out["labels_file"] = file_sha256(file) if file.is_file() else None
        return out

    def load(self, resolution, channels, report):
        path = _existing(self.params)
        table = read_labels_file(path, self.params) if self.params.labels_file else None
        names: list[str] = []
        images = imagefiles.read_images(path, resolution, channels, report, names)
        columns = {}
        folders = [n.split("/", 1)[0] if "/" in n else None for n in names]
        if len({f for f in folders if f is not None}) > 1:  # one top folder (faces/...) is where the images are, not a label
            columns["folder"] = folders
        if table is not None:
            rows, header = table
            _rows_name_images(path, self.params, rows, names, _unreadable(report))
            for a, column in enumerate(header):
                columns[column] = [rows[n][a] if n in rows else None for n in names]
        return images, columns

    def check(self):
        path = _existing(self.params)
        if path.is_file() and not zipfile.is_zipfile(path):
            raise GanzooError(f"data.path {path} is neither a folder nor a readable zip")
        if self.params.labels_file:
            rows, _ = read_labels_file(path, self.params)
            names = [n.replace("\\", "/") for n, _ in imagefiles.members(path, Counter())]  # listed, not decoded
            _rows_name_images(path, self.params, rows, names, [])


def _existing(params) -> Path:
    path = expand(params.path)
    if not path.exists():
        raise GanzooError(f"data.path {shown(path)} does not exist (give a folder or .zip of images, e.g. --set data.path=...)")
    return path


def _rows_name_images(path: Path, params, rows: dict, names: list, unreadable: list) -> None:
    missing = sorted(set(rows) - set(names) - set(unreadable))
    if missing:
        raise GanzooError(f"{_where(path, params)}: {len(missing)} row(s) name files that are not images in {path} "
                          f"(e.g. {', '.join(missing[:3])}); paths are relative to the folder or zip, as in "
                          f"{names[0] if names else 'faces/1.jpg'}")


def _where(path: Path, params) -> str:
    return f"data.labels_file {params.labels_file} (in {path})"


def _unreadable(report) -> list[str]:
    return [entry.split(" (", 1)[0] for entry in report.bad_files]


def _labels_path(path: Path, params) -> Path:
    return path / params.labels_file.replace("\\", "/").removeprefix("./")


def read_labels_file(path: Path, params) -> tuple[dict[str, list[str | None]], list[str]]:
    """The labels file as ``({image path: [value per label column]}, label column names)``; every way it can be
    wrong is one error naming the file and the line."""
    where, name = _where(path, params), params.labels_file.replace("\\", "/").removeprefix("./")
    try:
        if path.is_dir():
            file = _labels_path(path, params)
            if not file.is_file():
                raise GanzooError(f"{where}: no such file")
            raw = file.read_bytes()
        else:
            with zipfile.ZipFile(path) as zf:
                if name not in zf.namelist():
                    top = sorted({n.split('/')[0] for n in zf.namelist()})[:8]
                    raise GanzooError(f"{where}: not in the zip (its top level: {', '.join(top)})")
                raw = zf.read(name)
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GanzooError(f"{where}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise GanzooError(f"{where}: unreadable ({exc})") from None
    try:
        lines = list(csv.reader(io.StringIO(text), delimiter=_delimiter(text)))
    except csv.Error as exc:
        raise GanzooError(f"{where}: not a readable CSV ({exc})") from None
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise GanzooError(f"{where}: empty (expected a header such as {params.file_column},hair,eyes and one row per image)")
    header = [h.strip() for h in lines[0]]
    if params.file_column not in header:
        raise GanzooError(f"{where}: no column '{params.file_column}' (its header: {', '.join(header)}); set data.file_column")
    if len(set(header)) != len(header) or "" in header:
        raise GanzooError(f"{where}: the header has an empty or repeated column name ({', '.join(header)})")
    fi = header.index(params.file_column)
    label_columns = [h for i, h in enumerate(header) if i != fi]
    if not label_columns:
        raise GanzooError(f"{where}: no label column beside '{params.file_column}'")
    rows: dict[str, list[str | None]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise GanzooError(f"{where}, line {number}: {len(line)} field(s), the header has {len(header)}")
        file = line[fi].strip().replace("\\", "/").removeprefix("./")
        if not file:
            raise GanzooError(f"{where}, line {number}: no file name")
        values = [cell.strip() or None for i, cell in enumerate(line) if i != fi]
        if file in rows and rows[file] != values:
            raise GanzooError(f"{where}, line {number}: {file} is listed again with other labels")
        rows[file] = values
    if not rows:
        raise GanzooError(f"{where}: a header but no rows")
    for a, column in enumerate(label_columns):
        if all(v[a] is None for v in rows.values()):
            raise GanzooError(f"{where}: column '{column}' is empty")
    return rows, label_columns


def _delimiter(text: str) -> str:
    """The labels file's separator, read from its header: a comma, or the semicolon, tab or bar that spreadsheets in
    many locales write, whichever splits the header into the most columns (a comma on a tie)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: len(next(csv.reader([header], delimiter=d), [])) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: (counts[d], d == ","))


@ganzoo.hookimpl
def register_datasets(register):
    register(Images)
