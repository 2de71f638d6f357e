"""Run folders: a new one per run, never reused; an existing one replaced only on request."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .errors import GanzooError


def new_run_dir(recipe) -> Path:
    """``output.dir/name``, or ``name-YYYYmmdd-HHMMSS`` if that exists: never reuse a run's folder."""
    base = Path(recipe.output.dir) / recipe.name
    path = base if not base.exists() else base.with_name(f"{base.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{base.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    return path


def prepare_run_dir(path, force: bool = False) -> Path:
    """An empty run folder at ``path``; an existing non-empty one only with ``force`` (it is cleared)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GanzooError(f"run folder {path} is a file")
    if path.exists() and any(path.iterdir()):
        if not force:
            raise GanzooError(f"run folder {path} exists and is not empty: resume it (ganzoo resume {path}), "
                              "pick another folder, or pass --force to replace it")
        if not ((path / "recipe.yaml").exists() or (path / "checkpoints").is_dir()):
            raise GanzooError(f"--force: {path} does not look like a ganzoo run folder (no recipe.yaml, no checkpoints/); "
                              "refusing to delete it")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
