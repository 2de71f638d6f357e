"""Adaptive augmentation (StyleGAN2-ADA, Karras et al. 2020) over the DiffAugment operations.

Every image the critic sees, real and fake, gets each operation with probability p. p starts at 0 and is
adjusted every ``interval`` critic steps from the overfitting heuristic r_t = E[sign D(x_real)]: up when
r_t is above ``target`` (the critic is too sure of the real images), down when below, at a rate that can move
p from 0 to 1 in ``speed`` real images. p is part of every checkpoint, so a resume continues exactly.
"""

from typing import Literal

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer
from ganzoo_plugins import diffaugment


class ADAParams(Params):
    target: float = Field(0.6, gt=0, lt=1, description="the r_t = E[sign D(real)] that p is steered to (StyleGAN2-ADA: 0.6)")
    speed: int = Field(100_000, ge=1, description="real images over which p can move from 0 to 1 (StyleGAN2-ADA: 500k; "
                       "a CPU run sees about 100k images an hour)")
    interval: int = Field(4, ge=1, description="critic steps between adjustments of p")
    p_max: float = Field(0.8, gt=0, le=1, description="upper bound of p (above ~0.8 augmentations start to leak into G)")
    policy: list[Literal["color", "translation", "cutout"]] = Field(
        ["color", "translation", "cutout"], description="DiffAugment operations, each applied with probability p")
    translation: float = Field(0.125, ge=0, le=0.5, description="largest shift, as a fraction of the image size")
    cutout: float = Field(0.5, gt=0, le=1, description="side of the erased square, as a fraction of the image size")


class ADA(Regularizer):
    name = "ada"
    description = "Adaptive augmentation probability (ADA's r_t heuristic, target 0.6) over DiffAugment's operations"
    Params = ADAParams
    state_key = "ada"

    def __init__(self, params=None):
        super().__init__(params)
        self.p, self.signs, self.seen, self.calls = 0.0, 0.0, 0, 0
        self.r_t = None

    def augment(self, images):
        return diffaugment.augment(images, self.params, self.p)

    def observe(self, real_scores, fake_scores):
        self.signs += float(torch.sign(real_scores).sum())
        self.seen += len(real_scores)
        self.calls += 1
        if self.calls % self.params.interval == 0:
            self.r_t = self.signs / max(self.seen, 1)
            step = self.seen / self.params.speed
            self.p = min(max(self.p + (step if self.r_t > self.params.target else -step), 0.0), self.params.p_max)
            self.signs, self.seen = 0.0, 0

    def state(self):
        return {"p": self.p, "signs": self.signs, "seen": self.seen, "calls": self.calls, "r_t": self.r_t}

    def load_state(self, state):
        self.p, self.signs, self.seen, self.calls, self.r_t = (state["p"], state["signs"], state["seen"], state["calls"], state["r_t"])


@ganzoo.hookimpl
def register_regularizers(register):
    register(ADA)
