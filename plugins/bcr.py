"""Balanced consistency regularization, bCR (Zhao et al. 2021, "Improved Consistency Regularization for GANs").

On each critic step, every real and every generated image the critic scored is also scored once more after a
random flip and translation T, and ``real_weight * E[(D(x) - D(T(x)))^2] + fake_weight * E[(D(G(z)) - D(T(G(z))))^2]``
is added to the critic loss: the critic must give an image and its shifted copy the same score. Unlike
DiffAugment, the generator never sees T. The images reach it after any augmenting regularizer, as the critic
saw them.
"""

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer

from ganzoo_plugins.diffaugment import translation


class BCRParams(Params):
    real_weight: float = Field(10.0, ge=0, description="lambda_real, the weight of the term on real images (10 in the paper)")
    fake_weight: float = Field(10.0, ge=0, description="lambda_fake, the weight of the term on generated images (10 in the paper)")
    translation: float = Field(0.125, ge=0, le=0.5, description="largest shift of T, as a fraction of the image size")
    flip: bool = Field(True, description="T also flips each image left-right with probability 1/2")


class BCR(Regularizer):
    name = "bcr"
    description = "Balanced consistency regularization (bCR, Zhao et al. 2021): same score for an image and its flipped, shifted copy"
    Params = BCRParams

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """T: a random left-right flip (probability 1/2 per image) and shift by up to ``translation`` of the size."""
        if self.params.flip:
            flipped = torch.rand(len(images), device=images.device) < 0.5
            images = torch.where(flipped.view(-1, 1, 1, 1), images.flip(-1), images)
        return translation(images, self.params.translation)

    def score_penalty(self, critic, real, fake, real_scores, fake_scores):
        p, term = self.params, None
        for weight, images, scores in ((p.real_weight, real, real_scores), (p.fake_weight, fake, fake_scores)):
            if weight > 0:
                moved = critic(self.transform(images.detach())).float()
                part = weight * (scores - moved).pow(2).mean()
                term = part if term is None else term + part
        return term


@ganzoo.hookimpl
def register_regularizers(register):
    register(BCR)
