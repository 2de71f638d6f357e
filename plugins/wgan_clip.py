"""Wasserstein GAN with weight clipping (Arjovsky et al. 2017)."""

from pydantic import Field

import ganzoo
from ganzoo import Objective, OptimizerSpec, Params


class WGANClipParams(Params):
    clip: float = Field(0.01, gt=0, description="clip every critic weight to [-clip, clip] after each critic step")
    n_critic: int = Field(5, ge=1, description="critic steps per generator step")


class WGANClip(Objective):
    name = "wgan_clip"
    description = "Wasserstein loss with critic weight clipping; RMSprop 5e-5, 5 critic steps"
    Params = WGANClipParams
    default_optimizer = OptimizerSpec(name="rmsprop", lr=5e-5)

    @property
    def n_critic(self):
        return self.params.n_critic

    @property
    def clip_value(self):
        return self.params.clip

    def critic_loss(self, real_scores, fake_scores):
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores):
        return -fake_scores.mean()


@ganzoo.hookimpl
def register_objectives(register):
    register(WGANClip)
