"""The critic regularizers (spectral norm, R1, DiffAugment), the hinge loss, EMA and E2's DCGAN variant."""

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo import GanzooError, ImageShape, build_models, load_recipe, train
from ganzoo_plugins.diffaugment import DiffAugment, DiffAugmentParams, cutout, translation
from ganzoo_plugins.hinge import Hinge
from ganzoo_plugins.r1 import R1, R1Params

from conftest import captured_log


def test_hinge_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.25])
    h = Hinge()
    assert h.critic_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.25) / 2)
    assert h.generator_loss(fake, None).item() == pytest.approx(-(-3.0 + 0.25) / 2)


class Quadratic(nn.Module):
    """D(x) = sum(w * x^2) per sample: grad = 2 w x."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(w)))

    def forward(self, x):
        return (self.w * x**2).flatten(1).sum(1)


def test_r1_by_hand_and_lazy_scaling():
    x = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    D = Quadratic(0.5)  # grad = x: |grad|^2 = 5 and 1, mean 3
    assert R1(R1Params(gamma=2.0, every=1)).penalty(D, x, None).item() == pytest.approx(0.5 * 2.0 * 3.0)
    lazy = R1(R1Params(gamma=2.0, every=4))
    assert lazy.every == 4 and lazy.penalty(D, x, None).item() == pytest.approx(4 * 3.0)
    lazy.penalty(D, x, None).backward()
    assert D.w.grad is not None and D.w.grad.item() != 0
    images = torch.ones(8, 3, 64, 64)
    assert R1(R1Params()).gamma(images) == pytest.approx(0.0002 * 64 * 64 / 8)  # StyleGAN2-ADA's heuristic by default


def test_spectral_norm_bounds_every_critic_layer(tiny):
    tiny["critic"]["norm"] = "none"
    tiny["regularizers"] = [{"name": "spectral_norm"}]
    _, D = build_models(load_recipe(tiny))
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    D.train()
    for _ in range(30):  # power iteration converges in training-mode forwards
        D(torch.randn(4, 3, 16, 16))
    D.eval()
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_translation_moves_whole_images_and_keeps_gradients():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8, requires_grad=True)
    y = translation(x, 0.25)
    assert y.shape == x.shape
    for i in range(16):  # each output is the input shifted by some (dy, dx) in [-2, 2], zeros elsewhere
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros(3, 8, 8)
                shifted[:, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)] = \
                    x[i, :, max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)].detach()
                found |= torch.equal(shifted, y[i].detach())
        assert found, i
    y.sum().backward()
    assert x.grad.sum() > 0


def test_cutout_erases_one_square_per_image():
    torch.manual_seed(0)
    y = cutout(torch.ones(64, 1, 16, 16), 0.5)
    erased = (y == 0).flatten(1).sum(1)
    assert erased.max() == 64 and erased.min() >= 16  # a full 8x8 square, or part of one at an edge
    assert len({tuple(torch.nonzero(y[i, 0] == 0)[0].tolist()) for i in range(64)}) > 10  # per-image positions


def test_diffaugment_draws_per_image_and_is_differentiable():
    torch.manual_seed(0)
    aug = DiffAugment(DiffAugmentParams())
    x = torch.zeros(8, 3, 16, 16, requires_grad=True)
    y = aug.augment(x + 0.5)
    assert not torch.equal(y[0], y[1])
    y.square().sum().backward()
    assert x.grad.abs().sum() > 0


def test_ema_is_used_for_samples_and_can_be_turned_off(tiny, tmp_path):
    tiny["ema"] = {"decay": 0.5}
    tiny["optim"] = {"generator": {"lr": 0.05}}  # big steps: the average and the last weights differ visibly
    tiny["output"]["samples"] = 4
    result = train(load_recipe(tiny), tmp_path / "run", progress=False)
    ckpt = ganzoo.load_checkpoint(result.checkpoint)
    assert int(ckpt.tensors["generator_ema.n_averaged"]) == 3
    ema_g = ganzoo.load_generator(result.checkpoint)
    raw_g = ganzoo.load_generator(result.checkpoint, ema=False)
    for name, p in raw_g.state_dict().items():  # the raw generator is the checkpoint's, the EMA one is not
        assert torch.equal(p, ckpt.tensors[f"generator.{name}"])
    assert any(not torch.equal(a, b) for a, b in zip(ema_g.state_dict().values(), raw_g.state_dict().values()))
    written = torch.stack([ganzoo.sampling.read_png(result.run_dir / "samples" / f"{i:05d}.png") for i in range(4)]).int()
    from_ema = (written - ganzoo.generate(ema_g, 4, seed=tiny["seed"]).int()).abs()
    from_raw = (written - ganzoo.generate(raw_g, 4, seed=tiny["seed"]).int()).abs()
    assert from_ema.max() <= 1 and from_raw.float().mean() > 5 * from_ema.float().mean()  # (<=1: float rounding at .5)


def test_resuming_with_ema_from_a_run_without_is_a_clear_error(tiny, tmp_path):
    first = train(load_recipe(tiny), tmp_path / "run", progress=False)
    with pytest.raises(GanzooError, match="no EMA generator"):
        train(load_recipe(tiny, ["train.steps=5", "ema.decay=0.9"]), tmp_path / "run", resume=first.run_dir, progress=False)


def test_regularizer_errors_name_the_key(tiny):
    tiny["regularizers"] = [{"name": "r1", "gama": 1}]
    with pytest.raises(GanzooError, match=r"regularizers\.0\.gama: unknown key \(did you mean 'gamma'\?\)"):
        load_recipe(tiny)
    tiny["regularizers"] = [{"name": "spectral_nrm"}]
    with pytest.raises(GanzooError, match=r"regularizers\.0\.name: unknown regularizer 'spectral_nrm' \(did you mean 'spectral_norm'\?\)"):
        load_recipe(tiny)


def test_e2_generator_linear_stem_and_5x5_kernels():
    from ganzoo_plugins.dcgan import DCGANGeneratorBuilder, DCGANGeneratorParams

    G = DCGANGeneratorBuilder(DCGANGeneratorParams(stem="linear", kernel_size=5)).build(ImageShape(resolution=64, channels=3, latent_dim=100))
    assert isinstance(G.stem[0], nn.Linear) and G.stem[0].out_features == 512 * 4 * 4 and G.stem[0].bias is None
    assert isinstance(G.stem[1], nn.BatchNorm1d)
    convs = [m for m in G.net if isinstance(m, nn.ConvTranspose2d)]
    assert [m.kernel_size for m in convs] == [(5, 5)] * 4 and [m.out_channels for m in convs] == [256, 128, 64, 3]
    assert G(torch.randn(2, 100)).shape == (2, 3, 64, 64)


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_warmup_ramps_the_decay_with_the_averaged_step_count(warmup):
    from ganzoo.models import make_ema

    G = torch.nn.Linear(2, 2)
    w0 = G.weight.detach().clone()
    ema = make_ema(G, 0.999, warmup)
    ema.update_parameters(G)  # the first update copies G
    with torch.no_grad():
        G.weight.add_(1.0)
    ema.update_parameters(G)  # n = 1: decay min(0.999, 2/11) with warm-up, else 0.999
    d = 2 / 11 if warmup else 0.999
    assert torch.allclose(ema.module.weight, d * w0 + (1 - d) * (w0 + 1.0), atol=1e-6)


def test_wgan_gp_with_a_listed_gradient_penalty_applies_one_penalty_with_the_recipes_weight(tiny):
    from ganzoo.models import build_regularizers

    tiny["objective"] = {"name": "wgan_gp"}
    tiny["regularizers"] = [{"name": "gradient_penalty", "weight": 5}]
    with captured_log() as messages:
        regs = build_regularizers(load_recipe(tiny))
    penalties = [r for r in regs if r.name == "gradient_penalty"]
    assert len(penalties) == 1 and penalties[0].params.weight == 5
    assert any("gradient_penalty" in m and "wgan_gp" in m for m in messages)
