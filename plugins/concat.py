"""Input concatenation (Mirza & Osindero 2014; E1's CGAN): the labels, one-hot or embedded, join the latent
vector of the generator and, as constant image planes, the images the critic sees."""

from pydantic import Field
import torch

import ganzoo
from ganzoo import Conditioning, ImageShape, Params
from ganzoo.conditional import ConditionalCritic, ConditionalGenerator, LabelEmbedding, check_labels, label_maps


class ConcatParams(Params):
    embedding: int | None = Field(None, ge=1, description="learned embedding size per attribute; null: one-hot (as Mirza & Osindero)")


class ConcatCritic(ConditionalCritic):
    def __init__(self, inner, shape, labels, embed):
        super().__init__(inner, shape, labels)
        self.embed = embed

    @property
    def has_aux(self):  # the architecture's auxiliary loss (FastGAN's reconstruction) passes through
        return self.inner_has_aux

    def forward(self, x, y, aux=None):
        check_labels(y, len(x), self.labels)
        x = torch.cat([x, label_maps(self.embed(y), x)], 1)
        return self.inner(x) if aux is None else self.inner(x, aux=aux)


class Concat(Conditioning):
    name = "concat"
    description = "Labels (one-hot or embedded) concatenated to G's latent and, as image planes, to the critic's input"
    Params = ConcatParams

    def _embedding(self, labels):
        return LabelEmbedding(labels.sizes, self.params.embedding)

    def generator_inputs(self, labels):
        return self._embedding(labels).out_dim

    def critic_inputs(self, labels):
        return self._embedding(labels).out_dim

    def wrap_generator(self, generator, labels):
        embed = self._embedding(labels)
        s = generator.shape
        return ConditionalGenerator(generator, ImageShape(resolution=s.resolution, channels=s.channels, latent_dim=s.latent_dim - embed.out_dim),
                                    labels, embed)

    def wrap_critic(self, critic, labels):
        embed = self._embedding(labels)
        s = critic.shape
        return ConcatCritic(critic, ImageShape(resolution=s.resolution, channels=s.channels - embed.out_dim, latent_dim=s.latent_dim), labels, embed)


@ganzoo.hookimpl
def register_conditionings(register):
    register(Concat)
