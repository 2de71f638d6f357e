"""R3GAN's generator and critic (Huang et al., "The GAN is dead; long live the GAN! A Modern GAN Baseline", NeurIPS 2024).

Both are ConvNeXt-style residual nets without normalisation layers and without noise inputs. Every residual block is
an inverted bottleneck ``x + conv1x1(act(grouped conv3x3(act(conv1x1(x)))))`` with leaky ReLU 0.2, a hidden width of
``channels * expansion`` and ``group_size`` channels per group in the 3x3 conv. Biases are kept.

* Generator: a learned ``start x start`` basis (``start, stages = ganzoo.pyramid(resolution)``: 4x4), one map per
  channel, scaled per channel by ``Linear(z)`` (R3GAN's generative basis: ``basis[c] * linear(z)[c]``), then
  ``stages + 1`` stages of ``blocks_per_stage`` blocks, each stage after the first entered through an x2 upsampling
  transition, then a 1x1 conv to the image channels. ``output: tanh`` (the default) squashes it into [-1, 1] as
  ganzoo's generators do; ``output: linear`` is R3GAN's own raw output (images are clamped only when saved).
* Critic: a 1x1 conv from the image, the mirrored stages, each but the last left through an x2 downsampling
  transition, then at ``start x start`` a depthwise conv over the whole map (R3GAN's discriminative basis) gives the
  features ``(N, C)``; ``score`` is a Linear to one logit. The features/score split supports projection and
  auxiliary-classifier conditioning (projection with ``generator: concat``: there is no batch norm to condition).
* Transitions: separable [1, 2, 1] low-pass resampling (x2 up = linear interpolation, x2 down = blur then keep every
  other pixel; borders replicate, so a constant image stays constant), with a 1x1 conv where the width changes (in
  the generator before upsampling, in the critic after downsampling: both at the coarser size, where it is cheaper).
* Initialisation (``initialize``): He/Kaiming normal for leaky ReLU on the first two convs of every block, scaled by
  the fix-up factor ``L ** (-1 / (2 m - 2))`` (``L`` residual blocks in the net, ``m = 3`` convs per block); each
  block's last conv zero, so every block starts as the identity; the other layers variance-preserving (gain 1);
  biases zero. Pair it with ``rpgan`` (or ``ragan``/``hinge``) and zero-centred penalties (``r1``), as R3GAN does.
  Not with ``spectral_norm``: a zero weight has no spectral norm to divide by.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Critic, CriticBuilder, Generator, GeneratorBuilder, ImageShape, Params, pyramid

SLOPE = 0.2  # leaky ReLU's negative slope
CONVS_PER_BLOCK = 3  # m of the fix-up factor
FILTER = (1.0, 2.0, 1.0)  # the low-pass filter of every resampling, normalised to sum 1
SUPPORTED = (16, 32, 64, 128)


class R3GANCriticParams(Params):
    base_channels: int = Field(64, ge=1, description="channels at full resolution; doubled per stage going coarser")
    max_channels: int = Field(512, ge=1, description="cap on any stage's channels")
    blocks_per_stage: int = Field(2, ge=1, le=16, description="residual blocks at every resolution")
    expansion: int = Field(2, ge=1, le=8, description="inverted bottleneck: a block's hidden width is its channels times this")
    group_size: int = Field(16, ge=1, description="channels per group of the 3x3 grouped conv (cardinality); lowered to the "
                                                  "nearest divisor of the hidden width when it does not divide it")


class R3GANGeneratorParams(R3GANCriticParams):
    output: Literal["tanh", "linear"] = Field("tanh", description="tanh: squashed into [-1, 1]; linear: R3GAN's raw 1x1 "
                                                                   "conv output (clamped only when images are saved)")


def _widths(base: int, cap: int, stages: int) -> list[int]:
    """Channels of each stage, coarsest (start x start) first: ``stages + 1`` of them."""
    return [min(base * 2**i, cap) for i in reversed(range(stages + 1))]


def _group_size(hidden: int, wanted: int) -> int:
    size = min(wanted, hidden)
    while hidden % size:
        size -= 1
    return size


def _taps() -> list[float]:
    total = sum(FILTER)
    return [t / total for t in FILTER]


def _every_other(x: torch.Tensor, dim: int, start: int, count: int) -> torch.Tensor:
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, start + 2 * (count - 1) + 1, 2)
    return x[tuple(index)]


def _up_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x2 along ``dim``: zeros inserted between samples, then the low-pass filter with gain 2 (replicated border)."""
    taps = [2 * t for t in _taps()]  # [0.5, 1, 0.5]: even outputs keep the sample, odd ones average the two beside it
    nxt = torch.cat([x.narrow(dim, 1, x.shape[dim] - 1), x.narrow(dim, x.shape[dim] - 1, 1)], dim)  # x[i + 1], replicated
    even = taps[1] * x
    odd = taps[2] * x + taps[0] * nxt
    out = torch.stack([even, odd], dim + 1)  # (..., n, 2, ...) -> (..., 2n, ...)
    shape = list(x.shape)
    shape[dim] *= 2
    if dim != 0:
        shape[0] = -1  # no batch size baked in (an exported graph keeps a dynamic batch)
    return out.reshape(shape)


def downsample(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/2, W/2): separable [1, 2, 1] / 4 blur (replicated border), then every other pixel."""
    taps = _taps()
    r = len(taps) // 2
    x = F.pad(x, (r, r, r, r), mode="replicate")
    for dim in (2, 3):
        count = (x.shape[dim] - 2 * r) // 2
        x = sum(w * _every_other(x, dim, k, count) for k, w in enumerate(taps))
    return x


def upsample(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, 2H, 2W): bilinear interpolation, i.e. zero insertion and the separable [1, 2, 1] / 2 filter."""
    return _up_axis(_up_axis(x, 2), 3)


