"""Weight clipping (Arjovsky et al. 2017): the critic constraint of the original WGAN."""

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer


class WeightClipParams(Params):
    clip: float = Field(0.01, gt=0, description="clamp every critic weight to [-clip, clip] after each critic step")


class WeightClip(Regularizer):
    name = "weight_clip"
    description = "Clamp every critic weight to [-c, c] after each critic update (WGAN); implied by wgan_clip"
    Params = WeightClipParams

    @torch.no_grad()
    def after_critic_step(self, critic):
        for p in critic.parameters():
            p.clamp_(-self.params.clip, self.params.clip)


@ganzoo.hookimpl
def register_regularizers(register):
    register(WeightClip)
