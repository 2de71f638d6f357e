"""R1 gradient penalty on real images (Mescheder et al. 2018), lazy as in StyleGAN2 (Karras et al. 2020)."""

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer


class R1Params(Params):
    gamma: float | None = Field(None, ge=0, description="penalty weight: gamma/2 * E[|grad D(x)|^2] over real x; null: "
                                "StyleGAN2-ADA's heuristic 0.0002 * resolution^2 / batch size (0.0128 at 64 px, batch 64)")
    every: int = Field(16, ge=1, description="apply on every k-th critic step, scaled by k (lazy regularization)")


class R1(Regularizer):
    name = "r1"
    description = "R1 penalty on real images, gamma/2 E|grad D(x)|^2 (gamma: StyleGAN2-ADA's heuristic), lazily every k critic steps"
    Params = R1Params

    @property
    def every(self):
        return self.params.every

    def gamma(self, real) -> float:
        """The recipe's gamma, or StyleGAN2-ADA's heuristic for this batch's resolution and size."""
        if self.params.gamma is not None:
            return self.params.gamma
        return 0.0002 * real.shape[-1] * real.shape[-2] / real.shape[0]

    def penalty(self, critic, real, fake):
        x = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        return self.params.every * 0.5 * self.gamma(real) * grad.pow(2).flatten(1).sum(1).mean()


@ganzoo.hookimpl
def register_regularizers(register):
    register(R1)
