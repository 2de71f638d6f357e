"""Training commands: run, resume, check."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, Optional

import typer

from .. import models, recipe as recipes, rundir, shipped
from ..train import check_resume_changes, resume, resume_source, train as train_recipe
from ..errors import GanzooError
from .common import Overrides, Quiet, RecipeArg, app, err, force_option, friendly, path_arg, training_progress

ForceRunDir = force_option("replace a non-empty --run-dir")


@app.command()
@friendly
def run(
    recipe: RecipeArg,
    set_: Overrides = None,
    out_dir: Optional[Path] = typer.Option(None, "--run-dir", help="run directory (default: output.dir/NAME[-TIMESTAMP])", parser=path_arg),
    resume_dir: Optional[Path] = typer.Option(None, "--resume", help="continue this run directory from its last checkpoint", parser=path_arg),
    force: ForceRunDir = False,
    quiet: Quiet = False,
):
    """Train a recipe: checkpoint, samples and the resolved recipe land in the run directory."""
    r = recipes.load_recipe(shipped.resolve(recipe), set_ or [])
    if resume_dir is not None:
        if out_dir is not None or force:
            raise GanzooError("--resume continues RUN_DIR in place: --run-dir and --force do not apply")
        run_dir, ckpt = resume_source(resume_dir)
        check_resume_changes(recipes.load_recipe(ckpt.recipe), r, f"{recipe} against {run_dir}", also=("optim.",),
                             where=ckpt.path)
        train_recipe(r, run_dir, resume=ckpt, progress=training_progress(quiet))
        return
    made = out_dir is not None and not out_dir.exists()
    if out_dir is not None and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 owns the folder
        rundir.prepare_run_dir(out_dir, force)
    try:
        train_recipe(r, out_dir, progress=training_progress(quiet))
    except BaseException:
        if made:
            _remove_if_unused(out_dir)
        raise


def _remove_if_unused(path: Path) -> None:
    """Remove a run folder this command made when nothing was trained into it, and no other process is using it."""
    try:
        lock = rundir.RunLock(path).acquire()  # another process training there holds the lock: leave its folder alone
    except (GanzooError, OSError):
        return
    try:
        if not any(p.name != rundir.RunFiles.LOCK for p in path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)
    finally:
        lock.release()


@app.command("resume")
@friendly
def resume_(
    run_dir: Path = typer.Argument(..., help="run directory to continue", parser=path_arg),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="change the length, logging or outputs: "
                                             "--set train.steps=5000 lengthens a run, a finished one too"),
    quiet: Quiet = False,
):
    """Continue a run from its last checkpoint, exactly where it stopped (or lengthen it with --set)."""
    resume(run_dir, progress=training_progress(quiet), overrides=set_ or [])


@app.command()
@friendly
def check(
    recipe: str = typer.Argument(..., help="recipe YAML file, or the name of a shipped recipe"),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="override a key"),
):
    """Validate a recipe and print it as resolved (every default filled in)."""
    r = recipes.load_recipe(shipped.resolve(recipe), set_ or [])
    counts = models.preflight(r)  # what run would refuse before training, check refuses too
    typer.echo(r.to_yaml(), nl=False)  # plain text, never wrapped: `ganzoo check R > resolved.yaml` is valid YAML
    err.print(f"ok: generator {counts['generator']:,} and critic {counts['critic']:,} parameters", highlight=False)
