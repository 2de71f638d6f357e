"""The ``ganzoo`` command: a thin typer layer over the Python API."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from rich.table import Table

from .errors import GanzooError
from .fileio import expand

MIN_COLUMNS = 40


def _sane_columns() -> None:
    """A COLUMNS that no output fits (0, 5, text) would make rich print nothing or a column of ellipses: read it as
    80 when it is not a width at all, as 40 when it is narrower than that (lines wrap, nothing is lost)."""
    raw = os.environ.get("COLUMNS")
    if raw is None:
        return
    width = int(raw) if raw.strip().isdecimal() else 0
    if width < MIN_COLUMNS:
        os.environ["COLUMNS"] = str(MIN_COLUMNS if width > 0 else 80)


_sane_columns()  # before the consoles below read it
app = typer.Typer(help="ganzoo: a plugin-based GAN zoo. One YAML recipe per experiment.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=True)
out = Console()
err = Console(stderr=True)


class RichLogHandler(logging.Handler):
    """The core's plain log lines, rendered for a terminal: warnings in yellow, errors in red, no markup read."""

    STYLES = {logging.WARNING: ("warning: ", "yellow"), logging.ERROR: ("error: ", "bold red")}

    def emit(self, record: logging.LogRecord) -> None:
        from rich.text import Text

        level = max((lv for lv in self.STYLES if record.levelno >= lv), default=None)
        prefix, style = self.STYLES.get(level, ("", ""))
        text = Text(prefix, style=style) + Text(record.getMessage()) if prefix else Text(record.getMessage())
        err.print(text, highlight=False, soft_wrap=True)


def _use_rich_logging() -> None:
    from .log import PlainHandler

    logger = logging.getLogger("ganzoo")
    logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, (PlainHandler, RichLogHandler))] + [RichLogHandler()]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def friendly(fn):
    """Print a GanzooError as one red line and exit 2: no traceback for problems the user can fix."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _sane_columns()
        _use_rich_logging()
        try:
            return fn(*args, **kwargs)
        except GanzooError as exc:
            if DEBUG["on"] and exc.__cause__ is not None:  # a plugin's exception: its traceback, for its author
                import traceback

                err.print("".join(traceback.format_exception(exc.__cause__)), highlight=False, markup=False, soft_wrap=True)
            label = getattr(exc, "label", "error")  # "stopped" for a clean interruption (its checkpoint written)
            style = "bold red" if label == "error" else "bold yellow"
            err.print(f"[{style}]{label}:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None
        except OSError as exc:  # an unwritable output folder, a full disk: still one line
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            err.print(f"[bold red]error:[/] {escape(exc.strerror or str(exc))}{escape(where)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[bold red]aborted[/] (Ctrl-C) before the command finished: what it had written is complete (files are "
                      "written whole) and checkpoints on disk are intact", highlight=False)
            raise typer.Exit(130) from None
    return wrapper


def _path(value: str) -> Path:
    """A path option or argument: never empty (``Path("")`` would silently mean the current folder)."""
    if not str(value).strip():
        raise typer.BadParameter("an empty path; give a file or folder (use . for the current folder)")
    try:
        return expand(value)
    except GanzooError as exc:
        raise typer.BadParameter(str(exc)) from None


def _task_progress(bar):
    """``progress(what, done, total)`` drawing one task of a rich ``Progress`` per ``what``."""
    tasks: dict = {}

    def progress(what, done, total):
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    return progress


def _version(value: bool):
    if value:
        from . import __version__

        out.print(f"ganzoo {__version__}", highlight=False)
        raise typer.Exit()


DEBUG = {"on": False}  # --debug: set once per command line


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version and exit"),
          debug: bool = typer.Option(False, "--debug", help="with an error raised in a plugin's code, also print its traceback")):
    """ganzoo: a plugin-based GAN zoo. One YAML recipe per experiment."""
    DEBUG["on"] = debug


@app.command()
@friendly
def run(
    recipe: str = typer.Argument(..., help="recipe YAML file, or the name of a shipped recipe (ganzoo recipes)"),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="override a key: --set train.steps=200"),
    out_dir: Optional[Path] = typer.Option(None, "--run-dir", help="run directory (default: output.dir/NAME[-TIMESTAMP])", parser=_path),
    resume_dir: Optional[Path] = typer.Option(None, "--resume", help="continue this run directory from its last checkpoint", parser=_path),
    force: bool = typer.Option(False, "--force", help="replace a non-empty --run-dir"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Train a recipe: checkpoint, samples and the resolved recipe land in the run directory."""
    from . import load_recipe, train
    from .rundir import prepare_run_dir
    from .shipped import resolve

    r = load_recipe(resolve(recipe), set_ or [])
    if resume_dir is not None:
        if out_dir is not None or force:
            raise GanzooError("--resume continues RUN_DIR in place: --run-dir and --force do not apply")
        from .train import check_resume_changes, resume_source

        run_dir, ckpt = resume_source(resume_dir)
        check_resume_changes(load_recipe(ckpt.recipe), r, f"{recipe} against {run_dir}", also=("optim.",), where=ckpt.path)
        train(r, run_dir, resume=ckpt, progress=_progress(quiet))
        return
    made = out_dir is not None and not out_dir.exists()
    if out_dir is not None and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 owns the folder
        prepare_run_dir(out_dir, force)
    try:
        train(r, out_dir, progress=_progress(quiet))
    except BaseException:
        if made:
            _remove_if_unused(out_dir)
        raise


