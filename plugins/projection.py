"""Projection discriminator with conditional batch norm in the generator (Miyato & Koyama 2018)."""

import logging
from typing import Literal

from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Conditioning, ImageShape, Params
from ganzoo.conditional import (ConditionalCritic, ConditionalGenerator, LabelEmbedding, check_labels, conditional_batchnorm,
                                require_features)

log = logging.getLogger("ganzoo")


class ProjectionParams(Params):
    generator: Literal["cbn", "concat"] = Field("cbn", description="how G takes the labels: cbn = its batch norm layers become "
                                                "conditional (per-class scale and shift); concat = one-hot joins the latent")


class ProjectionCritic(ConditionalCritic):
    """score(features(x)) + sum over attributes of <embed_a(y_a), features(x)>."""

    def __init__(self, inner, shape, labels):
        super().__init__(inner, shape, labels)
        dim = require_features(inner, "condition projection")
        if self.inner_has_aux and not next(inner.parameters()).is_meta:  # not for preflight's shape-only build
            log.warning(f"condition projection: the critic's own auxiliary loss ({type(inner).__name__}) is not used under this "
                        "conditioning (it scores through features() and score()); condition concat keeps it")
        self.embed = nn.ModuleList(nn.Embedding(k, dim) for k in labels.sizes)
        for table in self.embed:
            nn.init.xavier_uniform_(table.weight)
        self.feature_dim = dim

    def features(self, x):
        return self.inner.features(x)

    def score(self, features):
        return self.inner.score(features)

    def forward(self, x, y):
        check_labels(y, len(x), self.labels)
        f = self.inner.features(x)
        projection = sum((table(y[:, a]).to(f.dtype) * f).sum(1) for a, table in enumerate(self.embed))
        return self.inner.score(f) + projection


class Projection(Conditioning):
    name = "projection"
    description = "Projection critic (Miyato & Koyama 2018); G with conditional batch norm (or one-hot concat)"
    Params = ProjectionParams

    def generator_inputs(self, labels):
        return sum(labels.sizes) if self.params.generator == "concat" else 0

    def wrap_generator(self, generator, labels):
        s = generator.shape
        if self.params.generator == "concat":
            embed = LabelEmbedding(labels.sizes)
            shape = ImageShape(resolution=s.resolution, channels=s.channels, latent_dim=s.latent_dim - embed.out_dim)
            return ConditionalGenerator(generator, shape, labels, embed)
        if conditional_batchnorm(generator, labels.sizes) == 0:
            raise ValueError(f"{type(generator).__name__} has no BatchNorm layers to make conditional; "
                             "set condition.generator: concat")
        return ConditionalGenerator(generator, s, labels)

    def wrap_critic(self, critic, labels):
        return ProjectionCritic(critic, critic.shape, labels)


@ganzoo.hookimpl
def register_conditionings(register):
    register(Projection)
