"""Standard GAN loss with the non-saturating generator loss (Goodfellow et al. 2014)."""

import torch.nn.functional as F

import ganzoo
from ganzoo import Objective


class BCE(Objective):
    name = "bce"
    description = "Binary cross-entropy GAN loss, non-saturating generator loss"

    def critic_loss(self, real_scores, fake_scores):
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores, real_scores):
        return F.softplus(-fake_scores).mean()  # -log D(G(z)), computed from logits

    def critic_wins(self, d_real, d_fake):
        return d_real > 4.6 and d_fake < -4.6  # mean D(x) > 0.99 and D(G(z)) < 0.01


@ganzoo.hookimpl
def register_objectives(register):
    register(BCE)