def _remove_if_unused(path: Path) -> None:
    """Remove a run folder this command made when nothing was trained into it, and no other process is using it."""
    from .rundir import RunLock

    try:
        lock = RunLock(path).acquire()  # another process training there holds the lock: leave its folder alone
    except (GanzooError, OSError):
        return
    try:
        if not any(p.name != ".lock" for p in path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)
    finally:
        lock.release()


def _progress(quiet: bool):
    from .progress import ProgressBar

    return False if quiet else ProgressBar(console=err)


@app.command("resume")
@friendly
def resume_(
    run_dir: Path = typer.Argument(..., help="run directory to continue", parser=_path),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="change the length, logging or outputs: "
                                             "--set train.steps=5000 lengthens a run, a finished one too"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Continue a run from its last checkpoint, exactly where it stopped (or lengthen it with --set)."""
    from .train import resume

    resume(run_dir, progress=_progress(quiet), overrides=set_ or [])


@app.command()
@friendly
def check(
    recipe: str = typer.Argument(..., help="recipe YAML file, or the name of a shipped recipe"),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="override a key"),
):
    """Validate a recipe and print it as resolved (every default filled in)."""
    from . import load_recipe
    from .models import preflight
    from .shipped import resolve

    r = load_recipe(resolve(recipe), set_ or [])
    counts = preflight(r)  # what run would refuse before training, check refuses too
    typer.echo(r.to_yaml(), nl=False)  # plain text, never wrapped: `ganzoo check R > resolved.yaml` is valid YAML
    err.print(f"ok: generator {counts['generator']:,} and critic {counts['critic']:,} parameters", highlight=False)


@app.command()
@friendly
def recipes(all_: bool = typer.Option(False, "--all", "-a", help="also the reference experiments as they were run")):
    """List the recipes that ship with ganzoo: run one by name (ganzoo run NAME), copy one (ganzoo init)."""
    from .shipped import describe, fingerprint, measured_scores, measured_text, shipped_recipes

    scores = measured_scores()
    rows = []
    for path in shipped_recipes().values():
        info = describe(path)
        if info["reference"] and not all_:
            continue
        rows.append((info["name"], info["experiment"] or "-", info["model"], info["objective"], info["data"],
                     info["expected_time"].split(" (")[0],
                     measured_text(scores.get(info["name"], []), fingerprint(path))))
    if out.width >= 110:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for col, kw in (("name", {"no_wrap": True, "style": "bold"}), ("exp.", {}), ("model", {}), ("objective", {}),
                        ("data", {}), ("time (2-core CPU)", {"overflow": "fold"}), ("FID@N, budget, data", {"overflow": "fold"})):
            table.add_column(col, **kw)
        for row in rows:
            table.add_row(*row)
        out.print(table)
    else:  # too narrow for seven columns: one block per recipe, its lines wrapped whole
        for name, experiment, model, objective, data, time, measured in rows:
            out.print(f"[bold]{name}[/]" + (f" ({experiment})" if experiment != "-" else ""), highlight=False)
            out.print(f"  {model}, {objective}, {data}, {time}", highlight=False)
            if measured != "-":
                out.print(f"  FID {measured}", highlight=False)
    out.print("(time: a full run on a 2-core CPU; FID@N, budget, data: FID of N generated images after that many "
              "minutes of training on that data set; docs/zoo.md)",
              style="dim", highlight=False)
    if not all_:
        out.print("(ganzoo recipes --all: also the reference experiments E0-E2 as run)", style="dim", highlight=False)


@app.command()
@friendly
def init(
    name: str = typer.Argument(..., help="name of the new recipe (and of its file NAME.yaml)"),
    from_: Optional[str] = typer.Option(None, "--from", help="shipped recipe (or file) to start from; default: NAME"),
    directory: Path = typer.Option(Path("."), "--dir", help="where to write NAME.yaml", parser=_path),
    force: bool = typer.Option(False, "--force", help="replace an existing NAME.yaml"),
):
    """Copy a shipped recipe to NAME.yaml to edit: ganzoo init my_faces --from anime_fast."""
    from .shipped import init as copy_recipe

    path = copy_recipe(name, from_, directory, force)
    err.print(f"wrote {path}: edit it, then ganzoo run {path}", highlight=False)


@app.command("list")
@friendly
def list_(verbose: bool = typer.Option(False, "--verbose", "-v", help="also the plugin, version and every parameter")):
    """List installed components, grouped by kind (built-ins and plugins alike)."""
    from .registry import KINDS, get_registry

    reg = get_registry()
    table = Table(box=None, show_header=verbose, pad_edge=False, show_edge=False)
    width = max((len(c.name) + (0 if c.package == "ganzoo" or verbose else len(c.package) + 3) for c in reg.all()), default=8)
    name_width = max(width + 2, len("architectures"))
    table.add_column("name", no_wrap=True, style="bold", min_width=name_width)
    if verbose:
        table.add_column("plugin", no_wrap=True)
        table.add_column("version", no_wrap=True)
    table.add_column("description", no_wrap=not verbose, overflow="fold" if verbose else "ellipsis")
    for kind in KINDS:
        components = [c for c in reg.all() if c.kind == kind]
        if not components:
            continue
        table.add_row(f"[underline]{kind}s[/]", *([""] * (2 if verbose else 0)), "")
        for c in components:
            shadowed = reg.components[kind].get(c.name) is not c  # a clash's other component: PACKAGE:NAME
            name = f"  {c.qualified_name}" if shadowed else f"  {c.name}" if c.package == "ganzoo" or verbose else f"  {c.name} ({c.package})"
            table.add_row(Text(name), *((Text(c.package), Text(c.version)) if verbose else ()),
                          Text(c.description if verbose else _clip(c.description, out.width - name_width - 1)))
    out.print(table)
    if reg.switched_off:
        out.print(f"turned off (GANZOO_DISABLE_PLUGINS): {', '.join(reg.switched_off)}", highlight=False, markup=False)
    if verbose:
        for c in reg.all():
            _print_params(c)


def _clip(text: str, width: int) -> str:
    """``text`` cut at the last whole word that fits in ``width`` characters, with an ellipsis."""
    if len(text) <= width or width < 8:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0].rstrip(" ,;:(")
    return cut + "…"


@app.command()
@friendly
def show(name: str = typer.Argument(..., help="component name, e.g. wgan_gp")):
    """Show a component's parameters with their defaults."""
    from .registry import did_you_mean, get_registry

    reg = get_registry()
    found = reg.find(name)
    if not found:
        raise GanzooError(f"no component named '{name}'{did_you_mean(name, [c.name for c in reg.all()])}")
    for c in found:
        _print_params(c)


def _type_name(annotation) -> str:
    """``Literal['a', 'b']`` as ``a | b``; ``list[int]``, ``float | None`` as written."""
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (list, tuple) and args:
        return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else _type_name(a) for a in args)}]"
    name = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return name or str(annotation).replace("typing.", "").replace("NoneType", "None")


