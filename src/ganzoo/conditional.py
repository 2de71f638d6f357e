"""What conditioning components are made of: label embeddings, and generators and critics that take labels.

A conditioning component (``concat``, ``projection``, ``acgan``) wraps the generator and critic an
architecture built; the wrappers here take the labels ``y`` (long ``(N, A)``, one class code per attribute)
beside the latents or images, so any architecture gains conditioning without knowing of it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .interfaces import Critic, Generator, ImageShape


class LabelEmbedding(nn.Module):
    """One vector per label row: per attribute a one-hot (``dim`` None) or a learned ``dim``-vector, concatenated."""

    def __init__(self, sizes, dim: int | None = None):
        super().__init__()
        self.sizes, self.dim = tuple(sizes), dim
        self.tables = nn.ModuleList(nn.Embedding(k, dim) for k in self.sizes) if dim else None
        self.out_dim = sum(self.sizes) if dim is None else dim * len(self.sizes)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.tables is None:
            return torch.cat([F.one_hot(y[:, a], k).float() for a, k in enumerate(self.sizes)], 1)
        return torch.cat([t(y[:, a]) for a, t in enumerate(self.tables)], 1)


class ConditionalGenerator(Generator):
    """A generator of images of given labels: ``forward(z, y)``. ``labels`` is the ``LabelSpace`` it was trained
    on (sampling reads class names and training frequencies from it). ``inner`` is the architecture's generator;
    with ``embed``, its input is ``z`` followed by the label embedding (input concatenation). A conditional
    batch norm layer inside ``inner`` (``ConditionalBatchNorm``) reads the labels of the current call."""

    wraps_network = True  # ganzoo.interfaces.unwrap sees through it to ``inner``

    def __init__(self, inner: Generator, shape: ImageShape, labels, embed: LabelEmbedding | None = None):
        super().__init__(shape)
        self.inner, self.labels, self.embed = inner, labels, embed
        self._slot = _LabelSlot()
        for m in inner.modules():
            if isinstance(m, ConditionalBatchNorm):
                m.slot = self._slot

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._call(self.inner, z, y, self._input)

    def mapping(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """w of ``(z, y)`` for an inner generator with a w-space (``ganzoo.Generator``'s ``mapping``)."""
        return self._call(self.inner.mapping, z, y, self._input)

    def synthesis(self, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._call(self.inner.synthesis, w, y, lambda w, y: w)

    @property
    def w_space(self) -> bool:
        return bool(getattr(self.inner, "w_space", False))

    @property
    def w_avg(self) -> torch.Tensor:
        """The inner generator's average w (truncation's centre; labels move w around it)."""
        return self.inner.w_avg

    @property
    def w_dim(self) -> int | None:
        return getattr(self.inner, "w_dim", None)

    def _input(self, z, y):
        return z if self.embed is None else torch.cat([z, self.embed(y).to(z.dtype)], 1)

    def _call(self, fn, x, y, prepare):
        check_labels(y, x.shape[0], self.labels)  # not len(x): an int, which fixes an exported batch
        self._slot.y = y
        try:
            return fn(prepare(x, y))
        finally:
            self._slot.y = None


class ConditionalCritic(Critic):
    """A critic of (image, label) pairs: ``forward(x, y)`` -> scores ``(N,)``; with ``has_aux``, ``aux="real"|"fake"``
    returns ``(scores, aux_loss)``. ``inner`` is the architecture's critic."""

    wraps_network = True

    def __init__(self, inner: Critic, shape: ImageShape, labels):
        super().__init__(shape)
        self.inner, self.labels = inner, labels

    @property
    def inner_has_aux(self) -> bool:
        """Whether the architecture's own critic has an auxiliary loss (FastGAN's reconstruction)."""
        return bool(getattr(self.inner, "has_aux", False))


class _LabelSlot:
    """The labels of the generator call in progress, for the conditional batch norm layers inside it (a plain
    object, not a module: the layers and the wrapper share it without a cycle in the module tree)."""

    y: torch.Tensor | None = None


class ConditionalBatchNorm(nn.Module):
    """A batch norm layer whose scale and shift also depend on the labels (de Vries et al. 2017; Miyato & Koyama
    2018): ``bn(x) * (1 + sum_a gamma_a[y_a]) + sum_a beta_a[y_a]``. The per-class terms start at zero, so at
    initialisation it is exactly the batch norm it replaced (weights, statistics and all)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, sizes):
        super().__init__()
        self.bn = bn
        self.gamma = nn.ModuleList(nn.Embedding(k, bn.num_features) for k in sizes)
        self.beta = nn.ModuleList(nn.Embedding(k, bn.num_features) for k in sizes)
        for table in (*self.gamma, *self.beta):
            nn.init.zeros_(table.weight)
        self.slot: _LabelSlot | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(x)
        y = self.slot.y if self.slot is not None else None
        if y is None:
            raise RuntimeError("ConditionalBatchNorm called outside a ConditionalGenerator call (no labels)")
        gamma = sum(t(y[:, a]) for a, t in enumerate(self.gamma))
        beta = sum(t(y[:, a]) for a, t in enumerate(self.beta))
        view = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        return out * (1 + gamma.view(view).to(out.dtype)) + beta.view(view).to(out.dtype)


def conditional_batchnorm(module: nn.Module, sizes) -> int:
    """Replace every BatchNorm1d/2d inside ``module`` by a ``ConditionalBatchNorm`` around it; returns how many."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, ConditionalBatchNorm(child, sizes))
            count += 1
        elif not isinstance(child, ConditionalBatchNorm):
            count += conditional_batchnorm(child, sizes)
    return count


def require_features(critic: Critic, what: str) -> int:
    """The critic's ``feature_dim``; a clear error when it does not split into ``features``/``score``."""
    dim = getattr(critic, "feature_dim", None)
    if not isinstance(dim, int) or dim < 1 or type(critic).features is Critic.features:
        raise ValueError(f"{what} needs a critic that splits into features() and score() (feature_dim set); "
                         f"{type(critic).__name__} does not: use condition: {{name: concat}}")
    return dim


def label_maps(embedding: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Label vectors ``(N, E)`` as constant image planes ``(N, E, H, W)`` to concatenate with the images ``like``."""
    n, _, h, w = like.shape
    maps = embedding.to(like.dtype)[:, :, None, None].expand(-1, -1, h, w)
    return maps.contiguous(memory_format=torch.channels_last) if like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous() else maps


def check_labels(y, n: int, labels) -> None:
    """Raise a ValueError that names the expected shape unless ``y`` is ``n`` rows of class codes for ``labels``
    (a LabelSpace): the check every conditioning's forward starts with, its own or a third party's."""
    if not isinstance(y, torch.Tensor) or y.dtype != torch.long or tuple(y.shape) != (n, len(labels.attributes)):
        got = f"{tuple(y.shape)} {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"labels must be a long tensor ({n}, {len(labels.attributes)}) of class codes "
                         f"({', '.join(labels.attributes)}), got {got}")


# -- what a conditional step adds: labels bound for regularizers, the matching-aware term -------------------------
class WithLabels(nn.Module):
    """A conditional network with the labels of the batch bound: what a regularizer calls as ``critic(images)``
    (real, fake and their mixes share the batch's labels) or ``generator(z)``. Attributes the network has
    (``mapping``, ``synthesis``, ``w_avg`` of a StyleGAN-style generator) are reached through it."""

    def __init__(self, net, y):
        super().__init__()
        self.net, self.y = net, y

    def forward(self, x):
        return self.net(x, self.y)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            attr = getattr(self.net, name)
            if name in ("mapping", "synthesis") and callable(attr):
                return lambda x: attr(x, self.y)
            return attr


def bind_labels(net, y):
    """``net`` itself for an unconditional batch (``y`` None), else ``net`` with the labels ``y`` bound."""
    return net if y is None else WithLabels(net, y)


def wrong_labels(y: torch.Tensor, sizes) -> torch.Tensor:
    """Labels that differ from ``y`` in every attribute: each shifted by a random non-zero offset."""
    sizes = torch.tensor(sizes, device=y.device)
    offset = 1 + (torch.rand(y.shape, device=y.device) * (sizes - 1)).long()
    return (y + offset) % sizes


def matching_aware(loss, objective, real_scores, scores, critic, real, y, labels, weight: float):
    """E1's matching-aware critic loss (Reed et al. 2016): real images with a wrong label count as fakes too,
    ``(1 - weight) * loss + weight * critic_loss(real, real with wrong labels)``. ``scores(critic, images, y)`` is
    how the step scores a batch."""
    wrong_scores, _ = scores(critic, real, wrong_labels(y, labels.sizes))
    return (1 - weight) * loss + weight * objective.critic_loss(real_scores, wrong_scores)
