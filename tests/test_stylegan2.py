"""The stylegan2 generator and the path_length regularizer: shapes, the mapping/synthesis split, w_avg, style
mixing, training and an exact resume, w-space truncation, and the path-length penalty against a hand computation."""

import json
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import ganzoo
from ganzoo.cli import app
from ganzoo.conditional import ConditionalGenerator, LabelEmbedding, bind_labels
from ganzoo.labels import LabelSpace

from conftest import build_net
from test_resume import assert_same_checkpoint

TINY_SG2 = {"w_dim": 16, "mapping_layers": 2, "channel_base": 128, "max_channels": 8}


def sg2(resolution=16, channels=3, latent_dim=8, **params):
    shape = ganzoo.ImageShape(resolution=resolution, channels=channels, latent_dim=latent_dim)
    return build_net("generator", "stylegan2", shape, initialize=True, **{**TINY_SG2, **params})


def path_length(**params):
    comp = ganzoo.get_registry().get("regularizer", "path_length")
    return comp.create(comp.cls.Params(**params))


# -- the network ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resolution", [16, 28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_every_resolution(resolution, channels):
    torch.manual_seed(0)
    G = sg2(resolution, channels, max_channels=4)
    start, stages = ganzoo.pyramid(resolution)
    assert G.num_ws == 2 * stages + 2 and G.input.const.shape[-1] == start
    z = torch.randn(3, 8)
    w = G.mapping(z)
    assert w.shape == (3, 16)
    x = G(z)
    assert x.shape == (3, channels, resolution, resolution) and torch.isfinite(x).all()
    assert G.synthesis(w.unsqueeze(1).repeat(1, G.num_ws, 1)).shape == x.shape  # per-layer ws are taken too


def test_unsupported_resolutions_are_refused():
    with pytest.raises(ValueError, match="resolution 17"):
        sg2(17)


def test_builds_and_runs_on_the_meta_device():
    with torch.device("meta"):
        G = sg2(32)
        assert G(torch.zeros(2, 8)).shape == (2, 3, 32, 32)  # train mode: style mixing draws on the CPU stream
        assert G.eval()(torch.zeros(2, 8)).device.type == "meta"


def test_equalized_lr_initialisation():
    torch.manual_seed(0)
    G = sg2(16, w_dim=64, mapping_layers=3, channel_base=512, max_channels=32, mapping_lr_mul=0.01)
    lin = G.map.net[1]
    assert abs(lin.weight.std().item() * 0.01 - 1.0) < 0.05  # stored N(0, 1) / lr_mul, scaled by lr_mul / sqrt(in) at run time
    assert math.isclose(lin.weight_gain, 0.01 / 8.0)
    conv = G.convs[1]
    assert abs(conv.weight.std().item() - 1.0) < 0.1 and torch.equal(conv.noise_strength, torch.zeros(32))
    assert torch.equal(conv.affine.bias * conv.affine.lr_mul, torch.ones(32))  # styles start around 1


def test_forward_is_synthesis_of_mapping_in_eval_mode():
    torch.manual_seed(0)
    G = sg2(16)
    with torch.no_grad():
        for conv in G.convs:  # noise inputs on, so the check also covers drawing the same noise
            conv.noise_strength.fill_(0.3)
    G.eval()
    z = torch.randn(4, 8)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        a = G(z)
        torch.manual_seed(5)
        b = G.synthesis(G.mapping(z))
        c = G(z)  # other noise: the noise inputs really draw
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_w_avg_moves_in_training_mode_only():
    torch.manual_seed(0)
    G = sg2(16, mixing=0.0)
    z = torch.randn(8, 8)
    G.eval()
    G(z), G.mapping(z)
    assert torch.equal(G.w_avg, torch.zeros(16))
    G.train()
    w = G.mapping(z)
    assert torch.allclose(G.w_avg, 0.005 * w.detach().mean(0))  # lerp toward the batch mean with 1 - beta
    before = G.w_avg.clone()
    G(z)
    assert not torch.equal(G.w_avg, before)
    G.eval()
    after = G.w_avg.clone()
    G(z)
    assert torch.equal(G.w_avg, after)


def test_style_mixing_in_training_mode_only():
    torch.manual_seed(0)
    z = torch.randn(4, 8)
    out = {}
    for mixing in (0.0, 1.0):
        torch.manual_seed(1)
        G = sg2(16, mixing=mixing)
        with torch.random.fork_rng():
            torch.manual_seed(3)
            trained = G(z)
            torch.manual_seed(3)
            plain = G.synthesis(G.map(z))
        out[mixing] = torch.equal(trained, plain)
    assert out == {0.0: True, 1.0: False}