def _print_params(c) -> None:
    out.print(f"\n[bold]{c.kind} {c.name}[/] (plugin {escape(c.plugin)}, {escape(c.package)} {escape(c.version)}): {escape(c.description)}",
              highlight=False)  # plugin text is data, not markup: "E[sign D(real)]" must print as written
    for role, model in c.params_models().items():
        table = Table()
        for col in ("param", "type", "default", "description"):
            table.add_column(col, overflow="fold")
        for key, field in model.model_fields.items():
            table.add_row(key, Text(_type_name(field.annotation)),
                          Text("(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))),
                          Text(field.description or ""))
        if not model.model_fields:
            table.add_row("(none)", "", "", "")
        out.print(table)


@app.command()
@friendly
def sample(
    checkpoint: Path = typer.Argument(..., help="checkpoint .safetensors file or run directory", parser=_path),
    n: int = typer.Option(1000, "-n", min=1, help="number of images"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for the PNGs and grid.png", parser=_path),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="seed of the latent vectors"),
    truncation: Optional[float] = typer.Option(None, min=0.05, help="truncation trick: draw z from N(0,1) cut to [-t, t]"),
    grid: bool = typer.Option(True, "--grid/--no-grid", help="also write grid.png"),
    threshold: float = typer.Option(0.02, min=0.0, help="RMS pixel distance (0-1) under which two images count as near-identical"),
    batch_size: int = typer.Option(250, min=1),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="use the generator's weight average when the checkpoint has one"),
    force: bool = typer.Option(False, "--force", help="replace samples already in the output folder (all of them)"),
    label: list[str] = typer.Option([], "--label", "-l", help="conditional runs: ATTRIBUTE=VALUE (repeat for each attribute; "
                                    "those not given follow the training data's frequencies), or 'random'"),
):
    """Write N distinct generated images (one PNG each) and a grid from a checkpoint."""
    from . import load_generator
    from .sampling import CHUNK, sample_to_folder
    from .distributed import pick_device

    t0 = time.perf_counter()
    dev = pick_device(device, what="--device")
    G = load_generator(checkpoint, device=dev, ema=ema)
    if n > CHUNK:
        err.print(f"{n:,} images: written {CHUNK:,} at a time, each chunk checked distinct within itself", highlight=False)
    report = sample_to_folder(G, n, output, seed=seed, threshold=threshold, truncation=truncation, batch_size=batch_size,
                              device=dev, grid=grid, force=force, labels=_labels(label))
    _report_distinct(report)
    err.print(f"wrote {n} images{' and grid.png' if grid else ''} to {output} in {time.perf_counter() - t0:.1f}s")


def _labels(given: list[str]):
    return "random" if given == ["random"] else (given or None)


@app.command()
@friendly
def grid(
    checkpoint: Path = typer.Argument(..., help="checkpoint .safetensors file or run directory of a conditional run", parser=_path),
    output: Path = typer.Option(..., "-o", "--output", help="the grid image (.png)", parser=_path),
    by: Optional[str] = typer.Option(None, "--by", help="the label attribute with one row per class (default: the first)"),
    columns: int = typer.Option(8, "--columns", min=1, max=64, help="images per row (the same latent vectors in every row)"),
    label: list[str] = typer.Option([], "--label", "-l", help="fix another attribute: ATTRIBUTE=VALUE (else drawn per column)"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1),
    truncation: Optional[float] = typer.Option(None, min=0.05),
    device: str = typer.Option("auto"),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="use the generator's weight average when the checkpoint has one"),
    force: bool = typer.Option(False, "--force", help="replace the output file if it exists"),
):
    """A per-class grid of a conditional run: one row per class of an attribute, the same noise in every row."""
    from . import load_generator, write_grid
    from .distributed import pick_device
    from .sampling import class_grid, image_path

    if image_path(output).exists() and not force:
        raise GanzooError(f"{output} exists: pick another name or pass --force to replace it")
    dev = pick_device(device, what="--device")
    images, classes = class_grid(load_generator(checkpoint, device=dev, ema=ema), by, columns, seed, label or None, dev, truncation)
    write_grid(images, output, nrow=columns, row_labels=classes)
    err.print(f"wrote {len(classes)} rows ({', '.join(classes)}) of {columns} images to {output}", highlight=False)


