"""Auxiliary classifier GAN (Odena et al. 2017): the critic also classifies each image's labels, and the
generator is trained to make images classified as the labels it was given."""

import logging

from pydantic import Field
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo import Conditioning, ImageShape, Params
from ganzoo.conditional import ConditionalCritic, ConditionalGenerator, LabelEmbedding, check_labels, require_features

log = logging.getLogger("ganzoo")


class ACGANParams(Params):
    weight: float = Field(1.0, gt=0, description="weight of the classification loss (critic and generator)")
    on_fake: bool = Field(True, description="the critic also learns to classify generated images as their labels (Odena et "
                          "al.); false: it learns from real images only")
    embedding: int | None = Field(None, ge=1, description="G's label input: learned embedding size per attribute; null: one-hot")


class ACGANCritic(ConditionalCritic):
    """The architecture's critic with one linear classifier head per attribute on its features."""

    has_aux = True

    def __init__(self, inner, shape, labels, weight: float, on_fake: bool):
        super().__init__(inner, shape, labels)
        dim = require_features(inner, "condition acgan")
        if self.inner_has_aux and not next(inner.parameters()).is_meta:  # not for preflight's shape-only build
            log.warning(f"condition acgan: the critic's own auxiliary loss ({type(inner).__name__}) is not used under this "
                        "conditioning (it scores through features() and score()); condition concat keeps it")
        self.heads = nn.ModuleList(nn.Linear(dim, k) for k in labels.sizes)
        self.weight, self.on_fake, self.feature_dim = weight, on_fake, dim

    def features(self, x):
        return self.inner.features(x)

    def score(self, features):
        return self.inner.score(features)

    def forward(self, x, y, aux=None):
        check_labels(y, len(x), self.labels)
        f = self.inner.features(x)
        scores = self.inner.score(f)
        if aux is None:
            return scores
        if aux == "fake" and not self.on_fake:
            return scores, None
        loss = sum(F.cross_entropy(head(f).float(), y[:, a]) for a, head in enumerate(self.heads))
        return scores, self.weight * loss

    def classify(self, x):
        """Class logits per attribute (a list of ``(N, classes)``)."""
        f = self.inner.features(x)
        return [head(f) for head in self.heads]


class ACGAN(Conditioning):
    name = "acgan"
    description = "Auxiliary classifier on the critic's features (AC-GAN); labels join G's latent"
    Params = ACGANParams

    def generator_inputs(self, labels):
        return LabelEmbedding(labels.sizes, self.params.embedding).out_dim

    def wrap_generator(self, generator, labels):
        embed = LabelEmbedding(labels.sizes, self.params.embedding)
        s = generator.shape
        return ConditionalGenerator(generator, ImageShape(resolution=s.resolution, channels=s.channels, latent_dim=s.latent_dim - embed.out_dim),
                                    labels, embed)

    def wrap_critic(self, critic, labels):
        return ACGANCritic(critic, critic.shape, labels, self.params.weight, self.params.on_fake)


@ganzoo.hookimpl
def register_conditionings(register):
    register(ACGAN)
