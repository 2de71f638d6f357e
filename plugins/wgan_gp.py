"""Wasserstein GAN with gradient penalty (Gulrajani et al. 2017; experiment E0)."""

import torch
from pydantic import Field

import ganzoo
from ganzoo import Objective, OptimizerSpec, Params


class WGANGPParams(Params):
    gp_weight: float = Field(10.0, ge=0, description="lambda, the weight of the gradient penalty")
    n_critic: int = Field(5, ge=1, description="critic steps per generator step")


class WGANGP(Objective):
    name = "wgan_gp"
    description = "Wasserstein loss + gradient penalty (lambda 10, 5 critic steps, Adam 2e-4 (0.5, 0.9))"
    Params = WGANGPParams
    default_optimizer = OptimizerSpec(name="adam", lr=2e-4, betas=(0.5, 0.9))

    @property
    def n_critic(self):
        return self.params.n_critic

    def critic_loss(self, real_scores, fake_scores):
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores):
        return -fake_scores.mean()

    def penalty(self, critic, real, fake):
        # One interpolation coefficient per sample, broadcast over C, H, W.
        eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
        mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        return self.params.gp_weight * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


@ganzoo.hookimpl
def register_objectives(register):
    register(WGANGP)