def _report_distinct(report) -> None:
    i, j = report.closest_pair
    line = (f"distinct: min pairwise RMS distance {report.min_distance:.4f} (images {i} and {j}); "
            f"{len(report.close_pairs)} pairs under {report.threshold}; {report.regenerated} regenerated")
    err.print(("[green]" if report.ok else "[yellow]") + line + "[/]", highlight=False)


@app.command()
@friendly
def interpolate(
    checkpoint: Path = typer.Argument(..., help="checkpoint .safetensors file or run directory", parser=_path),
    output: Path = typer.Option(Path("interpolation.png"), "-o", "--output", help=".png for a grid (a row per segment) or .gif", parser=_path),
    points: int = typer.Option(5, min=2, help="random latent points to walk through"),
    steps: int = typer.Option(10, min=2, help="images per segment"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1),
    truncation: Optional[float] = typer.Option(None, min=0.05),
    device: str = typer.Option("auto"),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="use the generator's weight average when the checkpoint has one"),
    force: bool = typer.Option(False, "--force", help="replace the output file if it exists"),
    label: list[str] = typer.Option([], "--label", "-l", help="conditional runs: the label kept along the walk, ATTRIBUTE=VALUE "
                                    "(those not given drawn from the training frequencies), or 'random'"),
    between: list[Path] = typer.Option([], "--between", help="walk through projected images instead of random points: "
                                       "the .latent.safetensors files of ganzoo project, in order (repeat, at least two)",
                                       parser=_path),
):
    """A latent walk (spherical interpolation) between random points, or between projected images, as a grid or a GIF."""
    import torch

    if output.suffix.lower() not in (".png", ".gif"):
        raise GanzooError(f"-o {output}: a walk is written as .png (a grid, a row per segment) or .gif (an animation)")
    if output.is_dir():
        raise GanzooError(f"-o {output} is a folder; give a file name such as {output / ('walk' + output.suffix.lower())}")
    if output.exists() and not force:
        raise GanzooError(f"{output} exists: pick another name or pass --force to replace it")

    from . import load_generator, write_grid
    from .sampling import interpolate as walk, write_gif
    from .distributed import pick_device

    dev = pick_device(device, what="--device")
    G = load_generator(checkpoint, device=dev, ema=ema)
    if between:
        from .projection import walk_between

        if label or truncation is not None:
            raise GanzooError("--between walks between projected latents as they are: no --label or --truncation with it")
        frames, points = walk_between(G, between, steps, seed), len(between)
    else:
        frames = walk(G, points, steps, seed, truncation, device=dev, labels=_labels(label))
    if output.suffix.lower() == ".gif":  # each segment starts where the last ended: drop the repeated frame
        write_gif(torch.cat([frames[0], *(f[1:] for f in frames[1:])]), output)
    else:
        write_grid(frames.flatten(0, 1), output, nrow=steps)
    err.print(f"wrote a walk through {points} points ({steps} images each) to {output}")


