"""Upsample + 3x3 conv generator and strided-conv critic (reference experiment E0)."""

from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Critic, CriticBuilder, Generator, GeneratorBuilder, ImageShape, Params, dcgan_init


class UpsampleConvGeneratorParams(Params):
    channels: int = Field(128, ge=8, description="feature channels after the linear stem")
    n_upsample: int = Field(2, ge=1, le=6, description="upsampling blocks; start size = resolution / 2**n_upsample")
    bn_eps: float = Field(1e-5, gt=0, description="BatchNorm eps in the blocks (E0 used 0.8, by a slip)")
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope")


class UpsampleConvCriticParams(Params):
    widths: list[int] = Field([16, 32, 64, 128], min_length=1, description="channels of the stride-2 3x3 conv blocks")
    batchnorm: bool = Field(True, description="BatchNorm after every block but the first (E0 did; off is cleaner for WGAN-GP)")
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope")


class UpsampleConvGenerator(Generator):
    def __init__(self, p: UpsampleConvGeneratorParams, shape: ImageShape):
        super().__init__(shape)
        self.init_size = shape.resolution // 2**p.n_upsample
        self.init_channels = p.channels
        self.stem = nn.Linear(shape.latent_dim, p.channels * self.init_size**2)
        layers, ch = [nn.BatchNorm2d(p.channels)], p.channels
        for i in range(p.n_upsample):
            out = p.channels if i == 0 else max(ch // 2, 8)
            layers += [
                nn.Upsample(scale_factor=2),
                nn.Conv2d(ch, out, 3, padding=1),
                nn.BatchNorm2d(out, eps=p.bn_eps),
                nn.LeakyReLU(p.negative_slope),
            ]
            ch = out
        layers += [nn.Conv2d(ch, shape.channels, 3, padding=1), nn.Tanh()]
        self.blocks = nn.Sequential(*layers)

    def forward(self, z):
        x = self.stem(z).view(z.shape[0], self.init_channels, self.init_size, self.init_size)
        return self.blocks(x)


class UpsampleConvCritic(Critic):
    def __init__(self, p: UpsampleConvCriticParams, shape: ImageShape):
        super().__init__(shape)
        layers, ch, size = [], shape.channels, shape.resolution
        for i, w in enumerate(p.widths):
            layers += [nn.Conv2d(ch, w, 3, stride=2, padding=1), nn.LeakyReLU(p.negative_slope)]
            if p.batchnorm and i > 0:
                layers.append(nn.BatchNorm2d(w))
            ch, size = w, (size + 1) // 2
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(ch * size * size, 1)
        self.feature_dim = ch * size * size

    def features(self, x):
        return self.blocks(x).flatten(1)

    def score(self, features):
        return self.head(features).view(-1)

    def forward(self, x):
        return self.head(self.blocks(x).flatten(1)).view(-1)


class UpsampleConvGeneratorBuilder(GeneratorBuilder):
    name = "upsample_conv"
    description = "Linear -> reshape -> [Upsample x2, Conv3x3, BN, LeakyReLU]... generator (experiment E0)"
    Params = UpsampleConvGeneratorParams

    def initialize(self, module):
        dcgan_init(module)  # Radford et al.'s N(0, 0.02), as experiments E0-E4 used

    def build(self, shape):
        n = self.params.n_upsample
        if shape.resolution % 2**n or shape.resolution // 2**n < 2:
            raise ValueError(f"resolution {shape.resolution} is not a multiple of 2**n_upsample = {2**n}")
        return UpsampleConvGenerator(self.params, shape)


class UpsampleConvCriticBuilder(CriticBuilder):
    name = "upsample_conv"
    description = "Strided 3x3 conv critic, BN after all but the first block (experiment E0)"
    Params = UpsampleConvCriticParams

    def initialize(self, module):
        dcgan_init(module)

    def build(self, shape):
        return UpsampleConvCritic(self.params, shape)


@ganzoo.hookimpl
def register_generators(register):
    register(UpsampleConvGeneratorBuilder)


@ganzoo.hookimpl
def register_critics(register):
    register(UpsampleConvCriticBuilder)
