"""Atomic file writes: a temporary file in the same folder, fsync, rename.

A crash or ``kill -9`` at any moment leaves either the old file or the new
one, never a half-written file; temporaries left by a killed writer are
removed by the next write of the same file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import GanzooError


def atomic_write(path, data: bytes, what: str = "file") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise GanzooError(f"could not write {what} {path}: {exc.strerror or exc}") from None
        raise
    return path
