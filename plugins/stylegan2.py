"""StyleGAN2's generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

Mapping network: z -> z / RMS(z) -> ``mapping_layers`` equalized-lr Linear layers (leaky ReLU 0.2 times sqrt 2,
learning-rate multiplier ``mapping_lr_mul``) -> w. A buffer ``w_avg`` follows the mean w in training mode (the
centre of the truncation trick, ``ganzoo sample --truncation``).

Synthesis network: a learned constant at the start size of ``ganzoo.pyramid(resolution)`` (4x4 for 16..128 px, 7x7
for 28 px), then per resolution: bilinear x2 upsampling, two modulated and demodulated 3x3 convolutions (one grouped
convolution over the batch, plain torch), each followed by per-pixel noise with a learned per-channel strength,
bias and leaky ReLU 0.2 times sqrt 2; a modulated 1x1 toRGB per resolution whose outputs are upsampled and summed
(StyleGAN2's skip generator). Every layer takes its own w (its style) through an equalized-lr affine layer: ``num_ws``
of them; ``synthesis`` accepts one w per image ``(N, w_dim)`` or one per layer ``(N, num_ws, w_dim)``.

Training mode adds style mixing regularization: with probability ``mixing`` per batch a second latent is drawn and
its w drives the layers from a random crossover on. All randomness (noise inputs, mixing) comes from torch's global
RNG, which ganzoo checkpoints and forks outside the training step, so a resumed run stays bit-exact.

Not as in the paper (on purpose, to stay plain torch): bilinear x2 upsampling replaces the transposed convolution
with a [1, 3, 3, 1] FIR blur (bilinear x2 is that same separable filter, applied before the 3x3 convolution rather
than fused with it); the noise strength is per channel (the paper: one scalar per layer); no noise buffers for a
"const" noise mode; no mixed precision and no activation clamping (conv_clamp); the output is not squashed or clamped:
it is roughly in [-1, 1] once trained, and ganzoo clamps when it writes images. Under ``concat`` conditioning the
labels join z before the mapping network (StyleGAN2-ADA embeds them separately), and the second latent of style
mixing redraws the label dimensions too: set ``mixing: 0`` for a conditional run.
"""

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import ganzoo
from ganzoo import Generator, GeneratorBuilder, ImageShape, Params, pyramid

SQRT2 = math.sqrt(2.0)


class StyleGAN2Params(Params):
    w_dim: int = Field(512, ge=1, description="size of the intermediate latent w (and of the mapping network's hidden layers)")
    mapping_layers: int = Field(8, ge=1, description="fully connected layers of the mapping network z -> w")
    mapping_lr_mul: float = Field(0.01, gt=0, allow_inf_nan=False,
                                  description="learning-rate multiplier of the mapping network (equalized lr)")
    channel_base: int = Field(32768, ge=1, description="channels at resolution r are channel_base // r, capped by max_channels")
    max_channels: int = Field(512, ge=1, description="cap on any layer's channels")
    mixing: float = Field(0.9, ge=0, le=1, description="style mixing regularization: probability per training batch of "
                          "switching to a second latent's w from a random layer on")
    w_avg_beta: float = Field(0.995, ge=0, lt=1, description="decay of the running average w_avg (truncation's centre), "
                              "updated in training mode only")


