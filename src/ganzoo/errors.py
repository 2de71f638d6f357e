"""One exception type for every problem a user can fix.

The CLI prints a ``GanzooError`` as a single line (no traceback) and exits
with status 2; in a notebook it is an ordinary exception with a readable
message.
"""


class GanzooError(Exception):
    """A problem with the user's input: recipe, data, checkpoint or plugin."""


class Interrupted(GanzooError):
    """A command stopped by Ctrl-C or SIGTERM, saying what it kept (a checkpoint, the files written so far)."""

    exit_code = 130
    label = "stopped"  # what the command line prints before the message: a clean stop, not an error
