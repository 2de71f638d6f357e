"""Least-squares GAN (Mao et al. 2017): an example third-party ganzoo objective."""

from pydantic import Field

import ganzoo


class LSGANParams(ganzoo.Params):
    real_target: float = Field(1.0, description="b: the critic's target for real images")
    fake_target: float = Field(0.0, description="a: the critic's target for generated images")
    gen_target: float = Field(1.0, description="c: the value the generator wants the critic to give its images")


class LSGAN(ganzoo.Objective):
    name = "lsgan"
    description = "Least-squares GAN loss (Mao et al. 2017), from the ganzoo-lsgan example plugin"
    Params = LSGANParams

    def critic_loss(self, real_scores, fake_scores):
        p = self.params
        return 0.5 * ((real_scores - p.real_target) ** 2).mean() + 0.5 * ((fake_scores - p.fake_target) ** 2).mean()

    def generator_loss(self, fake_scores, real_scores):
        return 0.5 * ((fake_scores - self.params.gen_target) ** 2).mean()


@ganzoo.hookimpl
def register_objectives(register):
    register(LSGAN)