class Block(nn.Module):
    """x + conv1x1(act(grouped conv3x3(act(conv1x1(x))))): an inverted bottleneck without normalisation."""

    def __init__(self, channels: int, expansion: int, group_size: int):
        super().__init__()
        hidden = channels * expansion
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.mix = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden // _group_size(hidden, group_size))
        self.project = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        h = F.leaky_relu(self.expand(x), SLOPE)
        h = F.leaky_relu(self.mix(h), SLOPE)
        return x + self.project(h)

    def reset_parameters(self, n_blocks: int) -> None:
        scale = n_blocks ** (-1 / (2 * CONVS_PER_BLOCK - 2))  # the fix-up factor
        for conv in (self.expand, self.mix):
            _he(conv, nn.init.calculate_gain("leaky_relu", SLOPE) * scale)
        nn.init.zeros_(self.project.weight)  # the block starts as the identity
        nn.init.zeros_(self.project.bias)


class Transition(nn.Module):
    """x2 resampling between stages, with a 1x1 conv where the width changes (applied at the coarser size)."""

    def __init__(self, cin: int, cout: int, direction: Literal["up", "down"]):
        super().__init__()
        self.direction = direction
        self.conv = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        if self.direction == "up":
            return upsample(x if self.conv is None else self.conv(x))
        x = downsample(x)
        return x if self.conv is None else self.conv(x)


def _he(layer: nn.Module, gain: float) -> None:
    """Variance-scaled normal weights: std = gain / sqrt(fan_in); zero bias."""
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        layer.weight.normal_(0.0, gain / math.sqrt(fan_in))
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()


def _stage(width: int, p: R3GANCriticParams) -> list[Block]:
    return [Block(width, p.expansion, p.group_size) for _ in range(p.blocks_per_stage)]


class R3GANGenerator(Generator):
    def __init__(self, p: R3GANGeneratorParams, shape: ImageShape):
        super().__init__(shape)
        start, stages = pyramid(shape.resolution)
        widths = _widths(p.base_channels, p.max_channels, stages)
        self.squash = p.output == "tanh"
        self.basis = nn.Parameter(torch.empty(widths[0], start, start))
        self.modulation = nn.Linear(shape.latent_dim, widths[0])
        self.stages = nn.ModuleList(
            nn.Sequential(*([Transition(widths[i - 1], w, "up")] if i else []), *_stage(w, p)) for i, w in enumerate(widths))
        self.to_image = nn.Conv2d(widths[-1], shape.channels, 1)

    def forward(self, z):
        x = self.basis.unsqueeze(0) * self.modulation(z)[:, :, None, None]  # the basis, scaled per channel by z
        for stage in self.stages:
            x = stage(x)
        x = self.to_image(x)
        return torch.tanh(x) if self.squash else x

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.basis.normal_(0.0, 1.0)
        _he(self.modulation, 1.0)
        _init_rest(self, skip=(self.modulation,))


class R3GANCritic(Critic):
    def __init__(self, p: R3GANCriticParams, shape: ImageShape):
        super().__init__(shape)
        start, stages = pyramid(shape.resolution)
        widths = _widths(p.base_channels, p.max_channels, stages)[::-1]  # finest first
        self.from_image = nn.Conv2d(shape.channels, widths[0], 1)
        self.stages = nn.ModuleList(
            nn.Sequential(*_stage(w, p), *([Transition(w, widths[i + 1], "down")] if i < stages else []))
            for i, w in enumerate(widths))
        c = widths[-1]
        self.basis = nn.Conv2d(c, c, start, groups=c)  # a depthwise conv over the whole start x start map
        self.head = nn.Linear(c, 1)
        self.feature_dim = c

    def features(self, x):
        x = self.from_image(x)
        for stage in self.stages:
            x = stage(x)
        return self.basis(x).flatten(1)

    def score(self, features):
        return self.head(features).view(-1)

    def forward(self, x):
        return self.score(self.features(x))

    def reset_parameters(self) -> None:
        _init_rest(self)


def _init_rest(net: nn.Module, skip=()) -> None:
    """Every block with the fix-up scheme; every other conv and linear variance-preserving (gain 1), zero bias."""
    blocks = [m for m in net.modules() if isinstance(m, Block)]
    inside = {id(layer) for b in blocks for layer in b.modules()}
    for b in blocks:
        b.reset_parameters(len(blocks))
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in inside and all(m is not s for s in skip):
            _he(m, 1.0)


def _check(resolution: int) -> None:
    if resolution not in SUPPORTED:
        raise ValueError(f"resolution {resolution} is not supported: r3gan builds {', '.join(map(str, SUPPORTED))} px "
                         "(4x4 times a power of two)")


def _initialize(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (R3GANGenerator, R3GANCritic)):
            m.reset_parameters()


class R3GANGeneratorBuilder(GeneratorBuilder):
    name = "r3gan"
    description = "R3GAN norm-free ConvNeXt-style generator (Huang et al. 2024)"
    Params = R3GANGeneratorParams

    def build(self, shape):
        _check(shape.resolution)
        return R3GANGenerator(self.params, shape)

    def initialize(self, module):
        _initialize(module)


class R3GANCriticBuilder(CriticBuilder):
    name = "r3gan"
    description = "R3GAN norm-free ConvNeXt-style critic (Huang et al. 2024)"
    Params = R3GANCriticParams

    def build(self, shape):
        _check(shape.resolution)
        return R3GANCritic(self.params, shape)

    def initialize(self, module):
        _initialize(module)


@ganzoo.hookimpl
def register_generators(register):
    register(R3GANGeneratorBuilder)


@ganzoo.hookimpl
def register_critics(register):
    register(R3GANCriticBuilder)
