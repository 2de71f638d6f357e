"""R3GAN's generator and critic (plugins/r3gan.py): shapes, the identity-at-init blocks, the resampling filter,
training through ganzoo.train (plain and projection-conditioned), the meta-device pre-flight and refused sizes."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import ImageShape, load_recipe, train
from ganzoo_plugins.r3gan import Block, Transition, downsample, upsample

from conftest import build_net

NETS = {"base_channels": 4, "max_channels": 16}


def _pair(resolution, channels, latent_dim=8, **params):
    shape = ImageShape(resolution=resolution, channels=channels, latent_dim=latent_dim)
    return (build_net("generator", "r3gan", shape, initialize=True, **{**NETS, **params}),
            build_net("critic", "r3gan", shape, initialize=True, **{**NETS, **params}))


def _r3gan(recipe, **extra):
    recipe["generator"] = {"name": "r3gan", "latent_dim": 8, **NETS, **extra}
    recipe["critic"] = {"name": "r3gan", **NETS, **extra}
    recipe["output"]["samples"] = 0
    return recipe


@pytest.mark.parametrize("resolution, channels", [(16, 1), (16, 3), (32, 3), (64, 1), (128, 3)])
def test_builds_at_16_to_128_px_gray_and_rgb(resolution, channels):
    g, d = _pair(resolution, channels)
    x = g(torch.randn(2, 8))
    assert x.shape == (2, channels, resolution, resolution) and x.abs().max() <= 1
    assert d(x).shape == (2,)
    f = d.features(x)
    assert f.shape == (2, d.feature_dim) and d.feature_dim == 16  # the capped width at 4x4
    assert torch.allclose(d.score(f), d(x), atol=1e-6)  # the split projection and acgan use
    stages = int(math.log2(resolution // 4)) + 1
    assert sum(isinstance(m, Block) for m in g.modules()) == sum(isinstance(m, Block) for m in d.modules()) == 2 * stages


def test_every_block_starts_as_the_identity_with_the_fixup_scale():
    g, d = _pair(32, 3, base_channels=8, max_channels=32, blocks_per_stage=3)
    for net in (g, d):
        blocks = [m for m in net.modules() if isinstance(m, Block)]
        assert len(blocks) == 12  # 4 stages (4, 8, 16, 32 px) of 3
        for b in blocks:
            assert not b.project.weight.any() and not b.project.bias.any()  # the last conv of every block is zero
            x = torch.randn(2, b.expand.in_channels, 8, 8)
            assert torch.equal(b(x), x)
        big = max((b.expand for b in blocks), key=lambda c: c.weight.numel())  # He for leaky ReLU x L^(-1/4)
        expected = math.sqrt(2 / (1 + 0.2**2)) / math.sqrt(big.in_channels) * 12 ** -0.25
        assert big.weight.std().item() == pytest.approx(expected, rel=0.15)
    x = g(torch.randn(6, 8))
    assert torch.isfinite(x).all() and x.std(0).mean() > 1e-3 and x.std((2, 3)).mean() > 1e-3  # varies by z and by pixel
    linear = build_net("generator", "r3gan", ImageShape(resolution=16, channels=3, latent_dim=8), initialize=True,
                       output="linear", **NETS)
    assert torch.isfinite(linear(torch.randn(2, 8))).all()


def test_groups_divide_and_transitions_change_width_only_where_needed():
    shape = ImageShape(resolution=16, channels=3, latent_dim=8)
    g = build_net("generator", "r3gan", shape, base_channels=12, max_channels=24, group_size=16)
    mixes = {m.mix.in_channels: m.mix.groups for m in g.modules() if isinstance(m, Block)}
    assert mixes == {48: 3, 24: 2}  # hidden 24 = 2 x 12 (16 does not divide 24), hidden 48 = 3 x 16
    transitions = [m for m in g.modules() if isinstance(m, Transition)]
    assert [t.conv is None for t in transitions] == [True, False]  # 24 -> 24 at 8x8, 24 -> 12 at 16x16


def test_resampling_keeps_a_constant_image_and_has_no_shift():
    x = torch.full((2, 3, 8, 8), 0.37)
    up, down = upsample(x), downsample(x)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    assert torch.allclose(up, x.mean().expand_as(up), atol=1e-7) and torch.allclose(down, x.mean().expand_as(down), atol=1e-7)
    ramp = torch.arange(8.0).expand(1, 1, 8, 8)
    assert torch.allclose(upsample(ramp)[0, 0, 0, :-1], torch.arange(15.0) / 2)  # linear interpolation ([1, 2, 1] / 2)
    impulse = torch.zeros(1, 1, 8, 8)
    impulse[..., 4, 4] = 1  # on the kept grid: the centre tap, (2 / 4) ** 2
    assert downsample(impulse).sum() == downsample(impulse)[0, 0, 2, 2] == 0.25
    impulse = impulse.roll((1, 1), (2, 3))  # between kept pixels: the outer taps of both neighbours, (1 / 4) ** 2 each
    assert torch.equal(downsample(impulse)[0, 0, 2:4, 2:4], torch.full((2, 2), 1 / 16)) and downsample(impulse).sum() == 0.25
    x = torch.randn(1, 1, 8, 8)
    back = downsample(upsample(x))  # up then down: the symmetric (1, 6, 1) / 8 blur on each axis, no half-pixel shift
    rows = (x[..., :-2, :] + 6 * x[..., 1:-1, :] + x[..., 2:, :]) / 8
    both = (rows[..., :-2] + 6 * rows[..., 1:-1] + rows[..., 2:]) / 8
    assert torch.allclose(back[..., 1:-1, 1:-1], both, atol=1e-6)
    assert torch.allclose(downsample(upsample(x.flip(-1))), back.flip(-1), atol=1e-6)


def test_builds_and_runs_on_the_meta_device(tiny):
    tiny = _r3gan(tiny)
    tiny["data"]["resolution"] = 32
    counts = ganzoo.models.preflight(load_recipe(tiny))
    g, d = _pair(32, 3)
    assert counts == {"generator": sum(p.numel() for p in g.parameters()), "critic": sum(p.numel() for p in d.parameters())}
    with torch.device("meta"):
        g, d = ganzoo.build_models(load_recipe(tiny), check=False)
        scores = d(g(torch.zeros(2, 8)))
    assert scores.is_meta and scores.shape == (2,)


def test_trains_a_few_steps_with_ragan_and_r1(tiny):
    tiny = _r3gan(tiny)
    tiny["objective"] = {"name": "ragan"}
    tiny["regularizers"] = [{"name": "r1", "every": 1}]
    result = train(load_recipe(tiny), progress=False)
    assert result.steps == 3
    lines = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines() if "d_loss" in line]
    assert len(lines) == 3 and all(math.isfinite(line[k]) for line in lines for k in ("d_loss", "g_loss", "penalty/r1"))
    images = ganzoo.generate(ganzoo.load_generator(result.run_dir), 2)
    assert images.shape == (2, 3, 16, 16)


@pytest.fixture
def colours(tmp_path):
    """Three class folders of 8 noisy single-colour 16 px images."""
    rng = np.random.default_rng(0)
    for name, colour in {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}.items():
        (tmp_path / "colours" / name).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(np.array(colour)[None, None] + rng.normal(0, 25, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "colours" / name / f"{i}.png")
    return tmp_path / "colours"


def test_projection_conditioning_trains_and_cbn_is_refused_clearly(tiny, colours):
    tiny = _r3gan(tiny)
    tiny["data"] = {"name": "images", "path": str(colours), "labels": ["folder"], "resolution": 16, "channels": 3}
    tiny["condition"] = {"name": "projection"}
    space = ganzoo.LabelSpace(("folder",), (("blue", "green", "red"),), ((8, 8, 8),))
    with pytest.raises(ganzoo.GanzooError, match="R3GANGenerator has no BatchNorm layers.*set condition.generator: concat"):
        ganzoo.build_models(load_recipe(tiny), labels=space)
    tiny["condition"] = {"name": "projection", "generator": "concat"}
    tiny["objective"] = {"name": "hinge"}
    tiny["train"]["steps"] = 2
    result = train(load_recipe(tiny), progress=False)
    assert result.steps == 2 and all(math.isfinite(result.metrics[k]) for k in ("d_loss", "g_loss"))
    images = ganzoo.generate(ganzoo.load_generator(result.run_dir), 3, labels={"folder": "red"})
    assert images.shape == (3, 3, 16, 16)


def test_unsupported_resolutions_are_one_clear_message(tiny):
    tiny = _r3gan(tiny)
    tiny["data"]["resolution"] = 24
    with pytest.raises(ganzoo.GanzooError, match=r"generator 'r3gan' cannot be built for 3x24x24: resolution 24 is not "
                                                 r"supported: r3gan builds 16, 32, 64, 128 px") as info:
        ganzoo.build_models(load_recipe(tiny))
    assert "\n" not in str(info.value)
    for resolution in (8, 256):
        with pytest.raises(ValueError, match=f"resolution {resolution} is not supported"):
            _pair(resolution, 3)