@app.command()
@friendly
def export(
    checkpoint: Path = typer.Argument(..., help="run directory or checkpoint .safetensors file", parser=_path),
    format: str = typer.Option(..., "--format", "-f", help="onnx (ONNX Runtime and others), torchscript (torch.jit.load), or "
                               "folder (a model folder with a model card, for sharing or the Hugging Face Hub)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="file or folder to write (default: RUN/export/generator.onnx, "
                                          "generator.pt or model/)", parser=_path),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="export the generator's weight average when the checkpoint has one"),
    force: bool = typer.Option(False, "--force", help="replace the output if it exists"),
):
    """Export the generator: ONNX or TorchScript (checked against the torch generator), or a model folder."""
    from .export import TOLERANCE, export as export_generator

    t0 = time.perf_counter()
    done = export_generator(checkpoint, format, output, ema=ema, force=force)
    if done.format == "folder":
        err.print(f"wrote the model folder {done.path} (model.safetensors, config.json, recipe.yaml, README.md model card, "
                  f"samples.png); sample from it with: ganzoo sample {done.path} -n 64 -o samples/", highlight=False, soft_wrap=True)
        return
    noise = "; noise inputs exported at zero (deterministic)" if done.noise_zeroed else ""
    err.print(f"wrote {done.path} ({done.format}, dynamic batch) in {time.perf_counter() - t0:.1f}s; checked on {done.check_batch} "
              f"fixed latents: max difference {done.max_difference:.2g} from the torch generator (limit {TOLERANCE:g}){noise}",
              highlight=False, soft_wrap=True)


