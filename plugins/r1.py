"""R1 gradient penalty on real images (Mescheder et al. 2018), lazy as in StyleGAN2 (Karras et al. 2020)."""

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer


class R1Params(Params):
    gamma: float = Field(1.0, ge=0, description="penalty weight: gamma/2 * E[|grad D(x)|^2] over real x")
    every: int = Field(16, ge=1, description="apply on every k-th critic step, scaled by k (lazy regularization)")


class R1(Regularizer):
    name = "r1"
    description = "R1 penalty on real images, gamma/2 E|grad D(x)|^2, lazily every k critic steps"
    Params = R1Params

    @property
    def every(self):
        return self.params.every

    def penalty(self, critic, real, fake):
        x = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        return self.params.every * 0.5 * self.params.gamma * grad.pow(2).flatten(1).sum(1).mean()


@ganzoo.hookimpl
def register_regularizers(register):
    register(R1)
