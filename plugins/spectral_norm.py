"""Spectral normalisation of every critic weight (Miyato et al. 2018), with torch's parametrization."""

from pydantic import Field
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganzoo
from ganzoo import Params, Regularizer


class SpectralNormParams(Params):
    n_power_iterations: int = Field(1, ge=1, description="power iterations per forward pass in training")


class SpectralNorm(Regularizer):
    name = "spectral_norm"
    description = "Spectral norm on every conv/linear weight of the critic (use with critic norm: none)"
    Params = SpectralNormParams

    def setup(self, critic):
        layers = [m for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
        for m in layers:
            spectral_norm(m, n_power_iterations=self.params.n_power_iterations)


@ganzoo.hookimpl
def register_regularizers(register):
    register(SpectralNorm)
