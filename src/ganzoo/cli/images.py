"""Commands that draw on a trained generator: sample, grid, interpolate, export, project. Each takes a run folder, a
checkpoint or an exported model folder (``ganzoo.trained``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import torch
import typer
from rich.progress import TextColumn
from rich.text import Text

from .. import distributed, export as exporting, projection, sampling
from ..errors import GanzooError
from ..rundir import guard_output
from ..trained import open_trained
from .common import (Device, Ema, Seed, Source, Truncation, app, err, force_option, friendly, label_choice,
                     labels_option, path_arg, progress_display, report_distinct)

ForceSamples = force_option("replace samples already in the output folder (all of them)")
SampleLabels = labels_option("conditional runs: ATTRIBUTE=VALUE (repeat for each attribute; those not given follow the training "
                         "data's frequencies), or 'random'")
FixedLabels = labels_option("fix another attribute: ATTRIBUTE=VALUE (else drawn per column)")
ForceFile = force_option("replace the output file if it exists")
WalkLabels = labels_option("conditional runs: the label kept along the walk, ATTRIBUTE=VALUE (those not given drawn from the "
                         "training frequencies), or 'random'")
ForceExport = force_option("replace the output if it exists")
ForceProjections = force_option("replace projections of the same names")
ProjectLabels = labels_option("conditional runs: the labels to project with, ATTRIBUTE=VALUE (default: the best of a few draws)")


def _generator(source, device: str, ema: bool):
    """The generator of ``source`` on the device ``--device`` names, and that device."""
    dev = distributed.pick_device(device, what="--device")
    return open_trained(source).generator(ema, dev), dev


@app.command()
@friendly
def sample(
    checkpoint: Source,
    n: int = typer.Option(1000, "-n", min=1, help="number of images"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for the PNGs and grid.png", parser=path_arg),
    seed: Seed = 0,
    truncation: Truncation = None,
    grid: bool = typer.Option(True, "--grid/--no-grid", help="also write grid.png"),
    threshold: float = typer.Option(0.02, min=0.0, help="RMS pixel distance (0-1) under which two images count as near-identical"),
    batch_size: int = typer.Option(250, min=1),
    device: Device = "auto",
    ema: Ema = True,
    force: ForceSamples = False,
    label: SampleLabels = [],
    save_latents: bool = typer.Option(False, "--save-latents", help="also write latents.npy (each image's z, float32) and, "
                                      "for a conditional generator, labels.npy: what an exported ONNX or TorchScript "
                                      "generator needs to draw the same images"),
):
    """Write N distinct generated images (one PNG each) and a grid from a checkpoint."""
    t0 = time.perf_counter()
    G, dev = _generator(checkpoint, device, ema)
    if n > sampling.CHUNK:
        err.print(f"{n:,} images: written {sampling.CHUNK:,} at a time, each chunk checked distinct within itself", highlight=False)
    report = sampling.sample_to_folder(G, n, output, seed=seed, threshold=threshold, truncation=truncation, batch_size=batch_size,
                                       device=dev, grid=grid, force=force, labels=label_choice(label), save_latents=save_latents)
    report_distinct(report)
    err.print(f"wrote {n} images{' and grid.png' if grid else ''} to {output} in {time.perf_counter() - t0:.1f}s")


@app.command()
@friendly
def grid(
    checkpoint: Path = typer.Argument(..., help="run directory, checkpoint .safetensors file or exported model folder of a "
                                      "conditional run", parser=path_arg),
    output: Path = typer.Option(..., "-o", "--output", help="the grid image (.png)", parser=path_arg),
    by: Optional[str] = typer.Option(None, "--by", help="the label attribute with one row per class (default: the first)"),
    columns: int = typer.Option(8, "--columns", min=1, max=64, help="images per row (the same latent vectors in every row)"),
    label: FixedLabels = [],
    seed: Seed = 0,
    truncation: Truncation = None,
    device: Device = "auto",
    ema: Ema = True,
    force: ForceFile = False,
):
    """A per-class grid of a conditional run: one row per class of an attribute, the same noise in every row."""
    guard_output(sampling.image_path(output), force)
    G, dev = _generator(checkpoint, device, ema)
    images, classes = sampling.class_grid(G, by, columns, seed, label or None, dev, truncation)
    sampling.write_grid(images, output, nrow=columns, row_labels=classes)
    err.print(f"wrote {len(classes)} rows ({', '.join(classes)}) of {columns} images to {output}", highlight=False)


@app.command()
@friendly
def interpolate(
    checkpoint: Source,
    output: Path = typer.Option(Path("interpolation.png"), "-o", "--output", help=".png for a grid (a row per segment) or .gif",
                                parser=path_arg),
    points: int = typer.Option(5, min=2, help="random latent points to walk through"),
    steps: int = typer.Option(10, min=2, help="images per segment"),
    seed: Seed = 0,
    truncation: Truncation = None,
    device: Device = "auto",
    ema: Ema = True,
    force: ForceFile = False,
    label: WalkLabels = [],
    between: list[Path] = typer.Option([], "--between", help="walk through projected images instead of random points: "
                                       "the .latent.safetensors files of ganzoo project, in order (repeat, at least two)",
                                       parser=path_arg),
    frame_ms: int = typer.Option(80, "--frame-ms", min=10, max=10000, help=".gif: milliseconds each frame is shown"),
    size: Optional[int] = typer.Option(None, "--size", min=8, max=2048, help=".gif: frames enlarged to this many pixels "
                                       "(nearest neighbour; default: the generator's resolution)"),
):
    """A latent walk (spherical interpolation) between random points, or between projected images, as a grid or a GIF."""
    if output.suffix.lower() not in (".png", ".gif"):
        raise GanzooError(f"-o {output}: a walk is written as .png (a grid, a row per segment) or .gif (an animation)")
    if output.is_dir():
        raise GanzooError(f"-o {output} is a folder; give a file name such as {output / ('walk' + output.suffix.lower())}")
    guard_output(output, force, inputs=between or ())
    G, dev = _generator(checkpoint, device, ema)
    if between:
        if label or truncation is not None:
            raise GanzooError("--between walks between projected latents as they are: no --label or --truncation with it")
        model = projection.model_identity(open_trained(checkpoint))
        frames, points = projection.walk_between(G, between, steps, seed, model=model), len(between)
    else:
        frames = sampling.interpolate(G, points, steps, seed, truncation, device=dev, labels=label_choice(label))
    if output.suffix.lower() == ".gif":  # each segment starts where the last ended: drop the repeated frame
        sampling.write_gif(torch.cat([frames[0], *(f[1:] for f in frames[1:])]), output, frame_ms, size)
    else:
        sampling.write_grid(frames.flatten(0, 1), output, nrow=steps)
    err.print(f"wrote a walk through {points} points ({steps} images each) to {output}")


@app.command()
@friendly
def export(
    checkpoint: Source,
    format: str = typer.Option(..., "--format", "-f", help="onnx (ONNX Runtime and others), torchscript (torch.jit.load), pt2 "
                               "(torch.export.load), or folder (a model folder with a model card, for sharing or the Hugging Face Hub)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="file or folder to write (default: RUN/export/generator.onnx, "
                                          "generator.pt, generator.pt2 or model/)", parser=path_arg),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="export the generator's weight average when the checkpoint has one"),
    force: ForceExport = False,
    half: bool = typer.Option(False, "--half", help="folder: store the weights in fp16 (half the size; loaded back as fp32)"),
    name: Optional[str] = typer.Option(None, "--name", help="folder: the model's name in its config and card (default: the "
                                       "folder's name)"),
):
    """Export the generator: ONNX or TorchScript (checked against the torch generator), or a model folder."""
    t0 = time.perf_counter()
    done = exporting.export(checkpoint, format, output, ema=ema, force=force, half=half, name=name)
    if done.format == "folder":
        err.print(f"wrote the model folder {done.path} (model.safetensors, config.json, recipe.yaml, README.md model card, "
                  f"samples.png); sample from it with: ganzoo sample {done.path} -n 64 -o samples/", highlight=False, soft_wrap=True)
        return
    noise = "; noise inputs exported at zero (deterministic)" if done.noise_zeroed else ""
    err.print(f"wrote {done.path} ({done.format}, dynamic batch) in {time.perf_counter() - t0:.1f}s; checked on {done.check_batch} "
              f"fixed latents: max difference {done.max_difference:.2g} from the torch generator (limit {exporting.TOLERANCE:g}){noise}",
              highlight=False, soft_wrap=True)


@app.command()
@friendly
def project(
    checkpoint: Source,
    images: List[Path] = typer.Argument(..., help="image files to project (centre-cropped and resized to the generator's size)",
                                        parser=path_arg),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="folder for the latents and images (default RUN/projections)",
                                          parser=path_arg),
    steps: int = typer.Option(300, min=0, max=100000, help="gradient steps per image"),
    features: str = typer.Option("auto", help="distance beside pixels: critic (the run's critic features), inception (slower), "
                                 "pixels (none), or auto (critic where the run has one)"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="seed of the starting draws and of any noise inputs"),
    device: Device = "auto",
    ema: Ema = True,
    force: ForceProjections = False,
    label: ProjectLabels = [],
):
    """Find the latent whose image best reproduces each image: writes NAME.latent.safetensors, the reconstruction
    NAME.png and NAME.side.png (the image above its reconstruction, labelled); walk between them with interpolate --between."""
    if features not in projection.FEATURES + ("auto",):
        raise GanzooError(f"--features {features}: choose one of auto, {', '.join(projection.FEATURES)}")
    dev = distributed.pick_device(device, what="--device")
    with progress_display(TextColumn("RMS {task.fields[d]}")) as bar:
        tasks = {}

        def progress(name, step, total, distance):
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, d="-")
            bar.update(tasks[name], completed=step, d=f"{distance:.4f}")
            if not err.is_terminal and (step == total or step % max(1, total // 5) == 0):  # a log file sees it move
                err.print(f"{name}: step {step}/{total}, RMS distance {distance:.4f}", highlight=False)

        results = projection.project_files(checkpoint, images, output, steps=steps, features=features,
                                           labels=label_choice(label) or None, seed=seed, device=dev, ema=ema, force=force,
                                           progress=progress)
    scale = projection.training_scale(open_trained(checkpoint))
    for side, p in results:
        err.print(Text(f"{side.name.removesuffix('.side.png')}: RMS distance {p.start_distance:.4f} -> {p.distance:.4f} "
                       f"(pixels on [0, 1]; {p.space} space, {p.features} features, {p.steps} steps); {side}"), highlight=False)
    if scale:
        err.print(Text(f"for scale, among {scale['n']} training images: two of them are a median {scale['median_pair']:.4f} apart, "
                       f"one from its nearest other {scale['median_nearest']:.4f}; a reconstruction much farther than the "
                       "nearest is not that image"), highlight=False)
