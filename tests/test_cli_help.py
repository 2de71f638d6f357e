"""Every command's --help, compared with the text kept in tests/data/cli_help.txt.

The help is what a user reads first: a change to it (an option renamed, a default changed, a help line lost while
the CLI is reorganised) shows here as a diff. A change made on purpose is kept by regenerating the file:
``python tests/test_cli_help.py``."""

from __future__ import annotations

import difflib
from pathlib import Path

import typer
import typer.rich_utils
from typer.testing import CliRunner

KEPT = Path(__file__).parent / "data" / "cli_help.txt"
WIDTH = 100


def command_paths(group, path=()):
    yield list(path)
    for name, sub in getattr(group, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def all_help() -> str:
    from ganzoo.cli import app

    typer.rich_utils.MAX_WIDTH, typer.rich_utils.FORCE_TERMINAL = WIDTH, False  # one width, no colour codes
    runner, blocks = CliRunner(), []
    for path in command_paths(typer.main.get_command(app)):
        result = runner.invoke(app, [*path, "--help"])
        blocks.append(f"===== ganzoo {' '.join(path)} --help (exit {result.exit_code})\n{result.output}")
    return "\n".join(blocks)


def test_every_commands_help_is_the_kept_text(monkeypatch):
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", WIDTH)
    monkeypatch.setattr(typer.rich_utils, "FORCE_TERMINAL", False)
    now = all_help()
    kept = KEPT.read_text()
    diff = "".join(difflib.unified_diff(kept.splitlines(True), now.splitlines(True), "kept", "now", n=1))
    assert now == kept, f"the help text changed (python tests/test_cli_help.py keeps the new text if intended):\n{diff[:6000]}"
    assert now.count("===== ganzoo") >= 19 and "(exit 0)" in now and "(exit 2)" not in now


if __name__ == "__main__":
    KEPT.write_text(all_help())
    print(f"wrote {KEPT}")
