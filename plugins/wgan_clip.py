"""Wasserstein GAN with weight clipping (Arjovsky et al. 2017; experiment E4)."""

from pydantic import Field

import ganzoo
from ganzoo import Objective, OptimizerSpec, Params


class WGANClipParams(Params):
    clip: float = Field(0.01, gt=0, description="clip every critic weight to [-clip, clip] after each critic step")


class WGANClip(Objective):
    name = "wgan_clip"
    description = "Wasserstein loss with critic weight clipping; RMSprop 5e-5, 5 critic steps"
    Params = WGANClipParams
    default_optimizer = OptimizerSpec(name="rmsprop", lr=5e-5)
    n_critic = 5

    def critic_loss(self, real_scores, fake_scores):
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores, real_scores):
        return -fake_scores.mean()

    def regularizers(self):
        return [{"name": "weight_clip", "clip": self.params.clip}]


@ganzoo.hookimpl
def register_objectives(register):
    register(WGANClip)
