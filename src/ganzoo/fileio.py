"""Atomic file writes and content digests.

Writes go to a temporary file in the same folder, fsync, rename: a crash or
``kill -9`` at any moment leaves either the old file or the new one, never a
half-written file; temporaries left by a killed writer are removed by the
next write of the same file. The file gets the mode ``open()`` would give it
(0666 less the umask: 0644 under the usual 022), not the temporary's 0600, so
a run folder can be shared.
"""

from __future__ import annotations

import hashlib
import os
import re
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
        os.fchmod(fd, 0o666 & ~umask())
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


def expand(path) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded; a home folder that cannot be found is one clear error."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # ~nosuchuser, or no HOME
        raise GanzooError(f"{path}: cannot expand '{str(path).split('/')[0]}' (no such user, or no home folder): "
                          "give the path in full") from None


def last_part(text) -> str:
    """A path-like string by its file or folder name (pages meant for sharing show no local folders); other text as is."""
    text = str(text)
    if "/" in text or "\\" in text:
        return re.split(r"[/\\]", text.rstrip("/\\"))[-1] or text
    return text


def shown(path) -> str:
    """A path as one printable line: as it is when plain, quoted with escapes when it holds a newline, a tab or other
    control character, and bytes that are not UTF-8 as ``\\xNN``."""
    text = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
    return repr(text) if any(not c.isprintable() for c in text) else text


def umask() -> int:
    """The process's umask, read without changing it where the system says (Linux), else set and restored."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_sha256(path) -> str:
    """The plain sha256 of one file (what ``sha256sum`` prints)."""
    h = hashlib.sha256()
    _feed(h, path)
    return h.hexdigest()


def files_sha256(files, root) -> str:
    """One sha256 over the names (relative to ``root``) and bytes of ``files``, in the order given.

    What caches are keyed by: the same bytes give the same digest wherever and whenever they were copied
    (a re-mounted share or a fresh machine keeps its caches), and any changed byte gives another. Hashing
    runs at several hundred MB/s, far faster than decoding the images it stands for.
    """
    h = hashlib.sha256()
    for f in files:
        name = Path(f).relative_to(root).as_posix().encode()
        h.update(len(name).to_bytes(8, "little") + name)
        _feed(h, f)
        h.update(b"\0")
    return h.hexdigest()


def _feed(h, path) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
