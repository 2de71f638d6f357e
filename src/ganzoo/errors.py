"""One exception type for every problem a user can fix.

The CLI prints a ``GanzooError`` as a single line (no traceback) and exits
with status 2; in a notebook it is an ordinary exception with a readable
message.
"""


class GanzooError(Exception):
    """A problem with the user's input: recipe, data, checkpoint or plugin."""
