"""Zero-centred gradient penalties: R1 on real images (Mescheder et al. 2018), R2 on generated ones, or both
(R3GAN, Huang et al. 2024); lazy as in StyleGAN2 (Karras et al. 2020)."""

from typing import Literal

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer


class R1Params(Params):
    gamma: float | None = Field(None, ge=0, description="penalty weight: gamma/2 * E[|grad D(x)|^2]; null: StyleGAN2-ADA's "
                                "heuristic 0.0002 * resolution^2 / batch size (0.0128 at 64 px, batch 64)")
    every: int = Field(16, ge=1, description="apply on every k-th critic step, scaled by k (lazy regularization)")
    images: Literal["real", "fake", "both"] = Field("real", description="real: R1; fake: R2 (on generated images); both: "
                                                "R1 + R2 with the same gamma (R3GAN)")


class R1(Regularizer):
    name = "r1"
    description = ("R1/R2 zero-centred gradient penalties (Mescheder et al. 2018; R3GAN, Huang et al. 2024), "
                   "gamma/2 E|grad D(x)|^2 on real, fake or both (images), lazily every k critic steps")
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
        batches = {"real": (real,), "fake": (fake,), "both": (real, fake)}[self.params.images]
        scale = self.params.every * 0.5 * self.gamma(real)
        return sum(scale * _grad_norm2(critic, batch) for batch in batches)


def _grad_norm2(critic, images) -> torch.Tensor:
    """E[|grad_x D(x)|^2] over the batch, differentiable in the critic's weights."""
    x = images.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


@ganzoo.hookimpl
def register_regularizers(register):
    register(R1)
