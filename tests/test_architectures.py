import pytest
import torch

import ganzoo
from ganzoo import ImageShape

from conftest import build_net

SMALL = {  # small widths keep the suite fast; the defaults are exercised by the recipes
    "mlp": ({"hidden": [32, 32]}, {"hidden": [32]}),
    "upsample_conv": ({"channels": 16}, {"widths": [8, 8, 16, 16]}),
    "dcgan": ({"base_channels": 4}, {"base_channels": 4}),
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [28, 32, 64, 96, 128])
@pytest.mark.parametrize("arch", sorted(SMALL))
def test_every_architecture_builds_at_every_resolution(arch, resolution, channels):
    gp, cp = SMALL[arch]
    shape = ImageShape(resolution=resolution, channels=channels, latent_dim=7)
    G, D = build_net("generator", arch, shape, **gp), build_net("critic", arch, shape, **cp)
    G.eval(), D.eval()
    x = G(torch.randn(3, 7))
    assert x.shape == (3, channels, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert D(x).shape == (3,)


def test_default_widths_match_the_reference_experiments():
    shape = ImageShape(resolution=64, channels=3, latent_dim=100)
    G = build_net("generator", "dcgan", shape, base_channels=128)  # E1: 100 -> 1024 -> 512 -> 256 -> 128 -> 3
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [1024, 512, 256, 128, 3]
    D = build_net("critic", "dcgan", shape)  # E1: 3 -> 64 -> 128 -> 256 -> 512 -> 1
    assert [m.out_channels for m in D.modules() if isinstance(m, torch.nn.Conv2d)] == [64, 128, 256, 512, 1]

    G = build_net("generator", "upsample_conv", shape)  # E0: Linear(100 -> 128 x 16 x 16)
    assert G.stem.out_features == 128 * 16 * 16
    D = build_net("critic", "upsample_conv", shape)
    assert [m.out_channels for m in D.modules() if isinstance(m, torch.nn.Conv2d)] == [16, 32, 64, 128]


def test_unsupported_resolution_is_a_clear_error(tiny):
    tiny["data"]["resolution"] = 20  # 5 * 4: dcgan is fine, upsample_conv with 3 upsamplings is not
    tiny["generator"] = {"name": "upsample_conv", "latent_dim": 8, "channels": 8, "n_upsample": 3}
    with pytest.raises(ganzoo.GanzooError, match="generator 'upsample_conv' cannot be built for 3x20x20"):
        ganzoo.build_models(ganzoo.load_recipe(tiny))


def test_dcgan_init_is_on_by_default_and_optional(tiny):
    G, _ = ganzoo.build_models(ganzoo.load_recipe(tiny))
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 0.004
    bn = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1) < 0.02 and 0 < bn.std().item() < 0.05
    tiny["generator"]["init"] = "default"
    G, _ = ganzoo.build_models(ganzoo.load_recipe(tiny))
    bn = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert torch.all(bn == 1)