@app.command()
@friendly
def project(
    checkpoint: Path = typer.Argument(..., help="run directory, checkpoint file or model folder", parser=_path),
    images: List[Path] = typer.Argument(..., help="image files to project (centre-cropped and resized to the generator's size)",
                                        parser=_path),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="folder for the latents and images (default RUN/projections)",
                                          parser=_path),
    steps: int = typer.Option(300, min=0, max=100000, help="gradient steps per image"),
    features: str = typer.Option("auto", help="distance beside pixels: critic (the run's critic features), inception (slower), "
                                 "pixels (none), or auto (critic where the run has one)"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="seed of the starting draws and of any noise inputs"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="use the generator's weight average when the checkpoint has one"),
    force: bool = typer.Option(False, "--force", help="replace projections of the same names"),
    label: list[str] = typer.Option([], "--label", "-l", help="conditional runs: the labels to project with, ATTRIBUTE=VALUE "
                                    "(default: the best of a few draws)"),
):
    """Find the latent whose image best reproduces each image: writes NAME.latent.safetensors, the reconstruction
    NAME.png and NAME.side.png (image | reconstruction); walk between them with interpolate --between."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .distributed import pick_device
    from .projection import FEATURES, project_files

    if features not in FEATURES + ("auto",):
        raise GanzooError(f"--features {features}: choose one of auto, {', '.join(FEATURES)}")
    dev = pick_device(device, what="--device")
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), TextColumn("RMS {task.fields[d]}"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        tasks = {}

        def progress(name, step, total, distance):
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, d="-")
            bar.update(tasks[name], completed=step, d=f"{distance:.4f}")

        results = project_files(checkpoint, images, output, steps=steps, features=features, labels=_labels(label) or None,
                                seed=seed, device=dev, ema=ema, force=force, progress=progress)
    for side, p in results:
        err.print(Text(f"{side.name.removesuffix('.side.png')}: RMS distance {p.start_distance:.4f} -> {p.distance:.4f} "
                       f"(pixels on [0, 1]; {p.space} space, {p.features} features, {p.steps} steps); {side}"), highlight=False)


@app.command("eval")
@friendly
def eval_(
    target: Path = typer.Argument(..., help="run directory, checkpoint, or a folder/zip of generated images", parser=_path),
    ref: Optional[Path] = typer.Option(None, "--ref", help="real images (folder/zip); default: the run's recipe data", parser=_path),
    n: int = typer.Option(10000, "-n", min=2, help="generated images to score"),
    n_real: int = typer.Option(5000, "--n-real", min=2, help="real images: a seeded subset (features cached after the first time)"),
    all_real: bool = typer.Option(False, "--all-real", help="every real image instead of --n-real of them"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="seed of latents and subsets"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="another TorchScript feature network (299x299 in [-1,1] -> features)", parser=_path),
    prc: bool = typer.Option(True, "--prc/--no-prc", help="also precision/recall"),
    resolution: Optional[int] = typer.Option(None, min=8, max=1024, help="resolution for a folder of images (default: the first image's)"),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="use the generator's weight average when the checkpoint has one"),
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
    import json

    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .evaluation import evaluate, flat_scores, pick_backend

    if threads:
        torch.set_num_threads(threads)
    pick_backend(backend)  # an unknown or unavailable backend is an error before any work
    t0 = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        progress = _task_progress(bar)

        result = evaluate(target, ref=ref, n=n, n_real=None if all_real else n_real, seed=seed, weights=str(weights) if weights else None, prc=prc,
                          resolution=resolution, ema=ema, progress=progress, per_class=per_class, n_per_class=n_per_class,
                          backend=backend)
    fmt = lambda v, d: "n/a" if v is None else f"{v:.{d}f}"  # noqa: E731
    table = Table(title=f"evaluation of {target}", show_header=False)
    table.add_row("FID", fmt(result["fid"], 3))
    spread = "(one subset: too few images for a spread)" if result["kid_std"] is None else f"± {fmt(result['kid_std'], 5)}"
    table.add_row("KID", f"{fmt(result['kid_mean'], 5)} {spread}")
    if "precision" in result:
        table.add_row("precision / recall", f"{fmt(result['precision'], 4)} / {fmt(result['recall'], 4)}")
    proto = result["protocol"]
    table.add_row("protocol", f"{proto['n_generated']} generated vs {proto['n_real']} real of {proto['reference']['size']} "
                  f"({proto['reference']['source']}), {proto['image_resolution']} px, seed {proto['seed']}, {proto['library']}")
    table.add_row("network", f"{proto['feature_network']['file']} sha256 {proto['feature_network']['sha256'][:16]}...")
    acc = result.get("label_accuracy")
    if acc:
        real = acc["classifier"]["test_accuracy"]
        for attr, v in acc["generated"].items():
            table.add_row(f"label accuracy: {attr}", f"{v['accuracy']:.2%} of {acc['n_generated']} generated "
                          f"(the classifier on held-out real images: {real[attr]['accuracy']:.2%})")
        c = acc["classifier"]
        table.add_row("classifier", f"sha256 {str(c['sha256'])[:16]}..., {c['split']}, trained on {c['n_train']}, tested on {c['n_test']}")
    if result.get("per_class"):
        pc = result["per_class"]
        table.add_row(f"FID per {pc['attribute']} (@{pc['n_generated_per_class']} each)",
                      ", ".join(f"{k} {fmt(v['fid'], 1)}" for k, v in pc["classes"].items()))
    out.print(table)
    out.print(json.dumps(flat_scores(result)))
    err.print(f"evaluated in {time.perf_counter() - t0:.0f}s")


@app.command()
@friendly
def report(run_dir: Path = typer.Argument(..., help="run directory", parser=_path)):
    """(Re)write a run's self-contained report.html."""
    from .report import require_run_dir, write_report

    out.print(f"wrote {write_report(require_run_dir(run_dir))}")


