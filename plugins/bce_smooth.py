"""BCE with random label smoothing: one real and one fake target drawn per batch (experiment E1)."""

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

import ganzoo
from ganzoo import OptimizerSpec, Params
from ganzoo_plugins.bce import BCE


class BCESmoothParams(Params):
    real_label: tuple[float, float] = Field((0.7, 1.12), description="range of the real target, drawn per batch (may exceed 1)")
    fake_label: tuple[float, float] = Field((0.0, 0.3), description="range of the fake target, drawn per batch")

    @model_validator(mode="after")
    def _ordered(self):
        for key in ("real_label", "fake_label"):
            lo, hi = getattr(self, key)
            if lo > hi:
                raise ValueError(f"{key} must be [low, high] with low <= high, got [{lo}, {hi}]")
        return self


class BCESmooth(BCE):  # BCE's generator loss and critic_wins, with smoothed critic targets
    name = "bce_smooth"
    description = "BCE with per-batch random label smoothing (real U(0.7,1.12), fake U(0,0.3)); non-saturating G"
    Params = BCESmoothParams
    default_optimizer = OptimizerSpec(name="adam", lr=2e-3, betas=(0.5, 0.999))

    @staticmethod
    def _draw(bounds, like):
        lo, hi = bounds
        return torch.empty((), device=like.device, dtype=like.dtype).uniform_(lo, hi)

    def critic_loss(self, real_scores, fake_scores):
        real_t = self._draw(self.params.real_label, real_scores).expand_as(real_scores)
        fake_t = self._draw(self.params.fake_label, fake_scores).expand_as(fake_scores)
        # With logits x and any target t (t > 1 included) this is softplus(x) - t*x: stable, no log(0).
        return (F.binary_cross_entropy_with_logits(real_scores, real_t)
                + F.binary_cross_entropy_with_logits(fake_scores, fake_t))


@ganzoo.hookimpl
def register_objectives(register):
    register(BCESmooth)
