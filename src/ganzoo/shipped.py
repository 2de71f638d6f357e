"""What ships with ganzoo: the recipes (listed by ``ganzoo recipes``, run by name, copied by ``ganzoo init``) and the
trained models (listed by ``ganzoo models``, opened by name wherever a model folder is taken).

They are the files of ``recipes/`` and ``models/`` in a checkout, installed as the packages ``ganzoo_recipes`` and
``ganzoo_models``, so they are found outside a checkout too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import yaml

from .errors import GanzooError
from .registry import did_you_mean
from .rundir import ModelFiles, RunFiles

log = logging.getLogger("ganzoo")


def recipes_dir() -> Path:
    import ganzoo_recipes

    return Path(ganzoo_recipes.__file__).parent


def shipped_recipes() -> dict[str, Path]:
    """Recipe name (its file's stem) -> path, the reference experiments included."""
    root = recipes_dir()
    return {p.stem: p for p in sorted(root.rglob("*.yaml"))}


def shipped_models() -> dict[str, Path]:
    """Model name (its folder's name) -> the model folder, for every trained model installed with ganzoo."""
    import ganzoo_models

    root = Path(ganzoo_models.__file__).parent
    return {p.name: p for p in sorted(root.iterdir()) if ModelFiles(p).is_model()}


def model_summary(path: Path) -> dict:
    """What ``ganzoo models`` shows of a shipped model: its config.json's name, image, labels, training and scores."""
    config = json.loads(ModelFiles(path).config.read_text())
    recipe = config.get("recipe") or {}
    data = recipe.get("data") or {}
    return {"name": config.get("name") or path.name, "image": config.get("image") or {}, "labels": config.get("labels"),
            "recipe": recipe.get("name"), "generator": (config.get("generator") or {}).get("name"),
            "objective": (recipe.get("objective") or {}).get("name"), "data": data.get("path") or data.get("name"),
            "step": config.get("step"), "images_seen": config.get("images_seen"), "evaluation": config.get("evaluation"),
            "size": ModelFiles(path).weights.stat().st_size, "path": path}


def scores_path() -> Path:
    """The measured scores of the shipped recipes: written by ``python bench/zoo.py page`` from the zoo's results."""
    return recipes_dir() / "scores.json"


def measured_scores() -> dict[str, list[dict]]:
    """Recipe name -> its measured FIDs (``{"data_set", "minutes", "fid", "n", "n_real"}`` each); empty where nothing
    is measured, and where the file is missing or unreadable (a warning: the list of recipes still works)."""
    path = scores_path()
    if not path.is_file():
        return {}
    try:
        recipes = json.loads(path.read_text()).get("recipes", {})
        return {str(k): [dict(e) for e in v] for k, v in recipes.items()}
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        log.warning(f"{path} is unreadable ({type(exc).__name__}: {exc}); recipes are listed without their scores")
        return {}


# what a measured score does not depend on: words, where the run writes, and the data (a benchmark names its own
# data set, keeping only the recipe's augmentation)
NOT_TRAINING = ("name", "description", "expected_time", "output", "eval")


def fingerprint(path: Path) -> str:
    """A short hash of what a recipe file trains (its sections as parsed, without words, output, evaluation and the
    data besides its augmentation): a score measured with another fingerprint was measured on another version."""
    raw = yaml.safe_load(Path(path).read_text())
    raw = raw if isinstance(raw, dict) else {}
    kept = {k: v for k, v in raw.items() if k not in NOT_TRAINING and k != "data"}
    augment = raw["data"].get("augment") if isinstance(raw.get("data"), dict) else None
    if augment:
        kept["data.augment"] = augment
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def earlier_version(recorded: str | None, current: str | None) -> bool:
    """Whether a score recorded with fingerprint ``recorded`` was measured on another version of the recipe than the
    one whose fingerprint is ``current`` now (unknown on either side: not marked)."""
    return bool(recorded and current and recorded != current)


def measured_text(entries: list[dict], current: str | None = None) -> str:
    """A recipe's measured FIDs as ``ganzoo recipes`` shows them, one a line: ``FID@N value, budget, data set``
    (the budget in images seen, and in CPU-minutes where measured); with ``current`` (the recipe's fingerprint now),
    a score measured on another version of it says so."""
    def n(value) -> str:
        return f"{value // 1000}k" if value >= 1000 and value % 1000 == 0 else f"{value:,}"

    def budget(e) -> str:
        parts = ([f"{e['kimg']:g}k img"] if e.get("kimg") is not None else []) + (
            [f"{e['minutes']:g} min"] if e.get("minutes") is not None else [])
        return " = ".join(parts) or "?"

    def older(e) -> str:
        return " (an earlier version)" if earlier_version(e.get("fingerprint"), current) else ""

    try:
        return "\n".join(f"{e['fid']:.1f} @{n(int(e['n']))}, {budget(e)}, {e['data_set']}{older(e)}"
                         for e in entries) or "-"
    except (KeyError, TypeError, ValueError, AttributeError):
        return "?"


def resolve(recipe: str | Path) -> Path:
    """A recipe file as given, or else the shipped recipe of that name."""
    path = Path(recipe)
    if path.is_file():
        return path
    shipped = shipped_recipes()
    name = str(recipe).removesuffix(".yaml")
    if name in shipped and not path.exists():
        return shipped[name]
    if path.is_dir():
        inside = RunFiles(path).recipe
        hint = f" (a run folder: its recipe is {inside})" if inside.is_file() else ""
        raise GanzooError(f"{recipe} is a folder, not a recipe file{hint}")
    raise GanzooError(f"recipe file not found: {recipe}{did_you_mean(name, shipped)}; a file, or a shipped recipe: "
                      f"{', '.join(shipped)} (ganzoo recipes)")


def describe(path: Path) -> dict:
    """What ``ganzoo recipes`` shows of one recipe file (read as plain YAML: no plugin needed)."""
    raw = yaml.safe_load(path.read_text()) or {}
    description = str(raw.get("description", ""))
    experiment, _, rest = description.partition(" - ")
    if not experiment.strip().replace("Reference ", "").split("/")[0].startswith("E"):
        experiment, rest = "", description
    section = lambda key: raw.get(key) if isinstance(raw.get(key), dict) else {}  # noqa: E731
    g, c = section("generator").get("name", "?"), section("critic").get("name", "?")
    return {"name": path.stem, "experiment": experiment.replace("Reference ", "").strip(),
            "model": g if g == c else f"{g} / {c}", "objective": section("objective").get("name", "?"),
            "data": section("data").get("name", "toyfaces"), "expected_time": str(raw.get("expected_time", "")),
            "description": rest.strip(), "reference": path.parent.name == "reference"}


def init(name: str, source: str | None = None, directory: Path = Path("."), force: bool = False) -> Path:
    """Copy a shipped recipe (``source``, default ``name``) to ``DIRECTORY/NAME.yaml`` with ``name: NAME``, to edit."""
    import re

    name = name.removesuffix(".yaml")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise GanzooError(f"init {name!r}: a recipe name is letters, digits, '_', '.' and '-', starting with a letter or digit "
                          "(it names the file and the run folder)")
    src = resolve(source or name)
    target = Path(directory) / f"{name}.yaml"
    if target.exists() and not force:
        raise GanzooError(f"{target} exists: pick another name or pass --force to replace it")
    text = src.read_text()
    if source is not None:
        lines = text.splitlines(keepends=True)
        if any(line.startswith("name:") for line in lines):
            lines = [f"name: {name}\n" if line.startswith("name:") else line for line in lines]
        else:
            lines.insert(0, f"name: {name}\n")
        text = "".join(lines)
    target.write_text(text)
    return target
