"""Scores and what they are about: eval, report, compare, nearest."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import torch
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from .. import distributed, evaluation, features, nearest as copy_check, report as reporting, sampling
from ..errors import GanzooError
from ..metrics import Scores
from ..rundir import guard_output
from .common import (Device, Ema, Source, app, err, force_option, friendly, key_values, out, path_arg, progress_display,
                     task_progress)

ForceGrid = force_option("replace the grid image if it exists")
ForceNearestGrid = force_option("replace the -o grid image if it exists")


@app.command("eval")
@friendly
def eval_(
    target: Path = typer.Argument(..., help="run directory, checkpoint .safetensors file, exported model folder, or a folder/zip "
                                  "of generated images", parser=path_arg),
    ref: Optional[Path] = typer.Option(None, "--ref", help="real images (folder/zip); default: the data of the model's recipe",
                                       parser=path_arg),
    n: int = typer.Option(10000, "-n", min=2, help="generated images to score"),
    n_real: int = typer.Option(5000, "--n-real", min=2, help="real images: a seeded subset (features cached after the first time)"),
    all_real: bool = typer.Option(False, "--all-real", help="every real image instead of --n-real of them"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="seed of latents and subsets"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="another TorchScript feature network (299x299 in [-1,1] -> features)", parser=path_arg),
    prc: bool = typer.Option(True, "--prc/--no-prc", help="also precision/recall"),
    resolution: Optional[int] = typer.Option(None, min=8, max=1024, help="resolution for a folder of images (default: the first image's)"),
    ema: Ema = True,
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: torch's choice)"),
    per_class: Optional[str] = typer.Option(None, "--per-class", help="conditional runs: also FID/KID per class of this label attribute"),
    n_per_class: int = typer.Option(100, "--n-per-class", min=2, help="generated images per class for --per-class"),
    backend: str = typer.Option("auto", "--backend",
                                help="what runs the Inception network (auto, torch, onnxruntime): auto = ONNX Runtime on a CPU where installed "
                                     "(checked against the TorchScript file), else torch"),
):
    """FID, KID (mean ± std) and precision/recall with the standard Inception network, offline, protocol recorded.

    On 2 CPU cores the Inception network scores about 22 images/s in ONNX Runtime (installed with ganzoo; 14 with
    --backend torch): N = 10,000 takes about 8 minutes, -n 1000 about 1, plus the real images (--n-real) the first
    time, then cached.
    """
    if threads:
        torch.set_num_threads(threads)
    features.pick_backend(backend)  # an unknown or unavailable backend is an error before any work
    t0 = time.perf_counter()
    with progress_display() as bar:
        result = evaluation.evaluate(target, ref=ref, n=n, n_real=None if all_real else n_real, seed=seed,
                                     weights=str(weights) if weights else None, prc=prc, resolution=resolution, ema=ema,
                                     progress=task_progress(bar), per_class=per_class, n_per_class=n_per_class, backend=backend)
    scores = Scores.of(result)
    out.print(key_values(f"evaluation of {target}", scores.rows().items()))
    out.print(json.dumps(scores.flat()), soft_wrap=True, highlight=False, markup=False)  # one line, always
    err.print(f"evaluated in {time.perf_counter() - t0:.0f}s")


@app.command()
@friendly
def report(run_dir: Path = typer.Argument(..., help="run directory", parser=path_arg)):
    """(Re)write a run's self-contained report.html."""
    out.print(f"wrote {reporting.write_report(reporting.require_run_dir(run_dir))}")


@app.command()
@friendly
def compare(
    run_dirs: List[Path] = typer.Argument(..., help="run directories", parser=path_arg),
    output: Path = typer.Option(Path("compare.png"), "-o", "--output", help="side-by-side grid image", parser=path_arg),
    force: ForceGrid = False,
):
    """One short table (objective, steps, time, img/s, latest FID/KID with N), what each run is, a side-by-side grid."""
    guard_output(sampling.image_path(output), force, hint="pick another name (-o)")  # before any work
    rows = [reporting.run_summary(r) for r in run_dirs]
    table = Table(title="ganzoo runs", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for col in reporting.COMPARE_COLUMNS:
        table.add_column(col, justify="right" if col in ("steps", "time", "img/s") else "left", overflow="fold")
    for row, run_dir in zip(rows, run_dirs):
        try:
            table.add_row(*[Text(cell) for cell in reporting.compare_cells(row)])
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise GanzooError(f"{run_dir}: its run.json or metrics hold a value of an unexpected type ({exc})") from None
    out.print(table)
    out.print("@N: scored on N generated images (lower is better; compare scores at the same N)", style="dim", highlight=False)
    for row in rows:
        out.print(Text(reporting.compare_details(row)), highlight=False)
    out.print(Text(f"side-by-side grid: {reporting.write_comparison(run_dirs, output)}"), highlight=False)


@app.command()
@friendly
def nearest(
    run_dir: Source,
    n: int = typer.Option(256, "-n", min=1, help="generated images (and as many training images for the data's own distances)"),
    data: Optional[Path] = typer.Option(None, "--data", help="the training images (folder/zip), where the recipe's data.path "
                                        "no longer is", parser=path_arg),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="the grid image (default: RUN/nearest.png; needed for a model folder or a checkpoint outside its run, and its numbers go beside it as .json)", parser=path_arg),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="seed of the latents and of the training subset"),
    device: Device = "auto",
    ema: Ema = True,
    force: ForceNearestGrid = False,
):
    """Does the generator copy its training set? Generated images vs their nearest training images (RMS pixel distance)."""
    if output is not None:
        guard_output(sampling.image_path(output), force, hint="pick another name (-o)")
    t0 = time.perf_counter()
    dev = distributed.pick_device(device, what="--device")
    with progress_display(eta=False) as bar:
        result = copy_check.nearest(run_dir, n=n, data=data, seed=seed, device=dev, progress=task_progress(bar), grid=output, ema=ema)
    out.print(Text(result.verdict, style="bold yellow" if result.copies else "green"), soft_wrap=True)
    err.print(Text(f"wrote {', '.join(result.paths.values())} in {time.perf_counter() - t0:.1f}s"), soft_wrap=True)
