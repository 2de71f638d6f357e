"""One exception type for every problem a user can fix.

The CLI prints a ``GanzooError`` as a single line (no traceback) and exits
with status 2; in a notebook it is an ordinary exception with a readable
message.
"""

import os
import sys


class GanzooError(Exception):
    """A problem with the user's input: recipe, data, checkpoint or plugin."""


class Interrupted(GanzooError):
    """A command stopped by Ctrl-C or SIGTERM, saying what it kept (a checkpoint, the files written so far)."""

    exit_code = 130
    label = "stopped"  # what the command line prints before the message: a clean stop, not an error


def require_current_folder() -> None:
    """A shell whose current folder was deleted (or moved) gives every program a current folder that does not exist;
    torch then dies loading its libraries with a message about MKL. Say what is wrong first: one line and exit 2 on
    the command line, a ``GanzooError`` in Python."""
    try:
        os.getcwd()
    except (FileNotFoundError, PermissionError) as exc:
        message = (f"the current folder no longer exists or cannot be read ({exc.strerror}; deleted or moved while this "
                   "shell was in it): cd into an existing folder and run it again")
        if command_line():
            sys.stderr.write(f"error: {message}\n")
            raise SystemExit(2) from None
        raise GanzooError(message) from None


def command_line() -> bool:
    """Whether this process is the ``ganzoo`` command (or ``python -m ganzoo``), not a program importing ganzoo."""
    if os.path.basename(sys.argv[0] if sys.argv else "") in ("ganzoo", "ganzoo.exe"):
        return True
    original = list(getattr(sys, "orig_argv", []))  # python -m ganzoo: argv[0] is only "-m" while the package loads
    return any(a == "-m" and b == "ganzoo" for a, b in zip(original, original[1:]))


def quiet_interrupts_while_starting() -> None:
    """For the command: a Ctrl-C while Python loads torch and the plugins (the first seconds, before any command has
    done anything) ends it with one line and status 130, not a traceback through the importers. ``cli.main`` gives
    Ctrl-C back to Python once the command starts."""
    import signal

    def handler(signum, frame):
        sys.stderr.write("aborted (Ctrl-C) while starting: nothing was done\n")
        sys.stderr.flush()
        os._exit(130)

    if command_line():
        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread
            pass
