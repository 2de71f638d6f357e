"""Run folders: a new one per run, never reused; an existing one replaced only on request."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path

from .errors import GanzooError
from .fileio import expand


# what a run writes at the top of its folder: --force deletes a folder that holds nothing else
RUN_FILES = {"recipe.yaml", "checkpoints", "grids", "samples", "metrics.jsonl", "metrics.json", "evals", "tb", "curves.png",
             "report.html", "run.json", "fixed_z.safetensors", ".lock", "nearest.json", "nearest.png", "export", "projections"}


def new_run_dir(recipe) -> Path:
    """``output.dir/name``, or ``name-YYYYmmdd-HHMMSS`` if that exists: never reuse a run's folder."""
    base = expand(recipe.output.dir) / recipe.name
    path = base if not base.exists() else base.with_name(f"{base.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{base.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    return path


def is_run_folder(path) -> bool:
    """Whether ``path`` holds a ganzoo run (its recipe.yaml and its checkpoints or fixed latents)."""
    path = Path(path)
    return (path / "recipe.yaml").is_file() and ((path / "checkpoints").is_dir() or (path / "fixed_z.safetensors").is_file())


def prepare_run_dir(path, force: bool = False) -> Path:
    """An empty run folder at ``path``; an existing non-empty one only with ``force`` (it is cleared). Never inside
    another run's folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GanzooError(f"run folder {path} is a file")
    outer = next((p for p in path.resolve().parents if is_run_folder(p)), None)
    if outer is not None:
        raise GanzooError(f"--run-dir {path} is inside the run folder {outer}: a run gets a folder of its own (e.g. beside it)")
    if path.exists() and any(path.iterdir()):
        if not force:
            if (path / "recipe.yaml").is_file() and not (path / "checkpoints" / "last.safetensors").is_file():
                raise GanzooError(f"run folder {path} holds a run that stopped before its first checkpoint (nothing to "
                                  "resume): pass --force to start it again there, or pick another folder")
            raise GanzooError(f"run folder {path} exists and is not empty: resume it (ganzoo resume {path}), "
                              "pick another folder, or pass --force to replace it")
        RunLock(path).check()  # never delete a folder another process is training in
        here = Path.cwd().resolve()
        if path.resolve() == here or path.resolve() in here.parents or path.is_symlink():
            raise GanzooError(f"--force: {path} is the current folder, one above it, or a link; refusing to delete it")
        if not ((path / "fixed_z.safetensors").exists() or (path / "checkpoints").is_dir() or (path / ".lock").exists()):
            raise GanzooError(f"--force: {path} does not look like a ganzoo run folder (no checkpoints/, no fixed_z.safetensors); "
                              "refusing to delete it")
        other = sorted(p.name for p in path.iterdir() if p.name not in RUN_FILES)
        if other:
            raise GanzooError(f"--force: {path} also holds {', '.join(other[:5])}{' ...' if len(other) > 5 else ''}, which a "
                              "run does not write; refusing to delete it (move them, or pick another --run-dir)")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunLock:
    """An OS file lock on ``RUN/.lock`` while a process trains in RUN: a second writer (run, resume, --force) gets
    one clear line. The operating system releases it when the process ends, however it ends (kill -9 included)."""

    def __init__(self, run_dir):
        self.path, self.fd = Path(run_dir) / ".lock", None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise GanzooError(f"run folder {self.path.parent} is in use by another ganzoo process{self._holder()}: "
                              "wait for it to end, or use another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def check(self) -> None:
        """Raise if another process holds the lock; hold nothing."""
        if self.path.exists():
            self.acquire().release()

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
