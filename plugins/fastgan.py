"""A light FastGAN (Liu et al. 2021): skip-layer excitation in the generator; a critic that also reconstructs
real images from its own features through small decoders (a self-supervised task that keeps it from
overfitting a small data set).

Generator: z -> 4x4 -> up-blocks (x2 nearest, 3x3 conv, BN, GLU) to the resolution; each skip-layer excitation
(SLE) turns a low-resolution feature map into per-channel gates of a feature map 8x (or 16x) larger. Critic:
down-blocks (4x4 stride-2 conv, BN, LeakyReLU) to 8x8, a 4x4 conv score map averaged to one score. On real
batches the critic's auxiliary loss is the L1 distance between (a) its 8x8 features decoded to 32x32 and the
image at 32x32, and (b) a random quadrant of its 16x16 features decoded to 32x32 and that quadrant of the image
at 32x32 (FastGAN adds a perceptual distance; no perceptual network can be downloaded here, so L1 only).
"""

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Critic, CriticBuilder, Generator, GeneratorBuilder, ImageShape, Params


class FastGANGeneratorParams(Params):
    base_channels: int = Field(32, ge=4, description="channels at full resolution; doubled per stage going down")
    max_channels: int = Field(512, ge=4, description="cap on any block's channels")


class FastGANCriticParams(Params):
    base_channels: int = Field(32, ge=4, description="channels of the first down-block; doubled per stage")
    max_channels: int = Field(512, ge=4, description="cap on any block's channels")
    recon_weight: float = Field(1.0, ge=0, description="weight of the reconstruction loss on real images (0: no decoders used)")


def _stages(resolution: int) -> int:
    stages = (resolution // 4).bit_length() - 1
    if resolution < 32 or resolution != 4 * 2**stages:
        raise ValueError(f"resolution {resolution} must be 4 times a power of two, at least 32 (32, 64, 128)")
    return stages


def up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, 2 * cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(2 * cout), nn.GLU(dim=1))


class SLE(nn.Module):
    """Skip-layer excitation: channel gates for a large feature map from a small one."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(cin, cout, 4, bias=False), nn.LeakyReLU(0.1),
                                 nn.Conv2d(cout, cout, 1, bias=False), nn.Sigmoid())

    def forward(self, small, large):
        return large * self.net(small)


class FastGANGenerator(Generator):
    def __init__(self, p: FastGANGeneratorParams, shape: ImageShape):
        super().__init__(shape)
        stages = _stages(shape.resolution)
        self.widths = [min(p.base_channels * 2**i, p.max_channels) for i in reversed(range(stages + 1))]  # 4x4 ... full
        self.stem = nn.Sequential(nn.ConvTranspose2d(shape.latent_dim, 2 * self.widths[0], 4, bias=False),
                                  nn.BatchNorm2d(2 * self.widths[0]), nn.GLU(dim=1))
        self.ups = nn.ModuleList(up(a, b) for a, b in zip(self.widths, self.widths[1:]))
        # excitation from the 4x4 and 8x8 maps into the maps 8x larger (32 and 64 px at 64 px)
        self.sle = nn.ModuleDict({str(i + 3): SLE(self.widths[i], self.widths[i + 3]) for i in range(2) if i + 3 <= stages})
        self.out = nn.Sequential(nn.Conv2d(self.widths[-1], shape.channels, 3, padding=1), nn.Tanh())

    def forward(self, z):
        feats = [self.stem(z.view(z.shape[0], -1, 1, 1))]
        for i, block in enumerate(self.ups, start=1):
            x = block(feats[-1])
            if str(i) in self.sle:
                x = self.sle[str(i)](feats[i - 3], x)
            feats.append(x)
        return self.out(feats[-1])


def down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers, nn.LeakyReLU(0.2))


def decoder(cin: int, channels: int) -> nn.Sequential:
    """8x8 features -> 32x32 image."""
    return nn.Sequential(up(cin, max(cin // 2, 8)), up(max(cin // 2, 8), max(cin // 4, 8)),
                         nn.Conv2d(max(cin // 4, 8), channels, 3, padding=1), nn.Tanh())


class FastGANCritic(Critic):
    has_aux = True

    def __init__(self, p: FastGANCriticParams, shape: ImageShape):
        super().__init__(shape)
        stages = _stages(shape.resolution) - 1  # down to 8x8
        widths = [min(p.base_channels * 2**i, p.max_channels) for i in range(stages + 1)]
        chans = [shape.channels, *widths[:-1]]
        self.blocks = nn.ModuleList(down(a, b, norm=i > 0) for i, (a, b) in enumerate(zip(chans, chans[1:])))
        self.head = nn.Conv2d(chans[-1], 1, 4, bias=False)
        self.feature_dim = chans[-1] * 8 * 8
        self.map_shape = (chans[-1], 8, 8)
        self.recon_weight = p.recon_weight
        self.decode_whole = decoder(chans[-1], shape.channels)
        self.decode_part = decoder(chans[-2], shape.channels)

    def _maps(self, x):
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps[-2], maps[-1]  # 16x16 and 8x8

    def features(self, x):
        return self._maps(x)[1].flatten(1)

    def score(self, features):
        return self.head(features.view(-1, *self.map_shape)).mean(dim=(1, 2, 3))

    def forward(self, x, aux=None):
        m16, m8 = self._maps(x)
        scores = self.score(m8.flatten(1))
        if aux is None:
            return scores
        if aux != "real" or self.recon_weight == 0:
            return scores, None
        n = len(x)
        target = F.interpolate(x, size=(32, 32), mode="area")
        quadrant = torch.randint(0, 4, (n,), device=x.device)
        qy, qx = quadrant // 2, quadrant % 2
        rows = (qy * 8)[:, None] + torch.arange(8, device=x.device)  # (n, 8) rows of the 16x16 map
        cols = (qx * 8)[:, None] + torch.arange(8, device=x.device)
        batch = torch.arange(n, device=x.device)[:, None, None]
        crop = m16.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        half = x.shape[-1] // 2
        iy, ix = (qy * half)[:, None] + torch.arange(half, device=x.device), (qx * half)[:, None] + torch.arange(half, device=x.device)
        part = x.permute(0, 2, 3, 1)[batch, iy[:, :, None], ix[:, None, :]].permute(0, 3, 1, 2)
        part = F.interpolate(part, size=(32, 32), mode="area")
        loss = F.l1_loss(self.decode_whole(m8), target) + F.l1_loss(self.decode_part(crop), part)
        return scores, self.recon_weight * loss


def _fastgan_init(module):
    for m in module.modules():  # FastGAN's N(0, 0.02) for convs, N(1, 0.02) for batch norm
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class FastGANGeneratorBuilder(GeneratorBuilder):
    name = "fastgan"
    description = "Light FastGAN generator: GLU up-blocks with skip-layer excitation"
    Params = FastGANGeneratorParams

    def initialize(self, module):
        _fastgan_init(module)

    def build(self, shape):
        _stages(shape.resolution)
        return FastGANGenerator(self.params, shape)


class FastGANCriticBuilder(CriticBuilder):
    name = "fastgan"
    description = "Light FastGAN critic with self-supervised reconstruction decoders"
    Params = FastGANCriticParams

    def initialize(self, module):
        _fastgan_init(module)

    def build(self, shape):
        _stages(shape.resolution)
        return FastGANCritic(self.params, shape)


@ganzoo.hookimpl
def register_generators(register):
    register(FastGANGeneratorBuilder)


@ganzoo.hookimpl
def register_critics(register):
    register(FastGANCriticBuilder)
