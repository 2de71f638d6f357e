"""Fully connected generator and critic (reference experiments E3/E4)."""

import math

from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Critic, CriticBuilder, Generator, GeneratorBuilder, ImageShape, Params, dcgan_init


class MLPGeneratorParams(Params):
    hidden: list[int] = Field([128, 256, 512, 1024], min_length=1, description="hidden layer widths")
    batchnorm: bool = Field(True, description="BatchNorm1d after every hidden layer but the first")
    bn_eps: float = Field(1e-5, gt=0, description="BatchNorm eps (E3 used 0.8, by a slip)")
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope (0 = ReLU)")


class MLPCriticParams(Params):
    hidden: list[int] = Field([512, 256], min_length=1, description="hidden layer widths")
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope")


class MLPGenerator(Generator):
    def __init__(self, p: MLPGeneratorParams, shape: ImageShape):
        super().__init__(shape)
        layers, width = [], shape.latent_dim
        for i, h in enumerate(p.hidden):
            layers.append(nn.Linear(width, h))
            if p.batchnorm and i > 0:
                layers.append(nn.BatchNorm1d(h, eps=p.bn_eps))
            layers.append(nn.LeakyReLU(p.negative_slope))
            width = h
        self.out_shape = (shape.channels, shape.resolution, shape.resolution)
        layers += [nn.Linear(width, math.prod(self.out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPCritic(Critic):
    def __init__(self, p: MLPCriticParams, shape: ImageShape):
        super().__init__(shape)
        layers, width = [nn.Flatten()], shape.channels * shape.resolution**2
        for h in p.hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(p.negative_slope)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.feature_dim = width

    def features(self, x):
        return self.net[:-1](x)

    def score(self, features):
        return self.net[-1](features).view(-1)

    def forward(self, x):
        return self.net(x).view(-1)


class MLPGeneratorBuilder(GeneratorBuilder):
    name = "mlp"
    description = "Fully connected generator (LeakyReLU, BatchNorm1d), as in experiments E3/E4"
    Params = MLPGeneratorParams

    def initialize(self, module):
        dcgan_init(module)  # Radford et al.'s N(0, 0.02), as experiments E0-E4 used

    def build(self, shape):
        return MLPGenerator(self.params, shape)


class MLPCriticBuilder(CriticBuilder):
    name = "mlp"
    description = "Fully connected critic (LeakyReLU), as in experiments E3/E4"
    Params = MLPCriticParams

    def initialize(self, module):
        dcgan_init(module)

    def build(self, shape):
        return MLPCritic(self.params, shape)


@ganzoo.hookimpl
def register_generators(register):
    register(MLPGeneratorBuilder)


@ganzoo.hookimpl
def register_critics(register):
    register(MLPCriticBuilder)
