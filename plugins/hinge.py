"""Hinge GAN loss (Lim & Ye 2017; the loss of SN-GAN and BigGAN)."""

import torch.nn.functional as F

import ganzoo
from ganzoo import Objective


class Hinge(Objective):
    name = "hinge"
    description = "Hinge loss: critic max(0, 1 - D(x)) + max(0, 1 + D(G(z))), generator -D(G(z))"

    def critic_loss(self, real_scores, fake_scores):
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()

    def generator_loss(self, fake_scores, real_scores):
        return -fake_scores.mean()

    def critic_wins(self, d_real, d_fake):
        # every score far past its margin: the critic separates real and fake outright and gets no more gradient
        return d_real > 3.0 and d_fake < -3.0


@ganzoo.hookimpl
def register_objectives(register):
    register(Hinge)
