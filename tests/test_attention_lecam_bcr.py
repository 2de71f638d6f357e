"""Self-attention in the resnet nets, and the limited-data regularizers lecam and bcr: hand-computed values,
gradients, clear refusals, and a few training steps through ganzoo.train (with an exact resume for lecam's state)."""

import json
import re
import math

import pytest
import torch

import ganzoo
from ganzoo import ImageShape, load_recipe, train
from ganzoo_plugins.bcr import BCR
from ganzoo_plugins.lecam import LeCam
from ganzoo_plugins.resnet import SelfAttention

from conftest import build_net
from test_resume import assert_same_checkpoint

SHAPE = ImageShape(resolution=32, channels=3, latent_dim=8)
NETS = {"base_channels": 8, "max_channels": 32}


def test_self_attention_matches_a_hand_computation_and_starts_as_the_identity():
    torch.manual_seed(0)
    layer = SelfAttention(16)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(layer(x), x)  # gate at 0: a new layer passes its input through
    with torch.no_grad():
        layer.gamma.fill_(0.7)
        out = layer(x)
        _check_by_hand(layer, x, out)


def _check_by_hand(layer, x, out):

    def conv1x1(conv, t):  # (c_in, h, w) -> (c_out, h, w)
        return torch.einsum("oi,ihw->ohw", conv.weight[:, :, 0, 0], t) + conv.bias[:, None, None]

    def pool(t):  # 2x2 max pooling by hand: (c, 4, 4) -> (c, 4)
        return torch.stack([t[:, i:i + 2, j:j + 2].amax(dim=(1, 2)) for i in (0, 2) for j in (0, 2)], dim=1)

    for n in range(2):
        q = conv1x1(layer.query, x[n]).flatten(1)  # (2, 16 positions)
        k, v = pool(conv1x1(layer.key, x[n])), pool(conv1x1(layer.value, x[n]))  # (2, 4), (8, 4)
        mixed = torch.zeros(8, 16)
        for p in range(16):
            logits = torch.tensor([float(q[:, p] @ k[:, j]) for j in range(4)])
            weights = logits.exp() / logits.exp().sum()
            mixed[:, p] = (v * weights).sum(1)
        expected = x[n] + 0.7 * conv1x1(layer.out, mixed.view(8, 4, 4))
        assert torch.allclose(out[n], expected, atol=1e-5)


def test_attention_goes_after_the_chosen_blocks_and_learns_its_gate():
    plain_g, plain_d = build_net("generator", "resnet", SHAPE, **NETS), build_net("critic", "resnet", SHAPE, **NETS)
    g = build_net("generator", "resnet", SHAPE, initialize=True, attention=[16], **NETS)
    d = build_net("critic", "resnet", SHAPE, initialize=True, attention=[16, 8], **NETS)
    assert [type(m).__name__ for m in g.blocks] == ["UpBlock", "UpBlock", "SelfAttention", "UpBlock"]  # 4 -> 8 -> 16 -> 32
    assert [type(m).__name__ for m in d.blocks] == ["DownBlock", "SelfAttention", "DownBlock", "SelfAttention", "DownBlock"]
    assert [m.query.in_channels for m in d.blocks if isinstance(m, SelfAttention)] == [8, 16]
    assert sum(isinstance(m, SelfAttention) for m in [*plain_g.modules(), *plain_d.modules()]) == 0
    extra = sum(p.numel() for p in g.parameters()) - sum(p.numel() for p in plain_g.parameters())
    c = 16  # the generator's width at 16 px: q, k (c/8 each), v (c/2), out (back to c), the gate
    assert extra == 2 * (c * c // 8 + c // 8) + (c * c // 2 + c // 2) + (c // 2 * c + c) + 1
    x = g(torch.randn(4, 8))
    assert x.shape == (4, 3, 32, 32)
    d(x).sum().backward()
    gates = [m.gamma.grad for m in [*g.modules(), *d.modules()] if isinstance(m, SelfAttention)]
    assert len(gates) == 3 and all(grad is not None and grad != 0 for grad in gates)


def test_attention_at_a_resolution_without_a_block_is_one_clear_message(tiny):
    tiny["data"]["resolution"] = 32
    tiny["generator"] = {"name": "resnet", "latent_dim": 8, **NETS, "attention": [12]}
    tiny["critic"] = {"name": "resnet", **NETS}
    with pytest.raises(ganzoo.GanzooError, match=r"generator 'resnet' cannot be built for 3x32x32: attention at 12 px: "
                                                 r"the blocks' resolutions are 8, 16, 32") as info:
        ganzoo.build_models(load_recipe(tiny))
    assert "\n" not in str(info.value)
    tiny["generator"]["attention"] = []
    tiny["critic"]["attention"] = [32]  # the critic's blocks output 16, 8, 4
    with pytest.raises(ganzoo.GanzooError, match=r"critic 'resnet'.*attention at 32 px: the blocks' resolutions are 16, 8, 4"):
        ganzoo.build_models(load_recipe(tiny))


def test_lecam_term_by_hand_its_moving_averages_and_its_gradient():
    reg = LeCam(LeCam.Params(weight=0.5, decay=0.9))
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert reg.score_penalty(None, None, None, real, fake) is None  # no averages before the first critic step
    reg.observe(real, fake)  # the first means start the averages: a_R = 2, a_F = -0.5
    assert (reg.real_avg, reg.fake_avg) == (2.0, -0.5)
    reg.observe(torch.tensor([4.0, 4.0]), torch.tensor([1.5, 1.5]))
    assert reg.real_avg == pytest.approx(0.9 * 2 + 0.1 * 4) and reg.fake_avg == pytest.approx(0.9 * -0.5 + 0.1 * 1.5)
    a_r, a_f = reg.real_avg, reg.fake_avg  # 2.2, -0.3
    real = torch.tensor([1.0, -1.0], requires_grad=True)  # relu(1 + 0.3)^2 = 1.69; relu(-1 + 0.3) = 0
    fake = torch.tensor([3.0, 0.0], requires_grad=True)  # relu(2.2 - 3) = 0; relu(2.2 - 0)^2 = 4.84
    term = reg.score_penalty(None, None, None, real, fake)
    assert term.item() == pytest.approx(0.5 * ((1 - a_f) ** 2 / 2 + (a_r - 0) ** 2 / 2))
    term.backward()
    assert torch.allclose(real.grad, torch.tensor([0.5 * (1 - a_f), 0.0]))
    assert torch.allclose(fake.grad, torch.tensor([0.0, -0.5 * a_r]))
    other = LeCam(LeCam.Params())
    other.load_state(json.loads(json.dumps(reg.state())))
    assert (other.real_avg, other.fake_avg) == (a_r, a_f)


def _half_difference(x):
    """A critic whose score flips sign when the image is mirrored left-right: left half minus right half."""
    w = x.shape[-1] // 2
    return x[..., :w].mean(dim=(1, 2, 3)) - x[..., w:].mean(dim=(1, 2, 3))


def test_bcr_by_hand_with_flips_and_zero_for_a_critic_that_ignores_the_transform():
    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    reg = BCR(BCR.Params(real_weight=2.0, fake_weight=3.0, translation=0.0))
    torch.manual_seed(0)
    real_flips = torch.rand(6) < 0.5
    fake_flips = torch.rand(6) < 0.5
    torch.manual_seed(0)
    rs, fs = _half_difference(real), _half_difference(fake)
    term = reg.score_penalty(_half_difference, real, fake, rs, fs)
    # a flipped image scores -s, so its squared difference is (2s)^2; an unflipped one adds nothing
    expected = 2.0 * (real_flips * (2 * rs) ** 2).mean() + 3.0 * (fake_flips * (2 * fs) ** 2).mean()
    assert 0 < real_flips.sum() < 6 and 0 < fake_flips.sum() < 6 and term.item() == pytest.approx(expected.item(), rel=1e-5)
    def mean_critic(x):  # flips cannot change a mean
        return x.mean(dim=(1, 2, 3))

    assert reg.score_penalty(mean_critic, real, fake, mean_critic(real), mean_critic(fake)).item() == pytest.approx(0, abs=1e-6)
    shifted = BCR(BCR.Params(flip=False, translation=0.25)).transform(torch.ones(4, 1, 8, 8))
    assert shifted.shape == (4, 1, 8, 8) and (shifted == 0).any() and shifted.max() == 1  # shifts fill with zeros
    assert BCR(BCR.Params(real_weight=0, fake_weight=0)).score_penalty(mean_critic, real, fake, rs, fs) is None


def test_bcr_gradient_reaches_the_critic_weights_through_both_views():
    critic = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(1), torch.nn.Flatten(0))
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    torch.manual_seed(0)
    term = BCR(BCR.Params()).score_penalty(critic, real, fake, critic(real), critic(fake))
    term.backward()
    assert term.item() > 0 and critic[0].weight.grad.abs().sum() > 0


