"""A trained run's one home: open what a user points at once, and hand out what every tool needs.

``open_trained(source)`` takes a run folder, a checkpoint file (inside its run folder's ``checkpoints/`` or
anywhere else), an exported model folder (``ganzoo export --format folder``, a Hub download) or the name of a
model that ships with ganzoo (``ganzoo models``: a path that exists always wins over a name), and returns a
``Trained``: the generator (its weight average or not), the critic where there is one, the recipe, the
checkpoint's metadata and, when the source lives in a run folder, that folder's ``RunFiles``.

``RunFiles`` is the only place that spells a run folder's file names, and every read and write of a run
folder's shared files (``metrics.jsonl``, ``metrics.json``, ``evals/``, ``run.json``) goes through it. Evaluation,
export, the copy check, projection, the explorer, the report and the sampling commands take these objects; none
of them walks from a checkpoint up to its run.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .checkpoint import Checkpoint, load_checkpoint, load_state, load_weights, require_finite
from .errors import GanzooError
from .fileio import file_sha256, shown
from .labels import LabelSpace
from .models import build_models
from .recipe import Recipe, load_recipe
from .registry import Registry, did_you_mean
from .rundir import ModelFiles, RunFiles
from .shipped import shipped_models

log = logging.getLogger("ganzoo")


def has_ema(ckpt: Checkpoint) -> bool:
    """True when the checkpoint holds an EMA generator that has averaged at least one step."""
    n = ckpt.tensors.get("generator_ema.n_averaged")
    return n is not None and int(n) > 0


def checkpoint_labels(ckpt: Checkpoint) -> LabelSpace | None:
    """The label space a conditional checkpoint was trained on (None for an unconditional one)."""
    saved = ckpt.meta.get("labels")
    if not saved:
        return None
    try:
        return LabelSpace.from_dict(saved)
    except (KeyError, TypeError, AttributeError):
        raise GanzooError(f"{ckpt.path}: damaged label metadata") from None


@dataclass
class Trained:
    """One trained generator and what came with it. ``kind``: ``run`` (a run folder, its last checkpoint),
    ``checkpoint`` (a checkpoint file, inside a run folder or not) or ``model`` (an exported model folder: a
    generator alone, no critic, no optimizers)."""

    source: Path
    kind: str
    recipe: Recipe
    checkpoint: Checkpoint | None = None
    config: dict | None = None
    files: RunFiles | None = None
    labels: LabelSpace | None = None
    registry: Registry | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """What to call it on a page: the run folder's name, a model folder's name, else the file's stem."""
        if self.files is not None:
            return self.files.root.name
        if self.kind == "model" and isinstance((self.config or {}).get("name"), str) and self.config["name"].strip():
            return self.config["name"]  # not the folder's name (a Hub download's folder is a commit hash)
        return self.source.name if self.source.is_dir() else self.source.stem

    @property
    def step(self) -> int | None:
        return self.checkpoint.meta.get("step") if self.checkpoint is not None else (self.config or {}).get("step")

    @property
    def weights_path(self) -> Path:
        """The file that holds the weights: the checkpoint, or the model folder's model.safetensors."""
        return self.checkpoint.path if self.checkpoint is not None else ModelFiles(self.source).weights

    @property
    def has_ema(self) -> bool:
        """Whether a weight average is there to use (a model folder holds the one generator it was exported with)."""
        return self.checkpoint is not None and has_ema(self.checkpoint)

    def uses_ema(self, ema: bool = True) -> bool:
        """Whether ``generator(ema)`` gives the weight average."""
        if self.kind == "model":
            return (self.config or {}).get("weights") == "ema"
        return ema and self.has_ema

    @cached_property
    def digest(self) -> str:
        """sha256 of the weights file: what scores are recorded against."""
        return file_sha256(self.weights_path)

    def identity(self, ema: bool = True) -> dict:
        """Which weights these are, for the record kept with scores and exports."""
        if self.kind == "model":
            return {"model_folder": str(self.source), "step": self.step, "ema": self.uses_ema(), "weights_sha256": self.digest}
        return {"checkpoint": str(self.checkpoint.path), "step": self.step, "ema": self.uses_ema(ema), "checkpoint_sha256": self.digest}

    def networks(self, ema: bool = True, device="cpu"):
        """``(generator, critic)`` in eval mode on ``device``; the critic is None for a model folder."""
        if self.kind == "model":
            return self._model_generator().to(device).eval(), None
        ckpt = self.checkpoint
        g, d = build_models(self.recipe, self.registry, labels=self.labels)
        load_weights(ckpt, g, d)
        which = "EMA generator" if self.uses_ema(ema) else "generator"
        if which == "EMA generator":
            load_state(g, ckpt.state("generator_ema.module"), "EMA generator", ckpt.path)
        require_finite(g, which, ckpt.path)
        return g.to(device).eval(), d.to(device).eval()

    def generator(self, ema: bool = True, device="cpu"):
        """The generator in eval mode; its weight average when it has one (and ``ema``)."""
        return self.networks(ema, device)[0]

    def critic(self, device="cpu"):
        """The critic in eval mode, or None (a model folder has none)."""
        return self.networks(True, device)[1]

    def output(self, given, default: str, what: str) -> Path:
        """``given``, else ``default`` inside the run folder; with neither, one line asking for ``-o``."""
        if given is not None:
            return Path(given)
        if self.files is None:
            where = "an exported model folder" if self.kind == "model" else "a checkpoint outside a run folder"
            raise GanzooError(f"{self.source} is {where}: say where to write {what} with -o")
        return self.files.root / default

    def _model_generator(self):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        files = ModelFiles(self.source)
        generator, _ = build_models(self.recipe, self.registry, labels=self.labels, check=False)
        try:
            state = load_file(str(files.weights))
        except (SafetensorError, OSError, ValueError) as exc:
            raise GanzooError(f"{files.weights} is not readable: {exc}") from None
        load_state(generator, state, "generator", files.weights)
        require_finite(generator, "generator", files.weights)
        _check_config(self.config, generator, self.recipe, files.config)
        _check_recipe_file(files, self.config)
        return generator


