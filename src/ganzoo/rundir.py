"""Run folders and model folders: what their files are called, the reads and writes tools share, a new run folder per
run (never reused; an existing one replaced only on request) and the lock of a run in progress.

This is the only module that spells a run folder's file names (``RunFiles``) or a model folder's (``ModelFiles``);
it imports nothing of ganzoo but errors and file helpers, so every module can use it. Opening what a folder holds
(networks, recipe, checkpoint) is ``ganzoo.trained``'s."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from pathlib import Path

from .errors import GanzooError
from .fileio import atomic_write, expand

log = logging.getLogger("ganzoo")


class RunFiles:
    """The files of one run folder, by name, and the reads and writes that several tools share.

    A missing file reads as empty (``{}``/``[]``): a run cut short, or one from an earlier version, still opens."""

    RECIPE = "recipe.yaml"
    CHECKPOINTS = "checkpoints"
    METRICS_LINES = "metrics.jsonl"
    METRICS = "metrics.json"
    EVALS = "evals"
    SUMMARY = "run.json"
    REPORT = "report.html"
    TENSORBOARD = "tb"
    GRIDS = "grids"
    SAMPLES = "samples"
    CURVES = "curves.png"
    FIXED_LATENTS = "fixed_z.safetensors"
    LOCK = ".lock"
    NEAREST = "nearest.json"
    NEAREST_GRID = "nearest.png"
    EXPORTS = "export"
    PROJECTIONS = "projections"
    # what a run and the tools working on it write at the top of its folder: --force deletes a folder holding nothing else
    NAMES = frozenset({RECIPE, CHECKPOINTS, METRICS_LINES, METRICS, EVALS, SUMMARY, REPORT, TENSORBOARD, GRIDS, SAMPLES,
                       CURVES, FIXED_LATENTS, LOCK, NEAREST, NEAREST_GRID, EXPORTS, PROJECTIONS})

    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFiles({str(self.root)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RunFiles) and self.root == other.root

    # -- where things are -------------------------------------------------------------------------------------------
    recipe = property(lambda self: self.root / self.RECIPE)
    checkpoints = property(lambda self: self.root / self.CHECKPOINTS)
    metrics_lines = property(lambda self: self.root / self.METRICS_LINES)
    metrics = property(lambda self: self.root / self.METRICS)
    evals = property(lambda self: self.root / self.EVALS)
    summary_path = property(lambda self: self.root / self.SUMMARY)
    report = property(lambda self: self.root / self.REPORT)
    tensorboard = property(lambda self: self.root / self.TENSORBOARD)
    grids = property(lambda self: self.root / self.GRIDS)
    samples = property(lambda self: self.root / self.SAMPLES)
    curves = property(lambda self: self.root / self.CURVES)
    fixed_latents = property(lambda self: self.root / self.FIXED_LATENTS)
    lock = property(lambda self: self.root / self.LOCK)
    nearest = property(lambda self: self.root / self.NEAREST)
    nearest_grid = property(lambda self: self.root / self.NEAREST_GRID)
    exports = property(lambda self: self.root / self.EXPORTS)
    projections = property(lambda self: self.root / self.PROJECTIONS)

    def checkpoint(self, name: str = "last") -> Path:
        """``checkpoints/NAME.safetensors`` (``last``, ``best``, ``step_NNNNNNN``)."""
        return self.checkpoints / f"{name}.safetensors"

    @property
    def last(self) -> Path:
        return self.checkpoint("last")

    def checkpoint_meta(self, name: str = "last") -> dict:
        """A checkpoint's JSON sidecar (``checkpoints/NAME.json``), read without its tensors."""
        return read_json(self.checkpoints / f"{name}.json")

    def grid_steps(self) -> list[Path]:
        """The fixed-latent grids, in step order."""
        return sorted(self.grids.glob("step_*.png"))

    def grid(self, step: int) -> Path:
        return self.grids / f"step_{step:07d}.png"

    # -- what it is --------------------------------------------------------------------------------------------------
    def is_run(self) -> bool:
        """Whether the folder holds a ganzoo run (its recipe.yaml and its checkpoints or fixed latents)."""
        return self.recipe.is_file() and (self.checkpoints.is_dir() or self.fixed_latents.is_file())

    def looks_like_run(self) -> bool:
        """What a run writes first (fixed latents, checkpoints/, its lock): a folder --force may clear."""
        return self.fixed_latents.exists() or self.checkpoints.is_dir() or self.lock.exists()

    def others(self) -> list[str]:
        """Names at the top of the folder that no run writes."""
        return sorted(p.name for p in self.root.iterdir() if p.name not in self.NAMES)

    @classmethod
    def of_checkpoint(cls, path) -> "RunFiles | None":
        """The run folder a checkpoint file sits in (``RUN/checkpoints/NAME.safetensors``), or None."""
        path = Path(path)
        if path.parent.name != cls.CHECKPOINTS:
            return None
        files = cls(path.parent.parent)
        return files if files.recipe.is_file() else None

    def writable(self) -> bool:
        """Whether evaluations can be kept here (the folder, evals/ and metrics.json writable)."""
        return (os.access(self.root, os.W_OK | os.X_OK)
                and not (self.evals.exists() and not os.access(self.evals, os.W_OK | os.X_OK))
                and not (self.metrics.exists() and not os.access(self.metrics, os.W_OK)))

    # -- reads -------------------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        """run.json: written last by a finished run (steps, time, speed, final metrics, samples)."""
        return read_json(self.summary_path)

    def evaluation(self) -> dict:
        """metrics.json: the latest ``ganzoo eval``."""
        return read_json(self.metrics)

    def lines(self) -> list[dict]:
        """metrics.jsonl's objects; a torn last line (a killed run) is skipped, other unreadable lines are named."""
        return read_lines(self.metrics_lines)

    def copy_check(self) -> dict:
        return read_json(self.nearest)

    def checkpoint_files(self) -> list[Path]:
        return sorted(self.checkpoints.glob("*.safetensors"))

    # -- writes ------------------------------------------------------------------------------------------------------
    def write_summary(self, summary: dict) -> Path:
        return atomic_write(self.summary_path, json.dumps(summary, indent=2).encode(), "run summary")

    def append_metrics(self, line: dict) -> None:
        with self.metrics_lines.open("a") as f:
            f.write(json.dumps(line) + "\n")

    def keep_evaluation(self, result: dict, name: str, line: dict) -> Path:
        """An evaluation kept as ``evals/NAME.json`` (never overwritten by another), made the latest (metrics.json)
        and appended to metrics.jsonl as ``line``."""
        text = json.dumps(result, indent=2).encode()
        kept = atomic_write(self.evals / f"{name}.json", text, "evaluation")
        atomic_write(self.metrics, text, "evaluation")
        self.append_metrics(line)
        return kept


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; ``{}`` when missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_lines(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; a torn last line (a killed writer) is skipped, others are named."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    lines, unreadable = [], []
    raws = text.splitlines()
    for number, raw in enumerate(raws, 1):
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        if isinstance(line, dict):
            lines.append(line)
        elif raw.strip() and not (number == len(raws) and not text.endswith("\n")):  # not the torn last line
            unreadable.append(number)
    if unreadable:
        listed = ", ".join(map(str, unreadable[:5])) + (f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else "")
        log.warning(f"{path}: skipped {len(unreadable)} line(s) that are not JSON objects (line {listed})")
    return lines


class ModelFiles:
    """The files of an exported model folder (the Hugging Face layout)."""

    WEIGHTS = "model.safetensors"
    CONFIG = "config.json"
    SAMPLES = "samples.png"
    RECIPE = "recipe.yaml"
    CARD = "README.md"
    NAMES = frozenset({WEIGHTS, CONFIG, SAMPLES, RECIPE, CARD})
    FORMAT = "ganzoo-generator"
    VERSION = 1
    NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}"  # a model's name: a Hub repository name and a folder name

    def __init__(self, root):
        self.root = Path(root)

    weights = property(lambda self: self.root / self.WEIGHTS)
    config = property(lambda self: self.root / self.CONFIG)
    samples = property(lambda self: self.root / self.SAMPLES)
    recipe = property(lambda self: self.root / self.RECIPE)
    card = property(lambda self: self.root / self.CARD)

    def is_model(self) -> bool:
        return self.root.is_dir() and self.config.is_file() and self.weights.is_file()

    def claims_model(self) -> bool:
        """Whether the folder says it is a model folder (its config or weights are there), complete or not."""
        return self.root.is_dir() and not (self.root / RunFiles.CHECKPOINTS).is_dir() and (
            self.config.exists() or self.weights.exists())