def test_lecam_and_bcr_train_log_their_terms_and_lecam_resumes_exactly(tiny, tmp_path):
    tiny["regularizers"] = [{"name": "lecam", "weight": 0.3}, {"name": "bcr", "real_weight": 5, "fake_weight": 5}]
    tiny["objective"] = {"name": "hinge"}
    tiny["train"]["steps"] = 5
    tiny["output"]["samples"] = 0
    full = train(load_recipe(tiny), tmp_path / "full", progress=False)
    lines = [json.loads(line) for line in (full.run_dir / "metrics.jsonl").read_text().splitlines() if "d_loss" in line]
    assert len(lines) == 5 and all(math.isfinite(line[k]) for line in lines for k in ("penalty/lecam", "penalty/bcr"))
    assert any(line["penalty/lecam"] > 0 for line in lines) and any(line["penalty/bcr"] > 0 for line in lines)
    state = ganzoo.load_checkpoint(full.checkpoint).meta["lecam"]
    assert math.isfinite(state["real_avg"]) and math.isfinite(state["fake_avg"])
    first = train(load_recipe(tiny, ["train.steps=2"]), tmp_path / "split", progress=False)
    resumed = train(load_recipe(tiny), tmp_path / "split", resume=first.run_dir, progress=False)
    assert_same_checkpoint(full.checkpoint, resumed.checkpoint)
    assert ganzoo.load_checkpoint(resumed.checkpoint).meta["lecam"] == state


@pytest.mark.parametrize("kind, name", [("generator", "r3gan"), ("critic", "r3gan"), ("generator", "stylegan2"),
                                        ("generator", "resnet"), ("critic", "resnet"), ("objective", "rpgan"),
                                        ("regularizer", "r1"), ("regularizer", "path_length"), ("regularizer", "lecam"),
                                        ("regularizer", "bcr"), ("regularizer", "mode_seeking")])
def test_the_modern_components_name_their_paper_and_document_every_parameter(kind, name):
    from typer.testing import CliRunner

    from ganzoo.cli import app

    cls = ganzoo.get_registry().get(kind, name).cls
    assert re.search(r"(19|20)\d\d", cls.description), cls.description  # authors and year, in the one line
    assert all(info.description for info in cls.Params.model_fields.values())
    shown = CliRunner().invoke(app, ["show", name], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and f"{kind} {name}" in shown.output
    assert all(field in shown.output for field in cls.Params.model_fields)
