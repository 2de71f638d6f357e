"""RpGAN, R1/R2 penalties, DiffAugment's probability, the EMA half-life and schedules over images seen."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.errors import GanzooError
from ganzoo.registry import get_registry
from ganzoo.schedules import ema_decay, value_at

from test_resume import assert_same_checkpoint


def make(kind, name, **params):
    return get_registry().create(kind, name, params)


def test_rpgan_losses_and_gradients_against_a_hand_computation():
    rp = make("objective", "rpgan")
    real = torch.tensor([1.0, -0.5, 2.0], requires_grad=True)
    fake = torch.tensor([0.0, 0.5, -1.0], requires_grad=True)
    d = rp.critic_loss(real, fake)
    expected = sum(math.log(1 + math.exp(-(r - f))) for r, f in zip([1.0, -0.5, 2.0], [0.0, 0.5, -1.0])) / 3
    assert d.item() == pytest.approx(expected, rel=1e-6)
    d.backward()
    sig = [1 / (1 + math.exp(r - f)) for r, f in zip([1.0, -0.5, 2.0], [0.0, 0.5, -1.0])]  # d/d(r-f) softplus(-(r-f))
    assert real.grad.tolist() == pytest.approx([-s / 3 for s in sig], rel=1e-5)
    assert fake.grad.tolist() == pytest.approx([s / 3 for s in sig], rel=1e-5)
    g = rp.generator_loss(fake, real.detach())
    assert g.item() == pytest.approx(sum(math.log(1 + math.exp(r - f)) for r, f in zip([1.0, -0.5, 2.0], [0.0, 0.5, -1.0])) / 3, rel=1e-6)
    assert type(rp.inner).generator_uses_real  # paired: the generator step scores the real batch too


@pytest.mark.parametrize("on,expected", [("real", 4.0), ("fake", 1.0), ("both", 5.0)])
def test_r1_r2_penalties_against_a_hand_computation(on, expected):
    # critic D(x) = sum(w * x^2) per image: grad = 2 w x, |grad|^2 = 4 w^2 sum x^2
    w = torch.tensor(0.5, requires_grad=True)

    def critic(x):
        return (w * x.pow(2)).flatten(1).sum(1)

    real, fake = torch.full((2, 1, 2, 2), 1.0), torch.full((2, 1, 2, 2), 0.5)
    reg = make("regularizer", "r1", gamma=2.0, every=1, images=on)
    # real: 4 * 0.25 * 4 pixels * 1 = 4 ; fake: 4 * 0.25 * 4 * 0.25 = 1; times gamma/2 = 1
    penalty = reg.penalty(critic, real, fake)
    assert penalty.item() == pytest.approx(expected)
    penalty.backward()  # differentiable in the critic's weights: d/dw (gamma/2 * 4 w^2 S) = 8 w S * gamma/2
    assert w.grad.item() == pytest.approx(expected * 2 / 0.5)


def test_diffaugment_probability_zero_leaves_images_and_one_is_unchanged_behaviour():
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    assert torch.equal(make("regularizer", "diffaugment", p=0.0).augment(x), x)
    torch.manual_seed(0)
    full = make("regularizer", "diffaugment").augment(x)
    torch.manual_seed(0)
    from ganzoo_plugins.diffaugment import apply

    plain = x
    params = make("regularizer", "diffaugment").params
    for what in params.policy:
        plain = apply(plain, what, params)
    assert torch.equal(full, plain)  # p = 1 draws exactly what DiffAugment always drew
    torch.manual_seed(1)
    half = make("regularizer", "diffaugment", p=0.5, policy=["cutout"]).augment(x)
    untouched = (half == x).flatten(1).all(1)
    assert 0 < untouched.sum() < 8  # some images got the operation, some did not


def test_schedule_values_linear_cosine_and_the_ema_half_life():
    class S:
        values, over, after, shape = (1.0, 3.0), 100, 50, "linear"

    assert [value_at(S, n) for n in (0, 50, 100, 150, 1000)] == [1.0, 1.0, 2.0, 3.0, 3.0]
    S.shape = "cosine"
    assert value_at(S, 75) == pytest.approx(1 + 2 * (1 - math.cos(math.pi / 4)) / 2)
    assert value_at(S, 100) == pytest.approx(2.0)
    assert ema_decay(640, 64) ** 10 == pytest.approx(0.5)  # the weight halves over 640 images at 64 per step
    assert ema_decay(0, 64) == 0.0


def _scheduled(tiny, steps):
    tiny["objective"] = {"name": "rpgan"}
    tiny["regularizers"] = [{"name": "r1", "images": "both", "every": 2}, {"name": "diffaugment", "policy": ["translation"]}]
    tiny["ema"] = {"half_life": 64}
    tiny["monitor"] = {"collapse": False}
    tiny["output"].update(samples=0, grid_size=4)
    tiny["train"].update(steps=steps, log_every=1, batch_size=4)
    tiny["schedules"] = [
        {"key": "optim.generator.lr", "values": [2e-4, 5e-5], "over": 24, "shape": "cosine"},
        {"key": "optim.critic.betas.1", "values": [0.9, 0.99], "over": 24},
        {"key": "regularizers.r1.gamma", "values": [1.0, 0.1], "over": 24},
        {"key": "regularizers.1.p", "values": [0.0, 1.0], "over": 24},
        {"key": "ema.half_life", "values": [0, 64], "over": 24},
    ]
    return ganzoo.load_recipe(tiny)


def test_schedules_are_applied_logged_and_resume_bit_exactly_mid_ramp(tiny, tmp_path):
    straight = ganzoo.train(_scheduled(tiny, 6), tmp_path / "straight", progress=False)
    lines = [json.loads(s) for s in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    lines = [line for line in lines if "d_loss" in line]
    images = [(line["step"] - 1) * 4 for line in lines]
    assert [line["lr_g"] for line in lines] == pytest.approx([2e-4 - 1.5e-4 * (1 - math.cos(math.pi * n / 24)) / 2 for n in images])
    assert [line["schedule/regularizers.r1.gamma"] for line in lines] == pytest.approx([1.0 - 0.9 * n / 24 for n in images])
    assert lines[-1]["schedule/optim.critic.betas.1"] == pytest.approx(0.9 + 0.09 * 20 / 24)
    ckpt = ganzoo.load_checkpoint(straight.checkpoint)
    assert ckpt.meta["optimizers"]  # the step's lr/betas travel in the optimizers' param groups
    # three steps, then a resume to six: the values mid-ramp are those of the uninterrupted run
    ganzoo.train(_scheduled(tiny, 3), tmp_path / "legs", progress=False)
    resumed = ganzoo.resume(tmp_path / "legs", progress=False, overrides=["train.steps=6"])
    assert_same_checkpoint(straight.checkpoint, resumed.checkpoint)


@pytest.mark.parametrize("schedule,message", [
    ({"key": "optim.generator.momentum", "values": [0, 1], "over": 5}, "has no momentum"),
    ({"key": "optim.generator.lr", "values": [1e-3, 0], "over": 5}, "schedules.0.values.1: a learning rate must be > 0"),
    ({"key": "regularizers.r1.gama", "values": [1, 2], "over": 5}, "'gama' is not a number parameter"),
    ({"key": "regularizers.r2.gamma", "values": [1, 2], "over": 5}, "not one of the run's regularizers (r1)"),
    ({"key": "regularizers.r1.gamma", "values": [1, -2], "over": 5}, "schedules.0.values.1:"),
    ({"key": "ema.half_life", "values": [1, 2], "over": 5}, "ema.half_life is not set"),
    ({"key": "train.batch_size", "values": [1, 2], "over": 5}, "schedules ramp optim.*"),
    ({"key": "optim.generator.lr", "values": [1e-3], "over": 5}, "schedules.0.values"),
])
def test_a_bad_schedule_is_one_line_naming_its_key(tiny, schedule, message):
    tiny["regularizers"] = [{"name": "r1"}]
    tiny["schedules"] = [schedule]
    with pytest.raises(GanzooError, match=None) as exc:
        ganzoo.load_recipe(tiny)
    assert message in str(exc.value)


def test_a_schedule_of_the_objectives_own_regularizer_and_ema_decay_or_half_life(tiny):
    tiny["objective"] = {"name": "wgan_gp"}
    tiny["schedules"] = [{"key": "regularizers.gradient_penalty.weight", "values": [10, 1], "over": 5}]
    ganzoo.load_recipe(tiny)
    tiny["ema"] = {"decay": 0.9, "half_life": 10}
    with pytest.raises(GanzooError, match="ema.decay or ema.half_life, not both"):
        ganzoo.load_recipe(tiny)


@pytest.mark.parametrize("name", ["r3gan_anime", "stylegan2_anime", "sagan_anime"])
def test_the_modern_family_recipes_validate_and_pass_the_preflight_check(name):
    from ganzoo.models import preflight
    from ganzoo.shipped import recipes_dir

    recipe = ganzoo.load_recipe(recipes_dir() / f"{name}.yaml", ["data={name: toyfaces, resolution: 64}"])
    assert recipe.expected_time and recipe.description
    counts = preflight(recipe)  # on the meta device: both networks at the recipe's full size, no memory, no data
    assert 5e5 < counts["generator"] < 1e7 and 5e5 < counts["critic"] < 1e7