def _check_recipe_file(files: ModelFiles, config: dict) -> None:
    """recipe.yaml beside the weights is the recipe in config.json, written out to train the model again: an edited
    one no longer trains these weights, and is refused rather than published as theirs."""
    import yaml

    if not files.recipe.is_file():
        return
    try:
        written = yaml.safe_load(files.recipe.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        written = None
    def what_it_builds(recipe) -> tuple:  # the parts that decide what the weights are (not where the data lies)
        recipe = recipe if isinstance(recipe, dict) else {}
        data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
        return (recipe.get("generator"), recipe.get("condition"), recipe.get("seed"),
                data.get("resolution"), data.get("channels"), data.get("labels") or [])

    if what_it_builds(written) != what_it_builds(config.get("recipe")):
        raise GanzooError(f"{files.recipe} is not the recipe in {files.config.name} (its generator, data shape or "
                          f"labels were edited): it would not train these weights again; export the model again, or "
                          f"delete {files.recipe.name}")


def _check_config(config: dict, generator, recipe: Recipe, where: Path) -> None:
    """A model folder's config.json says what its weights are; a hand-edited one that disagrees is refused."""
    said = {"generator name": (config.get("generator") or {}).get("name"), "latent_dim": config.get("latent_dim"),
            "image channels": (config.get("image") or {}).get("channels"),
            "image resolution": (config.get("image") or {}).get("resolution")}
    built = {"generator name": recipe.generator.name, "latent_dim": generator.latent_dim,
             "image channels": recipe.data.channels, "image resolution": recipe.data.resolution}
    for key, value in said.items():
        if value != built[key]:
            raise GanzooError(f"{where}: {key} is {value!r}, but the weights and recipe beside it are of {built[key]!r}: "
                              "the config was edited or belongs to another model; export the model again")
    if config.get("output_range", [-1, 1]) != [-1, 1]:
        raise GanzooError(f"{where}: output_range is {config.get('output_range')!r}, but a ganzoo generator's images are in "
                          "[-1, 1]: the config was edited; export the model again")
    step = config.get("step")
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
        raise GanzooError(f"{where}: step is {step!r}, not a step count: the config was edited; export the model again")
    name = config.get("name")
    if name is not None and not (isinstance(name, str) and re.fullmatch(ModelFiles.NAME, name)):
        raise GanzooError(f"{where}: name {name!r} is not a model name (letters, digits, '_', '.', '-'): the config was "
                          "edited; export the model again")
    params = (config.get("generator") or {}).get("params")
    if params != recipe.generator.params.model_dump(mode="json"):
        raise GanzooError(f"{where}: the generator's parameters ({params}) are not those of the recipe beside it "
                          f"({recipe.generator.params.model_dump(mode='json')}): the config was edited or belongs to another "
                          "model; export the model again")
    if (config.get("condition") or None) != (recipe.condition.name if recipe.condition is not None else None):
        raise GanzooError(f"{where}: condition is {config.get('condition')!r}, the recipe beside it says "
                          f"{recipe.condition.name if recipe.condition is not None else None!r}; export the model again")


def open_trained(source, registry: Registry | None = None) -> Trained:
    """Open a run folder, a checkpoint file or an exported model folder (module docstring). A ``Trained`` or a
    loaded ``Checkpoint`` is taken as it is. Anything else is one clear error saying what was found."""
    if isinstance(source, Trained):
        return source
    if isinstance(source, Checkpoint):
        return _from_checkpoint(source, source.path, registry)
    path = Path(source)
    if not str(source).strip():
        raise GanzooError("an empty path: give a run folder, a checkpoint (.safetensors) or a model folder")
    if path.is_dir() and ModelFiles(path).claims_model():
        return _from_model_folder(path, registry)
    if path.is_dir():
        files = RunFiles(path)
        if not files.last.is_file():
            if files.recipe.is_file():
                raise GanzooError(f"{path} is a run that stopped before its first checkpoint (no checkpoints/last.safetensors): "
                                  f"nothing to load; start it again with: ganzoo run {files.recipe} --run-dir {path} --force")
            raise GanzooError(f"{path} is a folder but neither a run folder (no checkpoints/last.safetensors) nor an "
                              "exported model folder (no config.json and model.safetensors)")
        return _from_checkpoint(load_checkpoint(files.last), path, registry, files)
    if not path.exists():
        shipped = shipped_models()
        if str(source) in shipped:
            return _from_model_folder(shipped[str(source)], registry)
        what = "checkpoint not found" if path.suffix == ".safetensors" else "not found"
        hint = did_you_mean(str(source), shipped) if len(path.parts) == 1 else ""
        installed = f"the models installed with ganzoo: {', '.join(shipped)}" if shipped else "this copy of ganzoo has no trained model installed (ganzoo models)"
        raise GanzooError(f"{what}: {shown(path)}{hint} (give a run folder, a checkpoint .safetensors file, a model folder, "
                          f"or the name of a model installed with ganzoo; {installed})")
    ckpt = load_checkpoint(path)
    return _from_checkpoint(ckpt, path, registry)


def _from_checkpoint(ckpt: Checkpoint, source: Path, registry, files: RunFiles | None = None) -> Trained:
    try:
        recipe = load_recipe(ckpt.recipe, registry=registry)
    except GanzooError as exc:
        raise GanzooError(f"{ckpt.path}: its recipe no longer validates here: {exc}") from None
    files = files or RunFiles.of_checkpoint(ckpt.path)
    kind = "run" if Path(source).is_dir() else "checkpoint"
    return Trained(Path(source), kind, recipe, checkpoint=ckpt, files=files, labels=checkpoint_labels(ckpt), registry=registry)


def _from_model_folder(path: Path, registry) -> Trained:
    files = ModelFiles(path)
    for must in (files.config, files.weights):
        if not must.is_file():
            state = "is a folder, not a file" if must.is_dir() else "is missing"
            raise GanzooError(f"{path} is an exported model folder, but its {must.name} {state}: export the model again "
                              "(ganzoo export RUN --format folder) or download it whole")
    try:
        config = json.loads(files.config.read_text())
        assert isinstance(config, dict) and config.get("format") == ModelFiles.FORMAT and isinstance(config.get("recipe"), dict)
    except (OSError, ValueError, AssertionError):
        raise GanzooError(f"{files.config} is not a ganzoo model folder's config (format {ModelFiles.FORMAT} with its recipe)") from None
    version = config.get("format_version", 0)
    if not isinstance(version, int) or version > ModelFiles.VERSION:
        raise GanzooError(f"{path} was written by a newer ganzoo (model folder format {version!r}); upgrade ganzoo")
    try:
        recipe = load_recipe(config["recipe"], registry=registry)
    except GanzooError as exc:
        raise GanzooError(f"{path}: its recipe does not validate here (a plugin missing?): {exc}") from None
    try:
        labels = LabelSpace.from_dict(config["labels"]) if config.get("labels") else None
    except (KeyError, TypeError, AttributeError, ValueError):
        raise GanzooError(f"{files.config}: damaged label metadata (labels)") from None
    return Trained(path, "model", recipe, config=config, labels=labels, registry=registry)


# -- the plain calls of the Python API ---------------------------------------------------------------------------------
def load_models(source, device="cpu", registry: Registry | None = None, ema: bool = True):
    """``(generator, critic, recipe, checkpoint)`` from a checkpoint file or run folder.

    With ``ema`` (the default) the generator is the checkpoint's weight average when it has one."""
    trained = open_trained(source, registry)
    if trained.kind == "model":
        raise GanzooError(f"{trained.source} is an exported model folder (a generator alone, no critic): "
                          "load it with ganzoo.load_generator")
    g, d = trained.networks(ema, device)
    return g, d, trained.recipe, trained.checkpoint


def load_generator(source, device="cpu", registry: Registry | None = None, ema: bool = True):
    """The generator of a run folder, checkpoint or exported model folder, in eval mode; its EMA when it has one
    (and ``ema``). A model folder holds one generator, which ``ema`` does not change."""
    return open_trained(source, registry).generator(ema, device)