# -- equalized-learning-rate layers: weights N(0, 1) at rest, scaled at run time ------------------------------------
class EqualLinear(nn.Module):
    """A Linear layer with equalized learning rate: stored weights N(0, 1) / lr_mul, used times lr_mul / sqrt(in);
    the bias is stored divided by lr_mul (so ``bias_init`` is its effective start value). ``act``: leaky ReLU 0.2
    times sqrt 2 (StyleGAN's gain)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.bias_init, self.lr_mul, self.act = bias_init, lr_mul, act
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_().div_(self.lr_mul)
            self.bias.fill_(self.bias_init / self.lr_mul)

    def forward(self, x):
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True) -> torch.Tensor:
    """StyleGAN2's modulated convolution: every image gets its own weights ``weight * style`` (scaled per input
    channel), demodulated to unit norm per output channel. Computed as StyleGAN2 does in training (its non-fused
    form): the input scaled by the styles, one convolution with the shared weight, the output scaled by the
    demodulation coefficients. The same numbers as a grouped convolution per image, with no batch size baked in
    (an exported graph keeps a dynamic batch)."""
    cout, cin, k, _ = weight.shape
    out = F.conv2d(x * styles.reshape(-1, cin, 1, 1), weight, padding=k // 2)
    if demodulate:
        wt = weight.unsqueeze(0) * styles.reshape(-1, 1, cin, 1, 1)  # (N, Cout, Cin, k, k)
        out = out * torch.rsqrt(wt.square().sum(dim=(2, 3, 4)) + 1e-8).reshape(-1, cout, 1, 1)
    return out


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 (half-pixel centres): the separable [1, 3, 3, 1] / 4 filter, edges replicated."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class StyledConv(nn.Module):
    """[x2 bilinear ->] modulated, demodulated 3x3 conv -> + noise * per-channel strength -> + bias -> lrelu * sqrt 2."""

    def __init__(self, w_dim: int, cin: int, cout: int, up: bool = False):
        super().__init__()
        self.up = up
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.noise_strength = nn.Parameter(torch.empty(cout))
        self.bias = nn.Parameter(torch.empty(cout))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_()
            self.noise_strength.zero_()
            self.bias.zero_()

    def forward(self, x, w):
        styles = self.affine(w)
        if self.up:
            x = upsample2x(x)
        x = modulated_conv2d(x, self.weight, styles, demodulate=True)
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)  # torch's global RNG
        x = x + noise * self.noise_strength.view(1, -1, 1, 1)
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * SQRT2


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, + bias, no activation."""

    def __init__(self, w_dim: int, cin: int, channels: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.empty(channels, cin, 1, 1))
        self.bias = nn.Parameter(torch.empty(channels))
        self.gain = 1.0 / math.sqrt(cin)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_()
            self.bias.zero_()

    def forward(self, x, w):
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.gain, demodulate=False)
        return x + self.bias.view(1, -1, 1, 1)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int):
        super().__init__()
        self.const = nn.Parameter(torch.empty(channels, size, size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.const.normal_()

    def forward(self, n: int):
        return self.const.unsqueeze(0).expand(n, -1, -1, -1)


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(*(EqualLinear(a, b, lr_mul=lr_mul, act=True) for a, b in zip(dims, dims[1:])))

    def forward(self, z):
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # normalise z to unit RMS
        return self.net(z)


def _widths(p: StyleGAN2Params, start: int, stages: int) -> list[int]:
    return [max(1, min(p.channel_base // (start * 2**i), p.max_channels)) for i in range(stages + 1)]


class StyleGAN2Generator(Generator):
    """``mapping(z) -> w (N, w_dim)``, ``synthesis(w or ws) -> images``; ``forward(z) == synthesis(mapping(z))``
    in eval mode (in training mode with style mixing)."""

    def __init__(self, p: StyleGAN2Params, shape: ImageShape):
        super().__init__(shape)
        self.p = p
        start, stages = pyramid(shape.resolution)
        widths = _widths(p, start, stages)
        self.w_dim = p.w_dim
        self.map = MappingNetwork(shape.latent_dim, p.w_dim, p.mapping_layers, p.mapping_lr_mul)
        self.input = ConstantInput(widths[0], start)
        self.convs = nn.ModuleList([StyledConv(p.w_dim, widths[0], widths[0])])
        self.torgbs = nn.ModuleList([ToRGB(p.w_dim, widths[0], shape.channels)])
        self.rgb_index = [1]  # the w each toRGB takes: the one after its block's convs (shared with the next block's first)
        for a, b in zip(widths, widths[1:]):
            self.convs.extend([StyledConv(p.w_dim, a, b, up=True), StyledConv(p.w_dim, b, b)])
            self.torgbs.append(ToRGB(p.w_dim, b, shape.channels))
            self.rgb_index.append(len(self.convs))
        self.num_ws = len(self.convs) + 1
        self.register_buffer("w_avg", torch.zeros(p.w_dim))

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        w = self.map(z)
        if self.training:  # truncation's centre follows the mean w
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0).to(self.w_avg.dtype), 1.0 - self.p.w_avg_beta)
        return w

    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1) if w.dim() == 2 else w
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"synthesis takes w (N, {self.w_dim}) or ws (N, {self.num_ws}, {self.w_dim}), got {tuple(w.shape)}")
        x = self.input(ws.shape[0])  # a size the tracer follows (an exported graph keeps a dynamic batch)
        x = self.convs[0](x, ws[:, 0])
        img = self.torgbs[0](x, ws[:, self.rgb_index[0]])
        for i, torgb in enumerate(self.torgbs[1:], 1):
            x = self.convs[2 * i - 1](x, ws[:, 2 * i - 1])
            x = self.convs[2 * i](x, ws[:, 2 * i])
            img = upsample2x(img) + torgb(x, ws[:, self.rgb_index[i]])
        return img

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.mapping(z)
        if self.training and self.p.mixing > 0 and self.num_ws > 1:
            # style mixing: decided and cut on the CPU stream (no device sync; works on the meta device too)
            if float(torch.rand((), device="cpu")) < self.p.mixing:
                cutoff = int(torch.randint(1, self.num_ws, (), device="cpu"))
                w2 = self.map(torch.randn(z.shape, device=z.device, dtype=z.dtype))  # w_avg follows the first latents only
                ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
                ws[:, cutoff:] = w2.unsqueeze(1)
                return self.synthesis(ws)
        return self.synthesis(w)


def _reset(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (EqualLinear, StyledConv, ToRGB, ConstantInput)):
            m.reset_parameters()
        elif isinstance(m, StyleGAN2Generator):
            m.w_avg.zero_()


class StyleGAN2GeneratorBuilder(GeneratorBuilder):
    name = "stylegan2"
    description = 'StyleGAN2 generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN")'
    Params = StyleGAN2Params

    def initialize(self, module):
        _reset(module)  # equalized lr: weights N(0, 1), scaled at run time

    def build(self, shape):
        start, _ = pyramid(shape.resolution)
        if start > 8 or shape.resolution < 4:
            raise ValueError(f"resolution {shape.resolution} must be 4..8 times a power of two (e.g. 16, 28, 32, 64, 128)")
        return StyleGAN2Generator(self.params, shape)


@ganzoo.hookimpl
def register_generators(register):
    register(StyleGAN2GeneratorBuilder)