# -- training, resume ----------------------------------------------------------------------------------------------
def _recipe(tiny, steps):
    tiny["generator"] = {"name": "stylegan2", "latent_dim": 8, **TINY_SG2}
    tiny["critic"] = {"name": "dcgan", "base_channels": 8}
    tiny["objective"] = {"name": "hinge"}
    tiny["regularizers"] = [{"name": "path_length", "every": 2}]
    tiny["ema"] = {"decay": 0.9}
    tiny["monitor"] = {"collapse": False}  # its diversity baseline is drawn from grids, which differ between the legs
    tiny["output"].update(samples=0, grid_size=4)
    tiny["train"].update(steps=steps, log_every=1)
    return tiny


def test_trains_with_path_length_and_resumes_bit_exactly(tiny, tmp_path):
    straight = ganzoo.train(ganzoo.load_recipe(_recipe(tiny, 4)), tmp_path / "straight", progress=False)
    lines = [json.loads(x) for x in (straight.run_dir / "metrics.jsonl").read_text().splitlines() if "g_loss" in x]
    assert [x["step"] for x in lines if x.get("penalty/path_length", 0) > 0] == [2, 4]  # every: 2
    assert all(math.isfinite(x["g_loss"]) and math.isfinite(x["d_loss"]) for x in lines)
    ganzoo.train(ganzoo.load_recipe(_recipe(tiny, 2)), tmp_path / "legs", progress=False)
    resumed = ganzoo.resume(tmp_path / "legs", progress=False, overrides=["train.steps=4"])
    assert_same_checkpoint(straight.checkpoint, resumed.checkpoint)
    a, b = ganzoo.load_checkpoint(straight.checkpoint), ganzoo.load_checkpoint(resumed.checkpoint)
    assert a.meta["path_length"] == b.meta["path_length"] and a.meta["path_length"]["pl_mean"] > 0
    G = ganzoo.load_generator(resumed.run_dir)
    assert G.shape.resolution == 16 and float(G.w_avg.abs().sum()) > 0  # the EMA generator carries w_avg
    assert ganzoo.generate(G, 4, truncation=0.7).shape == (4, 3, 16, 16)


# -- truncation ------------------------------------------------------------------------------------------------------
def test_truncation_pulls_w_and_images_toward_the_average():
    torch.manual_seed(0)
    G = sg2(16).eval()
    G.w_avg.copy_(torch.randn(16))
    seen = []
    synthesis = G.synthesis
    G.synthesis = lambda w: seen.append(w.clone()) or synthesis(w)
    with torch.no_grad():
        center = ganzoo.sampling.to_uint8(synthesis(G.w_avg[None])).float()
    ws, spread = {}, {}
    for psi in (None, 0.5, 0.0):
        seen.clear()
        images = ganzoo.generate(G, 16, seed=3, truncation=psi).as_subclass(torch.Tensor).float()
        ws[psi], spread[psi] = seen[0], (images - center).abs().mean().item()
    untruncated = (G.mapping(ganzoo.sampling.latents(16, 8, seed=3, generator=G)) - G.w_avg).norm(dim=1)
    assert torch.allclose((ws[None] - G.w_avg).norm(dim=1), untruncated, atol=1e-5)
    assert torch.allclose((ws[0.5] - G.w_avg).norm(dim=1), 0.5 * untruncated, atol=1e-5)  # psi times the distance
    assert torch.allclose(ws[0.0], G.w_avg.expand(16, -1), atol=1e-6)
    assert spread[0.0] == 0 and spread[0.5] < spread[None]


# -- path length against a hand computation ------------------------------------------------------------------------
class LinearW(nn.Module):
    """w = B z, images = sum over layers l of A_l w_l (one layer: A w): the Jacobian is A (per layer A_l)."""

    def __init__(self, layers=1, z_dim=3, w_dim=4, shape=(1, 2, 3)):
        super().__init__()
        self.B = torch.randn(w_dim, z_dim)
        self.A = nn.Parameter(torch.randn(layers, math.prod(shape), w_dim))  # B is fixed: w carries no graph
        self.out = shape
        self.register_buffer("w_avg", torch.zeros(w_dim))
        if layers > 1:
            self.num_ws = layers

    def mapping(self, z):
        return z @ self.B.T

    def synthesis(self, w):
        ws = w.unsqueeze(1).expand(-1, len(self.A), -1) if w.dim() == 2 else w
        return torch.einsum("lpw,nlw->np", self.A, ws).view(len(w), *self.out)

    def forward(self, z):
        return self.synthesis(self.mapping(z))


