"""DCGAN: transposed-conv generator and strided-conv critic (reference experiment E1)."""

from typing import Literal

from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Critic, CriticBuilder, Generator, GeneratorBuilder, ImageShape, Params, dcgan_init, pyramid


class DCGANGeneratorParams(Params):
    base_channels: int = Field(64, ge=1, description="channels before the output layer; doubled per stage going down")
    max_channels: int = Field(1024, ge=1, description="cap on any layer's channels")
    stem: Literal["conv", "linear"] = Field("conv", description="conv: ConvTranspose from 1x1 (Radford et al.); "
                                            "linear: Linear (no bias) + BatchNorm1d + ReLU, reshaped (experiment E2)")
    kernel_size: Literal[4, 5] = Field(4, description="kernel of the x2 ConvTranspose blocks (E2 used 5, with output_padding 1)")


class DCGANCriticParams(Params):
    base_channels: int = Field(64, ge=1, description="channels of the first conv; doubled per stage")
    max_channels: int = Field(1024, ge=1, description="cap on any layer's channels")
    norm: Literal["batch", "none"] = Field("batch", description="normalisation in the inner blocks (none for WGAN-GP)")
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope")


def _check(resolution: int) -> None:
    start, stages = pyramid(resolution)
    if stages < 1 or start > 8:
        raise ValueError(f"resolution {resolution} must be 3..8 times a power of two (e.g. 28, 32, 64, 96, 128)")


def _widths(base: int, cap: int, stages: int) -> list[int]:
    """Channels at each scale, coarsest first: base * 2**(stages-1) ... base."""
    return [min(base * 2**i, cap) for i in reversed(range(stages))]


class DCGANGenerator(Generator):
    def __init__(self, p: DCGANGeneratorParams, shape: ImageShape):
        super().__init__(shape)
        start, stages = pyramid(shape.resolution)
        widths = _widths(p.base_channels, p.max_channels, stages)
        self.start, self.width = start, widths[0]
        self.stem = None  # conv stem: the first layers of ``net`` (the layout of checkpoints before the linear stem)
        layers = [nn.ConvTranspose2d(shape.latent_dim, widths[0], start, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        if p.stem == "linear":
            self.stem = nn.Sequential(nn.Linear(shape.latent_dim, widths[0] * start * start, bias=False),
                                      nn.BatchNorm1d(widths[0] * start * start), nn.ReLU(True))
            layers = []
        # x2 upsampling: kernel 4, padding 1; or kernel 5, padding 2, output_padding 1
        k, pad, out_pad = (4, 1, 0) if p.kernel_size == 4 else (5, 2, 1)
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, k, 2, pad, out_pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], shape.channels, k, 2, pad, out_pad, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        if self.stem is None:
            return self.net(z.view(z.shape[0], -1, 1, 1))
        return self.net(self.stem(z).view(z.shape[0], self.width, self.start, self.start))


class DCGANCritic(Critic):
    def __init__(self, p: DCGANCriticParams, shape: ImageShape):
        super().__init__(shape)
        start, stages = pyramid(shape.resolution)
        widths = _widths(p.base_channels, p.max_channels, stages)[::-1]
        act = lambda: nn.LeakyReLU(p.negative_slope, inplace=True)  # noqa: E731
        layers = [nn.Conv2d(shape.channels, widths[0], 4, 2, 1, bias=False), act()]
        for cin, cout in zip(widths, widths[1:]):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=p.norm == "none"))
            if p.norm == "batch":
                layers.append(nn.BatchNorm2d(cout))
            layers.append(act())
        layers.append(nn.Conv2d(widths[-1], 1, start, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        self.map_shape = (widths[-1], start, start)
        self.feature_dim = widths[-1] * start * start

    def features(self, x):
        return self.net[:-1](x).flatten(1)

    def score(self, features):
        return self.net[-1](features.view(-1, *self.map_shape)).view(-1)

    def forward(self, x):
        return self.net(x).view(-1)


class DCGANGeneratorBuilder(GeneratorBuilder):
    name = "dcgan"
    description = "ConvTranspose2d generator (Radford et al.; experiment E1)"
    Params = DCGANGeneratorParams

    def initialize(self, module):
        dcgan_init(module)  # Radford et al.'s N(0, 0.02), as experiments E0-E4 used

    def build(self, shape):
        _check(shape.resolution)
        return DCGANGenerator(self.params, shape)


class DCGANCriticBuilder(CriticBuilder):
    name = "dcgan"
    description = "Strided-conv critic (Radford et al.; experiment E1)"
    Params = DCGANCriticParams

    def initialize(self, module):
        dcgan_init(module)

    def build(self, shape):
        _check(shape.resolution)
        return DCGANCritic(self.params, shape)


@ganzoo.hookimpl
def register_generators(register):
    register(DCGANGeneratorBuilder)


@ganzoo.hookimpl
def register_critics(register):
    register(DCGANCriticBuilder)
