"""LeCam regularization (Tseng et al. 2021, "Regularizing Generative Adversarial Networks under Limited Data").

Keeps exponential moving averages of the critic's mean score on real (a_R) and generated (a_F) images and adds
``weight * (E[relu(D(x) - a_F)^2] + E[relu(a_R - D(G(z)))^2])`` to the critic loss: real scores are held near
what fakes scored lately and the other way round, which bounds how far the critic can push the two apart when it
could memorise a small training set. The hinge (relu) follows the authors' code; the averages are in checkpoints.
"""

import torch
import torch.nn.functional as F
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer


class LeCamParams(Params):
    weight: float = Field(0.3, ge=0, description="lambda, the term's weight (0.3 in the paper's BigGAN runs; "
                          "StyleGAN2-sized critics used 0.01-0.1)")
    decay: float = Field(0.99, ge=0, lt=1, description="decay of the moving averages of the mean scores, per critic step")


class LeCam(Regularizer):
    name = "lecam"
    description = ("LeCam (Tseng et al. 2021): real scores held near the moving average of fake ones and back, "
                   "for limited data")
    Params = LeCamParams
    state_key = "lecam"

    def __init__(self, params=None):
        super().__init__(params)
        self.real_avg: float | None = None  # a_R, a_F: None until the first critic step
        self.fake_avg: float | None = None

    def observe(self, real_scores, fake_scores):
        r, f, d = float(real_scores.mean()), float(fake_scores.mean()), self.params.decay
        first = self.real_avg is None  # the first step's means start the averages
        self.real_avg = r if first else d * self.real_avg + (1 - d) * r
        self.fake_avg = f if first else d * self.fake_avg + (1 - d) * f

    def score_penalty(self, critic, real, fake, real_scores, fake_scores):
        if self.real_avg is None:
            return None
        term = F.relu(real_scores - self.fake_avg).pow(2).mean() + F.relu(self.real_avg - fake_scores).pow(2).mean()
        return self.params.weight * term

    def state(self):
        return {"real_avg": self.real_avg, "fake_avg": self.fake_avg}

    def load_state(self, state):
        self.real_avg, self.fake_avg = state["real_avg"], state["fake_avg"]


@ganzoo.hookimpl
def register_regularizers(register):
    register(LeCam)
