"""Residual generator and critic (SNGAN, Miyato et al. 2018; BigGAN's blocks, Brock et al. 2019).

Generator: z -> Linear -> 4x4 (or 7x7, ...) -> residual up-blocks (BN, ReLU, x2 nearest, 3x3 conv, BN, ReLU, 3x3
conv; 1x1 conv shortcut) -> BN, ReLU, 3x3 conv, tanh. Critic: residual down-blocks (ReLU, 3x3 conv, ReLU, 3x3
conv, 2x2 average pool; 1x1 conv shortcut), ReLU, global sum pool -> features -> Linear score. The critic has no
normalisation: use it with the spectral_norm regularizer (and hinge loss) as SNGAN did. Its features/score split
supports projection and auxiliary-classifier conditioning.

``attention: [32]`` adds a self-attention layer (SAGAN, Zhang et al. 2019, with BigGAN's 2x2-pooled keys and
values) after the block whose output is 32x32, in the generator or the critic; its output gate starts at 0, so a
new layer begins as the identity. Without it the nets are built exactly as before.
"""

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Critic, CriticBuilder, Generator, GeneratorBuilder, ImageShape, Params, pyramid


class ResNetGeneratorParams(Params):
    base_channels: int = Field(64, ge=4, description="channels at full resolution; doubled per stage going down")
    max_channels: int = Field(512, ge=4, description="cap on any block's channels")
    attention: list[int] = Field([], description="resolutions whose block is followed by self-attention, e.g. [32]")


class ResNetCriticParams(Params):
    base_channels: int = Field(64, ge=4, description="channels of the first block; doubled per stage")
    max_channels: int = Field(512, ge=4, description="cap on any block's channels")
    attention: list[int] = Field([], description="resolutions whose block is followed by self-attention, e.g. [32]")


def _widths(base: int, cap: int, stages: int) -> list[int]:
    return [min(base * 2**i, cap) for i in reversed(range(stages + 1))]  # coarsest first, stages + 1 of them


class SelfAttention(nn.Module):
    """x + gamma * attention(x): queries and keys of C/8 channels, values of C/2, keys and values max-pooled 2x2."""

    def __init__(self, channels: int):
        super().__init__()
        self.query, self.key = nn.Conv2d(channels, channels // 8, 1), nn.Conv2d(channels, channels // 8, 1)
        self.value, self.out = nn.Conv2d(channels, channels // 2, 1), nn.Conv2d(channels // 2, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (n, c/8, hw)
        k = F.max_pool2d(self.key(x), 2).flatten(2)  # (n, c/8, hw/4)
        v = F.max_pool2d(self.value(x), 2).flatten(2)  # (n, c/2, hw/4)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (n, hw, hw/4): each position's weights over the others
        o = (v @ attn.transpose(1, 2)).view(-1, c // 2, h, w)
        return x + self.gamma * self.out(o)


def _with_attention(blocks: list[nn.Module], sizes: list[int], widths: list[int], attention: list[int]) -> nn.Sequential:
    """``blocks`` (block i outputs ``sizes[i]`` px, ``widths[i]`` channels), each followed by self-attention where
    its size is in ``attention``."""
    unknown = sorted(set(attention) - set(sizes))
    if unknown:
        raise ValueError(f"attention at {', '.join(map(str, unknown))} px: the blocks' resolutions are "
                         f"{', '.join(map(str, sizes))}")
    layers = []
    for block, size, width in zip(blocks, sizes, widths):
        layers.append(block)
        if size in attention:
            if width < 8:
                raise ValueError(f"attention at {size} px needs at least 8 channels there (has {width})")
            layers.append(SelfAttention(width))
    return nn.Sequential(*layers)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        self.first = first
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(x if self.first else F.relu(x))  # the first block sees the image itself
        h = F.avg_pool2d(self.conv2(F.relu(h)), 2)
        return h + (self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2))


class ResNetGenerator(Generator):
    def __init__(self, p: ResNetGeneratorParams, shape: ImageShape):
        super().__init__(shape)
        start, stages = pyramid(shape.resolution)
        widths = _widths(p.base_channels, p.max_channels, stages)
        self.start, self.width = start, widths[0]
        self.stem = nn.Linear(shape.latent_dim, widths[0] * start * start)
        self.blocks = _with_attention([UpBlock(a, b) for a, b in zip(widths, widths[1:])],
                                      [start * 2 ** (i + 1) for i in range(stages)], widths[1:], p.attention)
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], shape.channels, 3, padding=1), nn.Tanh())

    def forward(self, z):
        return self.out(self.blocks(self.stem(z).view(-1, self.width, self.start, self.start)))


class ResNetCritic(Critic):
    def __init__(self, p: ResNetCriticParams, shape: ImageShape):
        super().__init__(shape)
        start, stages = pyramid(shape.resolution)
        widths = _widths(p.base_channels, p.max_channels, stages)[::-1]  # finest first
        chans = [shape.channels, *widths[:-1]]
        self.blocks = _with_attention([DownBlock(a, b, first=i == 0) for i, (a, b) in enumerate(zip(chans, chans[1:]))],
                                      [shape.resolution // 2 ** (i + 1) for i in range(stages)], chans[1:], p.attention)
        self.feature_dim = chans[-1]
        self.head = nn.Linear(chans[-1], 1)

    def features(self, x):
        return F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling (SNGAN)

    def score(self, features):
        return self.head(features).view(-1)

    def forward(self, x):
        return self.score(self.features(x))


def _check(resolution: int) -> None:
    start, stages = pyramid(resolution)
    if stages < 2 or start > 8:
        raise ValueError(f"resolution {resolution} must be 3..8 times a power of two, at least 4 times (e.g. 28, 32, 64, 128)")


def _xavier(module):
    for m in module.modules():  # SNGAN's Xavier-uniform initialisation
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class ResNetGeneratorBuilder(GeneratorBuilder):
    name = "resnet"
    description = "Residual generator (BN, nearest x2; SNGAN/BigGAN blocks, Miyato et al. 2018), optional SAGAN self-attention"
    Params = ResNetGeneratorParams

    def initialize(self, module):
        _xavier(module)

    def build(self, shape):
        _check(shape.resolution)
        return ResNetGenerator(self.params, shape)


class ResNetCriticBuilder(CriticBuilder):
    name = "resnet"
    description = "BN-free residual critic with sum pooling (SNGAN/BigGAN blocks, Miyato et al. 2018), optional SAGAN self-attention"
    Params = ResNetCriticParams

    def initialize(self, module):
        _xavier(module)

    def build(self, shape):
        _check(shape.resolution)
        return ResNetCritic(self.params, shape)


@ganzoo.hookimpl
def register_generators(register):
    register(ResNetGeneratorBuilder)


@ganzoo.hookimpl
def register_critics(register):
    register(ResNetCriticBuilder)
