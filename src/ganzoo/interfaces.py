"""The component interfaces: Generator, Critic, Objective (and Regularizer, Dataset, Callback).

Every component class carries three class attributes that the registry and
``ganzoo list`` read:

* ``name``: the key a recipe uses,
* ``description``: one line,
* ``Params``: a pydantic model of its recipe parameters (with defaults).
"""

from __future__ import annotations

import types
import typing
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn


def _allows_bool(annotation) -> bool:
    if annotation is bool or annotation is Any:
        return True
    return any(_allows_bool(a) for a in typing.get_args(annotation)) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else False


@field_validator("*", mode="before")
@classmethod
def no_bool_as_number(cls, value, info):
    """``true`` is not 1: a boolean is refused where the field does not take one (pydantic's lax mode would convert it)."""
    if isinstance(value, bool) and info.field_name in cls.model_fields and not _allows_bool(cls.model_fields[info.field_name].annotation):
        raise ValueError(f"expected {_type_word(cls.model_fields[info.field_name].annotation)}, not a boolean")
    return value


def _allows_none(annotation) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


def _type_word(annotation) -> str:
    words = {int: "an integer", float: "a number", str: "a string"}
    if annotation in words:
        return words[annotation]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and args:
        return " or ".join(_type_word(a) for a in args)
    return "a " + (getattr(annotation, "__name__", None) or str(annotation).replace("typing.", ""))


FLOAT32_MAX = float(torch.finfo(torch.float32).max)
INT64_MAX = 2**63 - 1


def _out_of_range(value):
    """Why ``value`` (or a number inside it) cannot reach a backend: not finite, beyond float32 or int64; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"{value} is not a finite number"
        if abs(value) > FLOAT32_MAX:
            return f"{value:g} is beyond what float32 holds (about 3.4e38): the optimizer and the networks would overflow"
    if isinstance(value, int) and abs(value) > INT64_MAX:
        return f"{value} is beyond what a 64-bit integer holds"
    if isinstance(value, (tuple, list)):
        return next((why for why in map(_out_of_range, value) if why), None)
    return None


@field_validator("*", mode="after")
@classmethod
def finite_numbers(cls, value):
    """Every number is one the backends can hold: finite, within float32 (floats) and int64 (integers)."""
    why = _out_of_range(value)
    if why:
        raise ValueError(why)
    return value


class Params(BaseModel):
    """Base for component parameter models: unknown keys are errors, booleans are not numbers, numbers are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _no_bool_as_number = no_bool_as_number
    _finite_numbers = finite_numbers


class OptimizerSpec(Params):
    """An optimizer and its hyper-parameters."""

    name: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    lr: float = Field(2e-4, gt=0, allow_inf_nan=False)
    betas: tuple[float, float] = Field((0.5, 0.999), description="each in [0, 1)")
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0)

    @field_validator("betas")
    @classmethod
    def _betas(cls, value):
        if not all(0 <= b < 1 for b in value):
            raise ValueError(f"each beta must be in [0, 1), got {list(value)}")
        return value

    def build(self, parameters) -> torch.optim.Optimizer:
        if self.name == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)
        if self.name == "adamw":
            return torch.optim.AdamW(parameters, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)
        if self.name == "rmsprop":
            return torch.optim.RMSprop(parameters, lr=self.lr, weight_decay=self.weight_decay, momentum=self.momentum)
        return torch.optim.SGD(parameters, lr=self.lr, weight_decay=self.weight_decay, momentum=self.momentum)


class ImageShape(BaseModel):
    """What every architecture is built for: image size, channels, latent size."""

    model_config = ConfigDict(frozen=True)

    resolution: int
    channels: int
    latent_dim: int


