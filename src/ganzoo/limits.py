"""Sizes that would not fit: refused up front with an estimate, instead of a MemoryError or the kernel's OOM killer."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import GanzooError

SHARE = 0.8  # of the machine's memory, at most, for one allocation ganzoo can predict


def machine_memory() -> int:
    """Bytes of physical memory (Linux and macOS); a large number where unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 50


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:,.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:,.0f} MB"


def require_memory(nbytes: float, what: str, advice: str) -> None:
    """Refuse, with the estimate, what would need more than ``SHARE`` of this machine's memory."""
    have = machine_memory()
    if nbytes > SHARE * have:
        raise GanzooError(f"{what} needs about {gb(nbytes)} of memory, this machine has {gb(have)}: {advice}")


def image_bytes(n: int, channels: int, resolution: int) -> int:
    return n * channels * resolution * resolution


def require_disk(nbytes: float, folder: Path, what: str, advice: str) -> None:
    """Refuse what would not fit on the disk that holds ``folder`` (its nearest existing parent)."""
    import shutil

    folder = Path(folder).resolve()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise GanzooError(f"{what} needs about {gb(nbytes)} on disk, {folder} has {gb(free)} free: {advice}")
