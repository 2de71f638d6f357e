"""Relativistic average GAN, non-saturating form (Jolicoeur-Martineau 2019, RaSGAN).

The critic judges whether a real image looks more real than the average fake one, and the reverse; the
generator loss is the same comparison with the roles swapped, so it needs the real scores too.
"""

import torch.nn.functional as F

import ganzoo
from ganzoo import Objective


class RaGAN(Objective):
    name = "ragan"
    description = "Relativistic average GAN (RaSGAN): D(x) compared with the mean score of the other side"
    generator_uses_real = True

    def critic_loss(self, real_scores, fake_scores):
        # -log sigmoid(D(x_r) - E D(x_f)) - log(1 - sigmoid(D(x_f) - E D(x_r))), from logits
        return (F.softplus(-(real_scores - fake_scores.mean())).mean()
                + F.softplus(fake_scores - real_scores.mean()).mean())

    def generator_loss(self, fake_scores, real_scores):
        return (F.softplus(-(fake_scores - real_scores.mean())).mean()
                + F.softplus(real_scores - fake_scores.mean()).mean())

    def critic_wins(self, d_real, d_fake):
        return d_real - d_fake > 9.2  # mean sigmoid(D(x_r) - E D(x_f)) > 0.9999: the critic separates outright


@ganzoo.hookimpl
def register_objectives(register):
    register(RaGAN)
