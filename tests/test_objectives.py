import math

import pytest
import torch
from torch import nn

import ganzoo


def objective(name, **params):
    cls = ganzoo.get_registry().get("objective", name).cls
    return cls(cls.Params(**params))


def test_bce_losses_by_hand():
    obj = objective("bce")
    zero = torch.zeros(4)
    assert obj.critic_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert obj.generator_loss(zero, None).item() == pytest.approx(math.log(2))
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    expected = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert obj.critic_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-6)
    # non-saturating: -log D(G(z)), not log(1 - D(G(z)))
    assert obj.generator_loss(fake, None).item() == pytest.approx(-torch.log(sig(fake)).mean().item(), rel=1e-6)
    assert obj.n_critic == 1 and obj.regularizers() == [] and not obj.generator_uses_real


def test_bce_smooth_targets_above_one_are_exact_and_stable():
    obj = objective("bce_smooth", real_label=(1.12, 1.12), fake_label=(0.3, 0.3))
    real, fake = torch.tensor([0.3, -2.0, 4.0]), torch.tensor([1.0, -0.5, 2.0])
    # BCE with logits x and target t is softplus(x) - t*x, for any t
    by_hand = (torch.nn.functional.softplus(real) - 1.12 * real).mean() + (torch.nn.functional.softplus(fake) - 0.3 * fake).mean()
    assert obj.critic_loss(real, fake).item() == pytest.approx(by_hand.item(), rel=1e-5)
    huge = torch.tensor([100.0, -100.0])  # sigmoid saturates; the logit form stays finite
    assert torch.isfinite(obj.critic_loss(huge, huge))
    assert torch.isfinite(obj.generator_loss(-huge, None))


def test_bce_smooth_draws_one_label_per_batch_within_range():
    obj = objective("bce_smooth")  # E1: real U(0.7, 1.12), fake U(0, 0.3)
    x = torch.zeros(16)
    # fake logits 0 add log 2 for any target; real logits 1 add softplus(1) - t: read t back
    sp1 = torch.nn.functional.softplus(torch.tensor(1.0)).item()
    torch.manual_seed(0)
    ts = [sp1 + math.log(2) - obj.critic_loss(x + 1, x).item() for _ in range(200)]
    assert min(ts) >= 0.7 - 1e-5 and max(ts) <= 1.12 + 1e-5
    assert max(ts) > 1.0  # targets above 1 really happen
    with pytest.raises(ValueError, match="low <= high"):
        ganzoo.get_registry().get("objective", "bce_smooth").cls.Params(real_label=(1.0, 0.5))


def test_wgan_clip_declares_clip_critic_steps_and_rmsprop():
    obj = objective("wgan_clip")
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert obj.critic_loss(real, fake).item() == pytest.approx(-0.5 - 2.0)
    assert obj.generator_loss(fake, None).item() == pytest.approx(0.5)
    assert obj.regularizers() == [{"name": "weight_clip", "clip": 0.01}] and obj.n_critic == 5
    assert obj.default_optimizer.name == "rmsprop" and obj.default_optimizer.lr == 5e-5


class Linear(nn.Module):
    """f(x) = <w, x>: its gradient norm is ||w|| everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)
        self.seen = None

    def forward(self, x):
        self.seen = x.detach()
        return (x.flatten(1) * self.w).sum(1)


def regularizer(name, **params):
    return ganzoo.get_registry().create("regularizer", name, params)


def test_wgan_gp_implies_its_gradient_penalty_and_weight_clip_its_clipping():
    assert objective("wgan_gp", gp_weight=3.0).regularizers() == [{"name": "gradient_penalty", "weight": 3.0}]
    clip = regularizer("weight_clip", clip=0.05)
    net = nn.Linear(4, 4)
    with torch.no_grad():
        net.weight.fill_(1.0), net.bias.fill_(-1.0)
    clip.after_critic_step(net)
    assert net.weight.max().item() == pytest.approx(0.05) and net.bias.min().item() == pytest.approx(-0.05)


def test_wgan_gp_penalty_is_zero_for_unit_gradient_norm():
    obj = objective("wgan_gp")
    gp = regularizer("gradient_penalty")
    w = torch.randn(3 * 4 * 4)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    assert gp.penalty(Linear((w / w.norm()).requires_grad_()), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    assert gp.penalty(Linear(2 * w / w.norm()), real, fake).item() == pytest.approx(10.0, rel=1e-5)  # lambda * (2 - 1)^2
    assert obj.n_critic == 5 and obj.default_optimizer.betas == (0.5, 0.9) and obj.default_optimizer.lr == 2e-4


def test_wgan_gp_uses_one_interpolation_coefficient_per_sample():
    critic = Linear(torch.ones(3 * 4 * 4))
    real, fake = torch.randn(6, 3, 4, 4), torch.randn(6, 3, 4, 4)
    regularizer("gradient_penalty").penalty(critic, real, fake)
    eps = (critic.seen - fake) / (real - fake)  # mixed = eps * real + (1 - eps) * fake
    per_sample = eps.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-4)
    assert per_sample[:, 0].unique().numel() == 6


def test_wgan_gp_penalty_backpropagates_to_the_critic():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.Tanh(), nn.Linear(4, 1))
    pen = regularizer("gradient_penalty").penalty(lambda x: critic(x).view(-1), torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2))
    pen.backward()
    assert critic[1].weight.grad is not None and critic[1].weight.grad.abs().sum() > 0


def test_ragan_losses_by_hand_and_the_generator_loss_uses_the_real_scores():
    obj = objective("ragan")
    assert obj.generator_uses_real and obj.n_critic == 1
    zero = torch.zeros(4)
    assert obj.critic_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.5, -3.0, 1.0])
    sig = torch.sigmoid
    critic = -(torch.log(sig(real - fake.mean())).mean() + torch.log(1 - sig(fake - real.mean())).mean())
    gen = -(torch.log(sig(fake - real.mean())).mean() + torch.log(1 - sig(real - fake.mean())).mean())
    assert obj.critic_loss(real, fake).item() == pytest.approx(critic.item(), rel=1e-6)
    assert obj.generator_loss(fake, real).item() == pytest.approx(gen.item(), rel=1e-6)
    # the same fake scores against other real scores give another generator loss: the real scores are used
    assert obj.generator_loss(fake, real + 3).item() != pytest.approx(gen.item(), rel=1e-3)
    # the generator's gradient flows through both terms (the mean of the fake scores sits in the second)
    f = fake.clone().requires_grad_(True)
    obj.generator_loss(f, real).backward()
    manual = f.detach().clone().requires_grad_(True)
    (-(torch.log(sig(manual - real.mean())).mean() + torch.log(1 - sig(real - manual.mean())).mean())).backward()
    assert torch.allclose(f.grad, manual.grad, atol=1e-6)