def is_model_folder(path) -> bool:
    """Whether ``path`` is an exported model folder (config.json and model.safetensors)."""
    return ModelFiles(path).is_model()



def new_run_dir(recipe) -> Path:
    """``output.dir/name``, or ``name-YYYYmmdd-HHMMSS`` if that exists: never reuse a run's folder."""
    base = expand(recipe.output.dir) / recipe.name
    path = base if not base.exists() else base.with_name(f"{base.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{base.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    return path


# what a run keeps and only training writes: no other command writes over these (exports, projections and the copy
# check's files are the tools' own, under their own names)
RUN_OWN = frozenset({RunFiles.RECIPE, RunFiles.CHECKPOINTS, RunFiles.METRICS_LINES, RunFiles.METRICS, RunFiles.EVALS,
                     RunFiles.SUMMARY, RunFiles.REPORT, RunFiles.TENSORBOARD, RunFiles.GRIDS, RunFiles.SAMPLES,
                     RunFiles.CURVES, RunFiles.FIXED_LATENTS, RunFiles.LOCK})


def guard_output(path, force: bool, inputs=(), hint: str = "pick another name") -> Path:
    """The one rule of every command that writes a file where the user says (``-o``): never over a file a run keeps
    (its recipe, checkpoints, metrics, samples, ...) or a file of a model folder, never over one of the command's own
    inputs, never over anything but a regular file (a folder, a device, a pipe), and over a regular file of the user's
    only with ``--force``. Returns the path."""
    path = Path(path)
    for parent in list(path.parents)[:3]:
        inside = path.relative_to(parent).parts
        if RunFiles(parent).is_run() and inside[0] in RUN_OWN:
            raise GanzooError(f"{path} is part of the run folder {parent} ({inside[0]}): a command writes its results "
                              "beside a run's files, never over them; give another -o")
        if ModelFiles(parent).claims_model() and len(inside) == 1 and inside[0] in ModelFiles.NAMES:
            raise GanzooError(f"{path} is part of the model folder {parent}: give another -o")
    resolved = path.resolve()
    for given in inputs:
        if Path(given).resolve() == resolved:
            raise GanzooError(f"{path} is one of this command's inputs: it is never written over; give another -o")
    if path.is_symlink() or path.exists():
        if not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file (a device, a pipe or a link to one)"
            raise GanzooError(f"{path} is {kind}: give a file name to write")
        if not force:
            raise GanzooError(f"{path} exists: {hint} or pass --force to replace it")
    return path


def guard_folder(folder, what: str) -> Path:
    """The folder rule of commands that write many files (``sample``, ``project``): never a run folder or one of the
    folders a run keeps (``samples/``, ``checkpoints/``, ``grids/``, ...), never a model folder or a folder inside one
    (a published model folder would carry them). Returns the folder."""
    folder = Path(folder)
    if RunFiles(folder).is_run():
        raise GanzooError(f"{folder} is a run folder: {what} go in a folder of their own, e.g. {folder / (what + '-more')}")
    for parent in list(folder.parents)[:3]:
        inside = folder.relative_to(parent).parts
        if RunFiles(parent).is_run() and inside[0] in RUN_OWN:
            raise GanzooError(f"{folder} is the run's own {inside[0]}/ ({parent}): {what} go in a folder of their own, "
                              f"e.g. {parent / (what + '-more')}")
    for candidate in [folder, *list(folder.parents)[:3]]:
        if ModelFiles(candidate).claims_model():
            raise GanzooError(f"{folder} is {'a model folder' if candidate == folder else 'inside the model folder ' + str(candidate)}: "
                              f"{what} go in a folder of their own beside it, e.g. {candidate.parent / what}")
    return folder


@contextlib.contextmanager
def writing_into(folder):
    """Hold an OS lock on ``folder`` (created if missing) while a command writes its files there: a second ganzoo
    command writing into the same folder at the same time (two exports, samples or projections) gets one clear line
    instead of mixing its files with the first's. Nothing is left in the folder; the lock ends with the process."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise GanzooError(f"{folder} is being written by another ganzoo command: wait for it to end, or write "
                              "into another folder") from None
        yield folder
    finally:
        os.close(fd)


def distinct_names(paths) -> list[str]:
    """A name per input file for the files made from it: its stem, made distinct where two inputs share one
    (``face.png``, ``face.jpg`` -> ``face-png``, ``face-jpg``; ``d1/same.png``, ``d2/same.png`` -> ``d1-same``,
    ``d2-same``; else numbered)."""
    paths = [Path(p) for p in paths]
    names = []
    for i, p in enumerate(paths):
        same = [q for q in paths if q.stem == p.stem]
        if len(same) == 1:
            names.append(p.stem)
        elif len({q.suffix.lower() for q in same}) == len(same):
            names.append(f"{p.stem}-{p.suffix.lstrip('.').lower()}")
        elif len({q.parent.name for q in same}) == len(same):
            names.append(f"{p.parent.name}-{p.stem}")
        else:
            names.append(f"{p.stem}-{i + 1}")
    return names


def is_run_folder(path) -> bool:
    """Whether ``path`` holds a ganzoo run (its recipe.yaml and its checkpoints or fixed latents)."""
    return RunFiles(path).is_run()


def prepare_run_dir(path, force: bool = False) -> Path:
    """An empty run folder at ``path``; an existing non-empty one only with ``force`` (it is cleared). Never inside
    another run's folder."""
    path = Path(path)
    files = RunFiles(path)
    if path.exists() and not path.is_dir():
        raise GanzooError(f"run folder {path} is a file")
    outer = next((p for p in path.resolve().parents if is_run_folder(p)), None)
    if outer is not None:
        raise GanzooError(f"--run-dir {path} is inside the run folder {outer}: a run gets a folder of its own (e.g. beside it)")
    if path.exists() and any(path.iterdir()):
        if not force:
            if files.recipe.is_file() and not files.last.is_file():
                raise GanzooError(f"run folder {path} holds a run that stopped before its first checkpoint (nothing to "
                                  "resume): pass --force to start it again there, or pick another folder")
            raise GanzooError(f"run folder {path} exists and is not empty: resume it (ganzoo resume {path}), "
                              "pick another folder, or pass --force to replace it")
        RunLock(path).check()  # never delete a folder another process is training in
        here = Path.cwd().resolve()
        if path.resolve() == here or path.resolve() in here.parents or path.is_symlink():
            raise GanzooError(f"--force: {path} is the current folder, one above it, or a link; refusing to delete it")
        if not files.looks_like_run():
            raise GanzooError(f"--force: {path} does not look like a ganzoo run folder (no checkpoints/, no fixed_z.safetensors); "
                              "refusing to delete it")
        other = files.others()
        if other:
            raise GanzooError(f"--force: {path} also holds {', '.join(other[:5])}{' ...' if len(other) > 5 else ''}, which a "
                              "run does not write; refusing to delete it (move them, or pick another --run-dir)")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunLock:
    """An OS file lock on ``RUN/.lock`` while a process trains in RUN: a second writer (run, resume, --force) gets
    one clear line. The operating system releases it when the process ends, however it ends (kill -9 included)."""

    def __init__(self, run_dir):
        self.path, self.fd = RunFiles(run_dir).lock, None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise GanzooError(f"run folder {self.path.parent} is in use by another ganzoo process{self._holder()}: "
                              "wait for it to end, or use another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def check(self) -> None:
        """Raise if another process holds the lock; hold nothing."""
        if self.path.exists():
            self.acquire().release()

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
