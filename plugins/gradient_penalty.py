"""Gradient penalty on real/fake interpolates (Gulrajani et al. 2017): the critic constraint of WGAN-GP."""

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer


class GradientPenaltyParams(Params):
    weight: float = Field(10.0, ge=0, description="lambda: weight * E[(|grad D(x_hat)| - 1)^2]")


class GradientPenalty(Regularizer):
    name = "gradient_penalty"
    description = "(|grad D|-1)^2 on random real/fake interpolates (WGAN-GP); implied by objective wgan_gp"
    Params = GradientPenaltyParams

    def penalty(self, critic, real, fake):
        # one interpolation coefficient per sample, broadcast over C, H, W
        eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
        mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        return self.params.weight * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


@ganzoo.hookimpl
def register_regularizers(register):
    register(GradientPenalty)
