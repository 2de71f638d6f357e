"""Path-length regularization (Karras et al. 2020, StyleGAN2), a term of the generator's step.

For a generator with a w-space (``mapping``/``synthesis``, e.g. ``stylegan2``): on the first 1/``batch_shrink`` of
the step's latents, w = mapping(z), images = synthesis(w), y ~ N(0, 1) / sqrt(H * W) per pixel, and the Jacobian-
vector product J_w^T y = d(sum(images * y)) / dw (create_graph). Its length per image is
sqrt(mean over layers of |J_l^T y|^2) when the generator takes one w per layer (``num_ws``: w is broadcast to every
layer, as StyleGAN2 differentiates with respect to its per-layer ws), else |J^T y|. A running mean ``pl_mean``
(pl_mean += decay * (mean length - pl_mean)) is the target: penalty = weight * every * mean((length - pl_mean)^2),
applied lazily every ``every`` generator steps. A generator without a w-space is regularized the same way with
respect to z (images = generator(z)). ``pl_mean`` is kept in checkpoints, so a resumed run continues it.
"""

import math

import torch
from pydantic import Field

import ganzoo
from ganzoo import Params, Regularizer
from ganzoo.conditional import WithLabels
from ganzoo.interfaces import unwrap
from ganzoo.sampling import has_w_space


class PathLengthParams(Params):
    weight: float = Field(2.0, ge=0, allow_inf_nan=False, description="weight of the penalty (StyleGAN2: 2)")
    every: int = Field(4, ge=1, description="apply on every k-th generator step, scaled by k (lazy regularization)")
    decay: float = Field(0.01, gt=0, le=1, description="rate of the running mean of path lengths (pl_mean)")
    batch_shrink: int = Field(2, ge=1, description="regularize on 1/batch_shrink of the step's latents")


def w_space(generator):
    """``(mapping, synthesis, num_ws)`` of a generator with a w-space (labels bound for a conditional one, wrappers
    seen through; ``num_ws`` None unless it takes one w per layer), else None."""
    net, y = (generator.net, generator.y) if isinstance(generator, WithLabels) else (generator, None)
    net = unwrap(net, through=("ddp", "compiled"))
    if not has_w_space(net):
        return None
    num_ws = getattr(unwrap(net), "num_ws", None)
    if y is None:
        return net.mapping, net.synthesis, num_ws
    return (lambda z: net.mapping(z, y)), (lambda w: net.synthesis(w, y)), num_ws


class PathLength(Regularizer):
    name = "path_length"
    description = ("Path-length regularization (Karras et al. 2020, StyleGAN2): |J_w^T y| toward its running mean, "
                   "lazily every k generator steps")
    Params = PathLengthParams
    target = "generator"
    state_key = "path_length"

    def __init__(self, params=None):
        super().__init__(params)
        self._pl_mean = torch.zeros((), dtype=torch.float32)  # a tensor on the step's device: no sync per update

    @property
    def every(self):
        return self.params.every

    @property
    def pl_mean(self) -> float:
        return float(self._pl_mean)

    def state(self):
        return {"pl_mean": float(self._pl_mean)}

    def load_state(self, state):
        self._pl_mean = torch.tensor(float(state["pl_mean"]), dtype=torch.float32)

    def lengths(self, generator, z: torch.Tensor) -> torch.Tensor:
        """Path length per latent of ``z``: |J^T y| with respect to w (or z without a w-space)."""
        if isinstance(generator, WithLabels) and len(generator.y) != len(z):  # the labels bound are the whole batch's
            generator = WithLabels(generator.net, generator.y[: len(z)])
        space = w_space(generator)
        if space is not None:
            mapping, synthesis, num_ws = space
            w = mapping(z)
            if num_ws is not None and w.dim() == 2:
                w = w.unsqueeze(1).repeat(1, num_ws, 1)  # one w per layer, differentiated separately (StyleGAN2)
            if not w.requires_grad:  # a mapping without trainable weights: differentiate at w itself
                w = w.detach().requires_grad_(True)
            images = synthesis(w)
        else:
            w = z.detach().requires_grad_(True)
            images = generator(w)
        # torch.randn of the shape, not randn_like: the same numbers whatever the images' memory layout (channels_last)
        noise = torch.randn(images.shape, device=images.device, dtype=images.dtype) / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * noise).sum(), w, create_graph=True)
        grad = grad.float()
        if grad.dim() == 3:  # (N, layers, w_dim): mean over layers of the squared norms
            return grad.square().sum(2).mean(1).sqrt()
        return grad.flatten(1).square().sum(1).sqrt()

    def generator_penalty(self, generator, z, fake):
        p = self.params
        n = max(1, len(z) // p.batch_shrink)
        lengths = self.lengths(generator, z[:n])
        mean = self._pl_mean.to(lengths.device)
        mean = mean + p.decay * (lengths.detach().mean() - mean)
        self._pl_mean = mean
        return p.weight * p.every * (lengths - mean).square().mean()


@ganzoo.hookimpl
def register_regularizers(register):
    register(PathLength)