def _hand(A, n, shape, seed):
    """sqrt(mean over layers of |A_l^T y|^2) with y the regularizer's draw: N(0, 1) / sqrt(H * W)."""
    torch.manual_seed(seed)
    y = torch.randn(n, *shape).flatten(1) / math.sqrt(shape[1] * shape[2])
    return torch.einsum("lpw,np->nlw", A, y).square().sum(2).mean(1).sqrt()


@pytest.mark.parametrize("layers", [1, 3], ids=["one w", "per-layer ws"])
def test_path_length_penalty_matches_a_hand_computation(layers):
    torch.manual_seed(0)
    G = LinearW(layers)
    reg = path_length(weight=2.0, every=4, decay=0.01, batch_shrink=2)
    z = torch.randn(6, 3)
    pl_mean = 0.0
    for seed in (11, 12):
        torch.manual_seed(seed)
        got = reg.generator_penalty(G, z, None)
        lengths = _hand(G.A.detach(), 3, G.out, seed)  # batch_shrink 2: the first 3 latents
        pl_mean += 0.01 * (lengths.mean().item() - pl_mean)
        expected = 2.0 * 4 * ((lengths - pl_mean) ** 2).mean()
        assert math.isclose(reg.pl_mean, pl_mean, rel_tol=1e-5)
        assert math.isclose(got.item(), expected.item(), rel_tol=1e-4)
    G.A.grad = None
    got.backward()
    assert G.A.grad.abs().sum() > 0  # the penalty reaches the synthesis weights


def test_path_length_without_a_w_space_is_taken_in_z():
    torch.manual_seed(0)
    A = torch.randn(1, 6, 3, requires_grad=True)  # a weight: the penalty must reach it

    class ZOnly(nn.Module):
        def forward(self, z):
            return (z @ A[0].T).view(len(z), 1, 2, 3)

    reg = path_length(weight=1.0, every=1, batch_shrink=1)
    z = torch.randn(4, 3)
    torch.manual_seed(7)
    got = reg.generator_penalty(ZOnly(), z, None)
    lengths = _hand(A.detach(), 4, (1, 2, 3), 7)
    pl = 0.01 * lengths.mean()
    assert math.isclose(got.item(), ((lengths - pl) ** 2).mean().item(), rel_tol=1e-4)
    got.backward()
    assert A.grad is not None and A.grad.abs().sum() > 0


def test_path_length_reaches_a_conditional_generators_w_space():
    torch.manual_seed(0)
    labels = LabelSpace(("a",), (("x", "y"),), ((1, 1),))
    inner = sg2(16, latent_dim=8 + 2)
    G = ConditionalGenerator(inner, ganzoo.ImageShape(resolution=16, channels=3, latent_dim=8), labels, LabelEmbedding(labels.sizes))
    z, y = torch.randn(4, 8), torch.tensor([[0], [1], [1], [0]])
    reg = path_length()
    torch.manual_seed(1)
    got = reg.lengths(bind_labels(G, y), z[:2])  # the step binds the whole batch's labels; batch_shrink takes a part
    torch.manual_seed(1)
    z, y = z[:2], y[:2]
    w = inner.mapping(torch.cat([z, nn.functional.one_hot(y[:, 0], 2).float()], 1)).unsqueeze(1).repeat(1, inner.num_ws, 1)
    images = inner.synthesis(w)
    noise = torch.randn(images.shape) / 16
    (grad,) = torch.autograd.grad((images * noise).sum(), w)
    assert torch.allclose(got, grad.square().sum(2).mean(1).sqrt(), rtol=1e-5)


def test_pl_mean_survives_state_and_load_state():
    torch.manual_seed(0)
    reg = path_length(every=1)
    G = sg2(16)
    reg.generator_penalty(G, torch.randn(4, 8), None)
    state = json.loads(json.dumps(reg.state()))  # checkpoints keep it as JSON
    other = path_length(every=1)
    assert other.pl_mean == 0.0
    other.load_state(state)
    assert other.pl_mean == reg.pl_mean > 0 and reg.state_key == "path_length"
    z = torch.randn(4, 8)
    with torch.random.fork_rng():
        a = reg.generator_penalty(G, z, None)
    b = other.generator_penalty(G, z, None)
    assert torch.equal(a, b) and reg.pl_mean == other.pl_mean


def test_cli_lists_and_shows_them():
    runner = CliRunner()
    listed = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "stylegan2" in listed.output and "path_length" in listed.output
    shown = runner.invoke(app, ["show", "stylegan2"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "Karras et al. 2020" in shown.output
    assert all(k in shown.output for k in ("w_dim", "mapping_layers", "mapping_lr_mul", "mixing", "channel_base"))
    shown = runner.invoke(app, ["show", "path_length"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and all(k in shown.output for k in ("weight", "every", "decay", "batch_shrink"))
