"""The component interfaces: Generator, Critic, Objective (and Regularizer, Dataset).

Every component class carries three class attributes that the registry and
``ganzoo list`` read:

* ``name``: the key a recipe uses,
* ``description``: one line,
* ``Params``: a pydantic model of its recipe parameters (with defaults).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class Params(BaseModel):
    """Base for component parameter models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OptimizerSpec(Params):
    """An optimizer and its hyper-parameters."""

    name: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0)

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
    """Maps a latent batch ``(N, latent_dim)`` to images ``(N, C, H, W)`` in [-1, 1]."""

    def __init__(self, shape: ImageShape):
        super().__init__()
        self.shape = shape

    @property
    def latent_dim(self) -> int:
        return self.shape.latent_dim

    def sample_latent(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        return torch.randn(n, self.shape.latent_dim, generator=generator, device=device)


class Critic(nn.Module):
    """Maps images ``(N, C, H, W)`` to one raw score (a logit) per image, shape ``(N,)``.

    Critics never end in a sigmoid: objectives that need probabilities use
    the numerically stable ``*_with_logits`` forms.
    """

    def __init__(self, shape: ImageShape):
        super().__init__()
        self.shape = shape


class Architecture:
    """A generator/critic family that builds for any supported image shape."""

    name: ClassVar[str]
    description: ClassVar[str]
    GeneratorParams: ClassVar[type[Params]] = Params
    CriticParams: ClassVar[type[Params]] = Params

    # Both builders raise ``ValueError`` with a reason for an unsupported shape.
    @classmethod
    def build_generator(cls, params: Params, shape: ImageShape) -> Generator:
        raise NotImplementedError

    @classmethod
    def build_critic(cls, params: Params, shape: ImageShape) -> Critic:
        raise NotImplementedError


class Objective:
    """A pair of losses computed from the critic's scores.

    An objective knows nothing of loops or optimizers. It may declare:

    * ``n_critic``: default critic steps per generator step,
    * ``clip_value``: clip every critic weight to [-c, c] after each critic step,
    * ``default_optimizer``: used for both networks when the recipe names none,

    and may add a ``penalty`` that needs the critic and the real/fake batches
    (e.g. a gradient penalty), which the loop adds to the critic loss.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[Params]] = Params
    default_optimizer: ClassVar[OptimizerSpec] = OptimizerSpec()

    def __init__(self, params: Params | None = None):
        self.params = params if params is not None else type(self).Params()

    @property
    def n_critic(self) -> int:
        return 1

    @property
    def clip_value(self) -> float | None:
        return None

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        return None

    def critic_wins(self, d_real: float, d_fake: float) -> bool:
        """True when mean scores show the critic separating real and fake outright (the collapse monitor's
        first signal). Objectives with unbounded scores (WGAN) cannot say, and return False."""
        return False


class Regularizer:
    """A technique that constrains the critic, combined with any objective. It may:

    * ``setup(critic)``: change the critic once, right after it is built and initialised
      (spectral norm); checkpoints then hold the changed critic,
    * ``augment(images)``: transform every batch the critic sees, real and fake, in the critic
      and the generator steps; it must be differentiable (DiffAugment),
    * ``penalty(critic, real, fake)``: a term added to the critic loss on critic steps where
      ``critic_step % every == 0`` (R1; a lazy penalty scales itself by ``every``).

    Like an objective, it knows nothing of loops or optimizers.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None):
        self.params = params if params is not None else type(self).Params()

    @property
    def every(self) -> int:
        return 1

    def setup(self, critic: nn.Module) -> None:
        pass

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        return None


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


class Dataset:
    """A source of training images.

    ``load`` returns every image as one uint8 tensor ``(N, C, H, W)`` at the
    requested resolution and channel count, and notes skipped files in the
    ``report``; the core caches, batches, normalises and augments it.

    ``fingerprint`` says what identifies the source (a digest of its bytes):
    with it the core caches the decoded tensor and reuses it until the
    source or the parameters change. ``None`` (the default) disables caching.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[Params]] = Params

    @classmethod
    def load(cls, params: Params, resolution: int, channels: int, report: DataReport) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def fingerprint(cls, params: Params) -> dict | None:
        return None
