"""The mode-seeking term: its ratio against a hand computation, its gradient spreads a generator's outputs, and a
few training steps through ganzoo.train log it under its name."""

import json
import math

import pytest
import torch

import ganzoo
from ganzoo_plugins.mode_seeking import ModeSeeking


def test_the_ratio_and_the_term_match_a_hand_computation():
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [1.0, -1.0], [9.0, 9.0]])  # odd: the last one has no pair
    fake = torch.zeros(5, 1, 2, 2)
    fake[2] += 0.5  # pair (0, 2): |diff| 0.5 per pixel
    fake[3] -= 0.25  # pair (1, 3): |diff| 0.25
    # latent: pair (0, 2) |2|,|0|, pair (1, 3) |0|,|2| -> mean 1.0; images: mean of 0.5 and 0.25 -> 0.375
    assert ModeSeeking.ratio(z, fake).item() == pytest.approx(0.375)
    term = ModeSeeking(ModeSeeking.Params(weight=2.0, eps=1e-5)).generator_penalty(None, z, fake)
    assert term.item() == pytest.approx(2.0 / (0.375 + 1e-5))
    assert ModeSeeking().generator_penalty(None, z[:1], fake[:1]) is None  # no pair: nothing added


def test_its_gradient_moves_a_collapsed_generator_apart():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 12), torch.nn.Tanh())
    with torch.no_grad():
        net[0].weight.mul_(0.01)  # nearly collapsed: every latent gives about the same image
    reg, opt = ModeSeeking(), torch.optim.SGD(net.parameters(), lr=1e-4)
    z = torch.randn(16, 4)
    before = ModeSeeking.ratio(z, net(z)).item()
    for _ in range(20):
        opt.zero_grad()
        reg.generator_penalty(net, z, net(z)).backward()
        opt.step()
    assert ModeSeeking.ratio(z, net(z)).item() > 2 * before


def test_a_run_logs_the_term_and_it_reaches_the_generator(tiny, tmp_path):
    tiny["regularizers"] = [{"name": "mode_seeking", "weight": 1.0, "every": 2}]
    tiny["train"].update(steps=4, log_every=1)
    tiny["output"]["samples"] = 0
    result = ganzoo.train(ganzoo.load_recipe(tiny), tmp_path / "a", progress=False)
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines() if "d_loss" in x]
    assert [x["step"] for x in lines if x.get("penalty/mode_seeking", 0) > 0] == [2, 4]  # every: 2
    assert all(math.isfinite(x["penalty/mode_seeking"]) for x in lines if "penalty/mode_seeking" in x)
    tiny["regularizers"] = []
    other = ganzoo.train(ganzoo.load_recipe(tiny), tmp_path / "b", progress=False)
    a, b = ganzoo.load_checkpoint(result.checkpoint), ganzoo.load_checkpoint(other.checkpoint)
    assert any(not torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors if k.startswith("generator."))


def test_a_batch_of_one_is_refused_rather_than_trained_without_the_term(tiny):
    from ganzoo import GanzooError, load_recipe
    from ganzoo.models import preflight

    tiny["regularizers"] = [{"name": "mode_seeking"}]
    tiny["train"]["batch_size"] = 1
    with pytest.raises(GanzooError, match=r"'mode_seeking' needs at least 2 images per step.*train.batch_size is 1"):
        preflight(load_recipe(tiny))
    tiny["train"]["batch_size"] = 2
    preflight(load_recipe(tiny))