@app.command()
@friendly
def compare(
    run_dirs: List[Path] = typer.Argument(..., help="run directories", parser=_path),
    output: Path = typer.Option(Path("compare.png"), "-o", "--output", help="side-by-side grid image", parser=_path),
    force: bool = typer.Option(False, "--force", help="replace the grid image if it exists"),
):
    """One short table (objective, steps, time, img/s, latest FID/KID with N), what each run is, a side-by-side grid."""
    if output.exists() and not force:
        raise GanzooError(f"{output} exists: pick another name (-o) or pass --force to replace it")
    from rich import box
    from rich.text import Text

    from .report import COMPARE_COLUMNS, compare_cells, compare_details, run_summary, write_comparison

    rows = [run_summary(r) for r in run_dirs]
    table = Table(title="ganzoo runs", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for col in COMPARE_COLUMNS:
        table.add_column(col, justify="right" if col in ("steps", "time", "img/s") else "left", overflow="fold")
    for row, run_dir in zip(rows, run_dirs):
        try:
            table.add_row(*[Text(cell) for cell in compare_cells(row)])
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise GanzooError(f"{run_dir}: its run.json or metrics hold a value of an unexpected type ({exc})") from None
    out.print(table)
    out.print("@N: scored on N generated images (lower is better; compare scores at the same N)", style="dim", highlight=False)
    for row in rows:
        out.print(Text(compare_details(row)), highlight=False)
    out.print(Text(f"side-by-side grid: {write_comparison(run_dirs, output)}"), highlight=False)


@app.command()
@friendly
def nearest(
    run_dir: Path = typer.Argument(..., help="run directory", parser=_path),
    n: int = typer.Option(256, "-n", min=1, help="generated images (and as many training images for the data's own distances)"),
    data: Optional[Path] = typer.Option(None, "--data", help="the training images (folder/zip), where the recipe's data.path "
                                        "no longer is", parser=_path),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="the grid image (default: RUN/nearest.png)", parser=_path),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="seed of the latents and of the training subset"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="use the generator's weight average when the checkpoint has one"),
    force: bool = typer.Option(False, "--force", help="replace the -o grid image if it exists"),
):
    """Does the generator copy its training set? Generated images vs their nearest training images (RMS pixel distance)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .distributed import pick_device
    from .nearest import nearest as copy_check
    from .sampling import image_path

    if output is not None and image_path(output).exists() and not force:
        raise GanzooError(f"{output} exists: pick another name (-o) or pass --force to replace it")
    t0 = time.perf_counter()
    dev = pick_device(device, what="--device")
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        progress = _task_progress(bar)

        result = copy_check(run_dir, n=n, data=data, seed=seed, device=dev, progress=progress, grid=output, ema=ema)
    out.print(Text(result.verdict, style="bold yellow" if result.copies else "green"), soft_wrap=True)
    err.print(Text(f"wrote {', '.join(result.paths.values())} in {time.perf_counter() - t0:.1f}s"), soft_wrap=True)


@app.command()
@friendly
def explore(
    run: Path = typer.Argument(..., help="run directory, checkpoint .safetensors file or exported model folder", parser=_path),
    host: str = typer.Option("127.0.0.1", help="address to listen on: 127.0.0.1 is this machine only (see docs/explore.md "
                             "for reaching it from another machine)"),
    port: Optional[int] = typer.Option(None, min=1, max=65535, help="port (default: the first free one from 7860)"),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="open the page in the browser"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
):
    """Explore a generator in the browser: seeds, truncation, labels, walks between seeds, projection of your image."""
    from .distributed import pick_device
    from .explore import explore as serve

    serve(run, host=host, port=port, open_browser=browser, device=pick_device(device, what="--device"))


data_app = typer.Typer(help="Look at a recipe's data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
@friendly
def data_inspect(
    recipe: str = typer.Argument(..., help="recipe YAML file, or the name of a shipped recipe"),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="override a key"),
    grid: Optional[Path] = typer.Option(None, "--grid", help="PNG of real samples after transforms (default: NAME-data.png)", parser=_path),
    n: int = typer.Option(64, "-n", min=1, max=10000, help="images in the grid"),
    force: bool = typer.Option(False, "--force", help="replace the grid image if it exists"),
):
    """Counts, skipped files and why, source sizes, and a grid of real samples after transforms."""
    import torch

    from . import load_data, load_recipe, write_grid
    from .data import BatchStream, build_augment, to_uint8
    from .labels import summary
    from .sampling import image_path
    from .shipped import resolve

    r = load_recipe(resolve(recipe), set_ or [])
    grid_path = image_path(grid if grid is not None else Path(f"{r.name}-data.png"))
    if grid_path.exists() and not force:
        raise GanzooError(f"{grid_path} exists: pick another name (--grid) or pass --force to replace it")
    data = load_data(r.data)
    images, report = data.images, data.report
    table = Table(title=f"data of {r.name}", show_header=False)
    table.add_row("dataset", f"{r.data.name}: {report.source}")
    table.add_row("images", f"{len(images)} at {r.data.channels}x{r.data.resolution}x{r.data.resolution}")
    table.add_row("skipped", ", ".join(f"{v} {k}" for k, v in report.skipped.items()) or "none")
    for bad in report.bad_files[:10]:
        table.add_row("", bad)
    sizes = sorted(report.source_sizes.items(), key=lambda kv: -kv[1])
    table.add_row("source sizes", ", ".join(f"{k}: {v}" for k, v in sizes[:8]) + (" ..." if len(sizes) > 8 else "") or "n/a")
    table.add_row("upscaled", str(report.upscaled))
    aug = build_augment(r.data.augment)
    table.add_row("augment", str(aug) if aug else "none")
    for attr, counts in summary(data.columns).items():
        used = " (conditions the model)" if attr in r.data.labels else ""
        table.add_row(f"label {attr}{used}", f"{len([c for c in counts if c != '(none)'])} classes: "
                      + ", ".join(f"{c} {k}" for c, k in counts.items()))
    if not data.columns:
        table.add_row("labels", "none (class sub-folders, a labels file, or a labelled dataset give them)")
    out.print(table)
    torch.manual_seed(r.seed)
    batch = next(BatchStream(images, min(n, len(images)), r.seed, "cpu", augment=aug))
    path = write_grid(to_uint8(batch), grid_path)
    out.print(f"grid of {len(batch)} real images after transforms: {path}")


def main():
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C is a KeyboardInterrupt again (see errors.py)
    _sane_columns()
    try:
        app()
    except KeyboardInterrupt:  # outside a command's own handling (while typer parses, say): one line, no traceback
        err.print("[bold red]aborted[/] (Ctrl-C)", highlight=False)
        raise SystemExit(130) from None