class Generator(nn.Module):
    """Maps a latent batch ``(N, latent_dim)`` to images ``(N, C, H, W)`` in [-1, 1].

    ``sample_latent`` draws the latent batch: the training loop and ``ganzoo.generate`` call it, so a generator
    with another prior (uniform, a mixture) overrides it and nothing else.

    Noise inputs (StyleGAN-style per-pixel noise) are drawn from torch's global RNG (``torch.randn``): ganzoo
    checkpoints that stream and runs every forward outside the training step (grids, evaluation, samples, the
    pre-flight check) under a fork of it, so a resumed run stays bit-exact. A generator with an intermediate
    latent space (a mapping network) defines ``mapping(z) -> w`` and ``synthesis(w) -> images`` with
    ``forward(z) == synthesis(mapping(z))``, and keeps the average ``w`` in a buffer ``w_avg``: sampling's
    ``truncation`` then pulls ``w`` toward ``w_avg`` (``w_avg + psi * (w - w_avg)``) instead of cutting ``z``.
    """

    def __init__(self, shape: ImageShape):
        super().__init__()
        self.shape = shape

    @property
    def latent_dim(self) -> int:
        return self.shape.latent_dim

    def sample_latent(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        return torch.randn(n, self.shape.latent_dim, generator=generator, device=device)

    @property
    def w_space(self) -> bool:
        """Whether it has an intermediate latent space: ``mapping``, ``synthesis`` and a ``w_avg`` buffer (what
        truncation in w, projection in w and the path-length penalty use). A generator that has them under other
        conditions overrides this."""
        return callable(getattr(self, "mapping", None)) and callable(getattr(self, "synthesis", None)) and hasattr(self, "w_avg")


class Critic(nn.Module):
    """Maps images ``(N, C, H, W)`` to one raw score (a logit) per image, shape ``(N,)``.

    Critics never end in a sigmoid: objectives that need probabilities use
    the numerically stable ``*_with_logits`` forms.

    A critic that splits into ``features(x) -> (N, feature_dim)`` and ``score(features) -> (N,)`` (and sets
    ``feature_dim``) can be conditioned by projection and by an auxiliary classifier (``condition:``); the
    built-in ones do. A critic with its own auxiliary loss sets ``has_aux = True`` and takes
    ``forward(x, [y,] aux="real"|"fake")``, returning ``(scores, aux_loss or None)``: the loop adds that loss
    to the critic's loss (and, for ``"fake"`` batches in the generator step, to the generator's).
    """

    feature_dim: int | None = None
    has_aux: ClassVar[bool] = False

    def __init__(self, shape: ImageShape):
        super().__init__()
        self.shape = shape

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not split into features() and score()")

    def score(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not split into features() and score()")


class Configurable:
    """What every component kind shares: ganzoo makes an instance with the recipe's validated params
    (``Kind(params)``; ``None`` means all defaults) and calls its methods. Class attributes:

    * ``name``: the key a recipe uses, ``description``: one line for ``ganzoo list``,
    * ``Params``: a pydantic model (derived from ``ganzoo.Params``) of its recipe parameters.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None):
        self.params = params if params is not None else type(self).Params()


class GeneratorBuilder(Configurable):
    """A generator component: ``Kind(params)``, then ``build(shape)`` returns a ``ganzoo.Generator`` for that
    shape (``ValueError`` with a reason for a shape it does not support). ``initialize(module)`` is its own weight
    initialisation, applied right after building unless the recipe's ``init`` says otherwise."""

    def build(self, shape: ImageShape) -> Generator:
        raise NotImplementedError

    def initialize(self, module: nn.Module) -> None:
        """Initialise a freshly built network; the default keeps PyTorch's own layer initialisation."""


class CriticBuilder(Configurable):
    """A critic component: ``Kind(params)``, then ``build(shape)`` returns a ``ganzoo.Critic`` for that shape.
    Any generator pairs with any critic; a family (``dcgan``, ``resnet``) registers one of each under one name."""

    def build(self, shape: ImageShape) -> Critic:
        raise NotImplementedError

    def initialize(self, module: nn.Module) -> None:
        """Initialise a freshly built network; the default keeps PyTorch's own layer initialisation."""

    def regularizers(self) -> list[dict]:
        """Regularizers that are part of the critic's definition (Projected GAN's DiffAugment and spectral norm), as
        recipe entries (``{"name": ..., **params}``), like ``Objective.regularizers()``."""
        return []


class Objective(Configurable):
    """A pair of losses computed from the critic's scores; it knows nothing of loops or optimizers.

    * ``critic_loss(real_scores, fake_scores)`` and ``generator_loss(fake_scores, real_scores)`` return scalar
      tensors. ``real_scores`` in the generator step are the current critic's scores of the last real batch
      (no gradient) when the class sets ``generator_uses_real = True`` (relativistic losses), else ``None``.
    * ``n_critic``: default critic steps per generator step (the recipe's ``train.n_critic`` is the one place
      that decides; it defaults to this),
    * ``default_optimizer``: used for a network whose ``optim.*`` the recipe leaves out,
    * ``regularizers()``: critic constraints that are part of the objective's definition (WGAN-GP's gradient
      penalty, WGAN's weight clipping), as recipe entries (``{"name": ..., **params}``); ganzoo builds them
      like the recipe's own ``regularizers:`` and puts them first.
    """

    n_critic: ClassVar[int] = 1
    generator_uses_real: ClassVar[bool] = False
    default_optimizer: ClassVar[OptimizerSpec] = OptimizerSpec()

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_scores: torch.Tensor, real_scores: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def regularizers(self) -> list[dict]:
        return []

    def critic_wins(self, d_real: float, d_fake: float) -> bool:
        """True when mean scores show the critic separating real and fake outright (the collapse monitor's
        first signal). Objectives with unbounded scores (WGAN) cannot say, and return False."""
        return False


class Regularizer(Configurable):
    """The one route for every constraint on the critic (spectral norm, R1, gradient penalty, weight clipping,
    DiffAugment), combined with any objective. It may:

    * ``setup(critic)``: change the critic once, right after it is built and initialised
      (spectral norm); checkpoints then hold the changed critic,
    * ``augment(images)``: transform every batch the critic sees, real and fake, in the critic
      and the generator steps; it must be differentiable (DiffAugment),
    * ``penalty(critic, real, fake)``: a scalar added to the critic loss on critic steps where
      ``critic_step % every == 0`` (R1, gradient penalty; a lazy penalty scales itself by ``every``),
    * ``score_penalty(critic, real, fake, real_scores, fake_scores)``: like ``penalty``, on the same critic steps,
      with the critic's scores of this update as well (with their graph): a term on the scores themselves (LeCam)
      or one that compares them with the scores of other views of the same images (consistency regularization),
    * ``after_critic_step(critic)``: change the critic's weights after each critic update (weight clipping),
    * ``observe(real_scores, fake_scores)``: see the critic's scores of each critic update (detached), e.g. to
      adapt an augmentation probability to how well the critic separates them (ADA).

    ``real`` and ``fake`` reach ``penalty`` after every regularizer's ``augment``; ``fake`` was generated under
    ``no_grad`` (a penalty differentiates through the critic only).

    A regularizer with ``target = "generator"`` acts on the generator's step instead (path-length regularization):
    ``setup(generator)`` once, and ``generator_penalty(generator, z, fake)`` on generator steps where
    ``step % every == 0``: ``generator`` is the training generator (labels bound for a conditional one), ``z`` the
    step's latent batch and ``fake`` the images generated from it (with their graph); the scalar is added to the
    generator loss. Every penalty is logged under the regularizer's name.

    A regularizer that keeps state across a resume (ADA's probability) gives ``state_key`` and ``state()`` /
    ``load_state(dict)`` (JSON), saved in every checkpoint. One that needs several images per step to act (mode
    seeking compares pairs) says so with ``min_batch``: a recipe whose ``train.batch_size`` is smaller is refused.
    Like an objective, it knows nothing of loops or optimizers.
    """

    every: ClassVar[int] = 1
    min_batch: ClassVar[int] = 1
    target: ClassVar[Literal["critic", "generator"]] = "critic"
    state_key: ClassVar[str | None] = None

    def setup(self, critic: nn.Module) -> None:
        pass

    def generator_penalty(self, generator: nn.Module, z: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        return None

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        return None

    def score_penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, real_scores: torch.Tensor,
                      fake_scores: torch.Tensor) -> torch.Tensor | None:
        return None

    def after_critic_step(self, critic: nn.Module) -> None:
        pass

    def observe(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> None:
        pass


@dataclass
class DataReport:
    """What a dataset met while loading: filled by the dataset, logged and cached by the core."""

    source: str = ""
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    bad_files: list[str] = field(default_factory=list)  # "name (why)" for unreadable images
    source_sizes: Counter = field(default_factory=Counter)  # "WxH" -> count, before resizing
    upscaled: int = 0

    def skip(self, reason: str, name: str | None = None, why: str | None = None) -> None:
        self.skipped[reason] += 1
        if name is not None:
            self.bad_files.append(f"{name} ({why})" if why else name)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "skipped": dict(self.skipped), "bad_files": self.bad_files,
                "source_sizes": dict(self.source_sizes), "upscaled": self.upscaled}

    @classmethod
    def from_dict(cls, d: dict) -> "DataReport":
        return cls(d["source"], Counter(d["skipped"]), list(d["bad_files"]), Counter(d["source_sizes"]), d["upscaled"])


class Dataset(Configurable):
    """A source of training images.

    ``load(resolution, channels, report)`` returns every image as one uint8 tensor ``(N, C, H, W)`` at the
    requested resolution and channel count, and notes skipped files in the ``report``; the core caches,
    batches, normalises and augments it. A labelled dataset returns ``(images, labels)`` instead: ``labels``
    maps each attribute (``"digit"``, ``"hair"``) to one class name per image (``None`` where an image has
    none); a recipe's ``data.labels`` picks the attributes that condition the model.

    ``check()`` raises for a missing source without decoding (``ganzoo check`` agrees with ``ganzoo run``).
    ``fingerprint()`` says what identifies the source (a digest of its bytes), as JSON-able data: with it the
    core caches the decoded tensor and reuses it until the source or the parameters change. ``None`` (the
    default) disables caching.
    """

    def load(self, resolution: int, channels: int, report: DataReport) -> torch.Tensor:
        raise NotImplementedError

    def fingerprint(self) -> dict | None:
        return None

    def check(self) -> None:
        """Raise ``GanzooError`` if the source is missing, without decoding anything (``ganzoo check`` calls it)."""


class Conditioning(Configurable):
    """How the labels of ``data.labels`` condition the networks: it wraps what the architecture builds.

    * ``generator_inputs(labels)`` / ``critic_inputs(labels)``: extra latent dimensions / extra image channels the
      architecture is built with (input concatenation); 0 by default,
    * ``wrap_generator(generator, labels)``: a ``ganzoo.ConditionalGenerator`` (``forward(z, y)``),
    * ``wrap_critic(critic, labels)``: a ``ganzoo.ConditionalCritic`` (``forward(x, y)``; with ``has_aux``, also
      ``aux="real"|"fake"``, returning ``(scores, aux_loss)``: an auxiliary classifier's loss).

    ``labels`` is the ``ganzoo.LabelSpace`` (attributes, their classes); ``y`` is a long tensor ``(N, A)`` of
    class codes. Like an objective it knows nothing of loops or optimizers.
    """

    def generator_inputs(self, labels) -> int:
        return 0

    def critic_inputs(self, labels) -> int:
        return 0

    def wrap_generator(self, generator: Generator, labels) -> Generator:
        raise NotImplementedError

    def wrap_critic(self, critic: Critic, labels) -> Critic:
        raise NotImplementedError


class Callback(Configurable):
    """An observer of a training run; a recipe names installed ones under ``callbacks:``.

    ganzoo's own concerns (metrics, grids, the collapse monitor, evaluation, checkpoints, the time limit) are
    observers of this same shape. Each event gets the ``ganzoo.Run`` (recipe, run folder, networks, step,
    ``run.log``, ``run.request_stop``); the order of observers and of events is in ``ganzoo.observers``:

    * ``on_start(run)``: once, before the first step (after a resume: its saved state is loaded first),
    * ``on_step(run, record)``: after each step; ``record`` is the step's ``StepRecord`` (named values as tensors:
      reading one with ``float()`` waits for the device, so do it in ``on_log``),
    * ``write_line(run)``: after every observer's ``on_step``: the metrics observer writes the step's line here
      (then sends ``on_log``); other observers rarely need it,
    * ``after_step(run)``: last in each step, after the line: act on the step as it ended (the checkpoint observer
      saves here, so a stop asked for anywhere in the step is saved at that step),
    * ``on_log(run, line)``: each logged step (``train.log_every``), with the metrics line as written to
      metrics.jsonl (floats, values given to ``run.log`` included),
    * ``on_grid(run, step, images)``: each fixed-latent grid (uint8 images),
    * ``on_eval(run, result)``: each in-training evaluation (``eval.every``),
    * ``on_end(run)``: once, after the last step of a run that ended normally (``run.stop`` holds the reason of
      an early end),
    * ``close()``: always, however the run ended (an error, Ctrl-C): release files and connections here.

    A callback that keeps state across a resume gives ``state_key`` and ``state()`` / ``load_state(dict)``
    (JSON), saved in every checkpoint. ``check()`` raises ``GanzooError`` for what would stop it later (a missing
    package): ``ganzoo check`` and ``run`` call it before any data is decoded.
    """

    state_key: ClassVar[str | None] = None

    def check(self) -> None:
        pass

    def on_start(self, run) -> None:
        pass

    def on_step(self, run, record) -> None:
        pass

    def write_line(self, run) -> None:
        pass

    def after_step(self, run) -> None:
        pass

    def on_log(self, run, line: dict) -> None:
        pass

    def on_grid(self, run, step: int, images: torch.Tensor) -> None:
        pass

    def on_eval(self, run, result: dict) -> None:
        pass

    def on_end(self, run) -> None:
        pass

    def close(self) -> None:
        pass


WRAPPERS = ("ddp", "ema", "compiled", "conditioning")


def unwrap(net: nn.Module, through=WRAPPERS) -> nn.Module:
    """The network under the wrappers ganzoo puts around one, those named in ``through``: ``ddp``
    (DistributedDataParallel), ``ema`` (the weight average, an ``AveragedModel``), ``compiled`` (``torch.compile``)
    and ``conditioning`` (``ConditionalGenerator``/``ConditionalCritic``: the architecture's own network)."""
    from torch.optim.swa_utils import AveragedModel

    while True:
        if "ddp" in through and isinstance(net, nn.parallel.DistributedDataParallel):
            net = net.module
        elif "ema" in through and isinstance(net, AveragedModel):
            net = net.module
        elif "compiled" in through and isinstance(getattr(net, "_orig_mod", None), nn.Module):
            net = net._orig_mod
        elif "conditioning" in through and getattr(type(net), "wraps_network", False):
            net = net.inner
        else:
            return net

