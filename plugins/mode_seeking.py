"""Mode seeking (Mao et al. 2019, "Mode Seeking Generative Adversarial Networks for Diverse Image Synthesis"), a term
of the generator's step.

The step's batch is split into pairs (first half against second half): for latents z1, z2 and their images G(z1),
G(z2), the ratio d_I(G(z1), G(z2)) / d_z(z1, z2) of the mean absolute differences is how far the generator moves
its output per unit of latent distance. A generator that collapses modes maps distant latents to near images, so
the ratio is small; the term ``weight / (ratio + eps)`` added to the generator loss pushes the ratio up. It costs no
extra forward pass: the pairs are the step's own images (in a conditional run a pair's labels may differ, which only
adds to its image distance). A batch of one image has no pair: a recipe with train.batch_size 1 is refused.
"""

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer


class ModeSeekingParams(Params):
    weight: float = Field(1.0, ge=0, allow_inf_nan=False, description="lambda, the term's weight (the paper: 1)")
    eps: float = Field(1e-5, gt=0, allow_inf_nan=False, description="added to the ratio before it is inverted")
    every: int = Field(1, ge=1, description="apply on every k-th generator step")


class ModeSeeking(Regularizer):
    name = "mode_seeking"
    description = ("Mode seeking (Mao et al. 2019, MSGAN): weight / (image distance / latent distance) of pairs of "
                   "the generator's batch, against mode collapse")
    Params = ModeSeekingParams
    target = "generator"
    min_batch = 2  # pairs of the step's images

    @property
    def every(self):
        return self.params.every

    @staticmethod
    def ratio(z: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Mean |G(z1) - G(z2)| over mean |z1 - z2| for the batch's halves (pixels and latent dimensions averaged)."""
        half = len(fake) // 2
        images = (fake[:half] - fake[half: 2 * half]).abs().float().mean()
        latents = (z[:half] - z[half: 2 * half]).abs().float().mean()
        return images / latents

    def generator_penalty(self, generator, z, fake):
        if len(fake) < 2:
            return None
        return self.params.weight / (self.ratio(z, fake) + self.params.eps)


@ganzoo.hookimpl
def register_regularizers(register):
    register(ModeSeeking)
