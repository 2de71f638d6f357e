"""The core's one plain output channel: the ``ganzoo`` logger, plain text, to stderr.

The core never formats for a terminal. Until someone configures logging, messages go to whatever
``sys.stderr`` is when they are emitted (a notebook cell, a redirected file, rich's live display), warnings
prefixed ``warning:``. The CLI swaps this handler for one that renders with rich; a program embedding
ganzoo may remove it (``logging.getLogger("ganzoo").handlers.clear()``) and use its own.
"""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("ganzoo")


class PlainHandler(logging.Handler):
    """``message`` for info, ``warning: message`` for warnings, ``error: message`` above; to the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            prefix = "" if record.levelno < logging.WARNING else ("warning: " if record.levelno < logging.ERROR else "error: ")
            sys.stderr.write(prefix + record.getMessage() + "\n")
            sys.stderr.flush()
        except Exception:  # a closed stream must not stop training
            self.handleError(record)


if not logger.handlers:
    logger.addHandler(PlainHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
