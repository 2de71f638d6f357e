"""Residual generator and critic (SNGAN, Miyato et al. 2018; BigGAN's blocks, Brock et al. 2019).

Generator: z -> Linear -> 4x4 (or 7x7, ...) -> residual up-blocks (BN, ReLU, x2 nearest, 3x3 conv, BN, ReLU, 3x3
conv; 1x1 conv shortcut) -> BN, ReLU, 3x3 conv, tanh. Critic: residual down-blocks (ReLU, 3x3 conv, ReLU, 3x3
conv, 2x2 average pool; 1x1 conv shortcut), ReLU, global sum pool -> features -> Linear score. The critic has no
normalisation: use it with the spectral_norm regularizer (and hinge loss) as SNGAN did. Its features/score split
supports projection and auxiliary-classifier conditioning.
"""

import torch.nn.functional as F
from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Critic, CriticBuilder, Generator, GeneratorBuilder, ImageShape, Params, pyramid


class ResNetGeneratorParams(Params):
    base_channels: int = Field(64, ge=4, description="channels at full resolution; doubled per stage going down")
    max_channels: int = Field(512, ge=4, description="cap on any block's channels")


class ResNetCriticParams(Params):
    base_channels: int = Field(64, ge=4, description="channels of the first block; doubled per stage")
    max_channels: int = Field(512, ge=4, description="cap on any block's channels")


def _widths(base: int, cap: int, stages: int) -> list[int]:
    return [min(base * 2**i, cap) for i in reversed(range(stages + 1))]  # coarsest first, stages + 1 of them


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
        self.blocks = nn.Sequential(*(UpBlock(a, b) for a, b in zip(widths, widths[1:])))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], shape.channels, 3, padding=1), nn.Tanh())

    def forward(self, z):
        return self.out(self.blocks(self.stem(z).view(len(z), self.width, self.start, self.start)))


class ResNetCritic(Critic):
    def __init__(self, p: ResNetCriticParams, shape: ImageShape):
        super().__init__(shape)
        _, stages = pyramid(shape.resolution)
        widths = _widths(p.base_channels, p.max_channels, stages)[::-1]  # finest first
        chans = [shape.channels, *widths[:-1]]
        self.blocks = nn.Sequential(*(DownBlock(a, b, first=i == 0) for i, (a, b) in enumerate(zip(chans, chans[1:]))))
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
    description = "Residual generator (BN, nearest x2; SNGAN/BigGAN blocks)"
    Params = ResNetGeneratorParams

    def initialize(self, module):
        _xavier(module)

    def build(self, shape):
        _check(shape.resolution)
        return ResNetGenerator(self.params, shape)


class ResNetCriticBuilder(CriticBuilder):
    name = "resnet"
    description = "BN-free residual critic with sum pooling (SNGAN/BigGAN blocks)"
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
