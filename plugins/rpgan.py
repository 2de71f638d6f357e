"""Relativistic pairing GAN, non-saturating (RpGAN; Jolicoeur-Martineau 2019, the loss of R3GAN, Huang et al. 2024).

Each real image is paired with one generated image and the critic judges which of the two is real:
critic ``softplus(-(D(x_i) - D(G(z_i))))``, generator the same with the roles swapped. Unlike RaGAN's comparison
with the mean of the other side, the pairing keeps the loss landscape free of the mode-dropping minima of the
classic loss; R3GAN pairs it with zero-centred penalties on real and generated images (``r1`` with ``images: both``).
"""

import torch.nn.functional as F

import ganzoo
from ganzoo import Objective


class RpGAN(Objective):
    name = "rpgan"
    description = ("Relativistic pairing GAN (RpGAN; Jolicoeur-Martineau 2019, R3GAN's loss, Huang et al. 2024): "
                   "softplus(-(D(x_i) - D(G(z_i)))) on paired samples")
    generator_uses_real = True

    def critic_loss(self, real_scores, fake_scores):
        return F.softplus(fake_scores - real_scores).mean()  # -log sigmoid(D(x) - D(G(z)))

    def generator_loss(self, fake_scores, real_scores):
        return F.softplus(real_scores - fake_scores).mean()

    def critic_wins(self, d_real, d_fake):
        return d_real - d_fake > 9.2  # mean sigmoid(D(x) - D(G(z))) > 0.9999 on the means: the critic separates outright


@ganzoo.hookimpl
def register_objectives(register):
    register(RpGAN)
