"""Wasserstein GAN with gradient penalty (Gulrajani et al. 2017; experiment E0)."""

from pydantic import Field

import ganzoo
from ganzoo import Objective, OptimizerSpec, Params


class WGANGPParams(Params):
    gp_weight: float = Field(10.0, ge=0, description="lambda, the weight of the gradient penalty")


class WGANGP(Objective):
    name = "wgan_gp"
    description = "Wasserstein loss + gradient penalty (lambda 10, 5 critic steps, Adam 2e-4 (0.5, 0.9))"
    Params = WGANGPParams
    default_optimizer = OptimizerSpec(name="adam", lr=2e-4, betas=(0.5, 0.9))
    n_critic = 5

    def critic_loss(self, real_scores, fake_scores):
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores, real_scores):
        return -fake_scores.mean()

    def regularizers(self):
        return [{"name": "gradient_penalty", "weight": self.params.gp_weight}]


@ganzoo.hookimpl
def register_objectives(register):
    register(WGANGP)
