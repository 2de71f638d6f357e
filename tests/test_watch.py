import json

import torch
import yaml
from PIL import Image

import ganzoo
from ganzoo import load_recipe, train


def test_run_directory_has_grids_curves_tensorboard_and_fixed_z(tiny, tmp_path):
    tiny["train"].update(steps=8, log_every=2)
    tiny["output"].update(grid_every=3, grid_size=16, tensorboard=True, samples=4)
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    grids = sorted(p.name for p in (run / "grids").glob("*.png"))
    # every 3 steps, plus 0/25/50/75/100 % of 8 steps
    assert grids == [f"step_{s:07d}.png" for s in (0, 2, 3, 4, 6, 8)]
    assert Image.open(run / "grids" / grids[-1]).size == (4 * 16 + 5 * 2,) * 2  # 4x4 grid of 16 px, 2 px padding
    assert (run / "fixed_z.safetensors").is_file() and (run / "curves.png").is_file()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [2, 4, 6, 8]
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "gap", "penalty", "lr_g", "lr_d", "img_per_s", "data_frac"):
        assert key in lines[-1]
    assert lines[-1]["gap"] == lines[-1]["d_real"] - lines[-1]["d_fake"]
    for name in ("recipe.yaml", "run.json", "checkpoints/last.safetensors", "samples/grid.png"):
        assert (run / name).is_file(), name


def test_fixed_z_grids_match_across_a_resume(tiny, tmp_path):
    tiny["train"].update(steps=8, log_every=4)
    tiny["output"].update(grid_size=9, samples=0)
    full = train(load_recipe(tiny), tmp_path / "full", progress=False).run_dir
    split = train(load_recipe(tiny, ["train.steps=4"]), tmp_path / "split", progress=False).run_dir
    z_before = (split / "fixed_z.safetensors").read_bytes()
    train(load_recipe(tiny), split, resume=split, progress=False)
    assert (split / "fixed_z.safetensors").read_bytes() == z_before == (full / "fixed_z.safetensors").read_bytes()
    assert (split / "grids" / "step_0000008.png").read_bytes() == (full / "grids" / "step_0000008.png").read_bytes()


def test_distinctness_check_catches_a_duplicated_pair_and_regeneration_removes_it(tiny, tmp_path):
    import torch
    from typer.testing import CliRunner

    from ganzoo.cli import app
    from ganzoo.sampling import check_distinct, generate_distinct

    class SignPatterns(ganzoo.Generator):
        """Images that depend only on the signs of 8 latent dims: 256 possible images, so 40 draws collide."""

        def __init__(self):
            super().__init__(ganzoo.ImageShape(resolution=8, channels=1, latent_dim=16))
            self.w = torch.nn.Parameter(torch.randn(8, 64))

        def forward(self, z):
            return torch.tanh(torch.sign(z[:, :8]) @ self.w).view(-1, 1, 8, 8)

    G = SignPatterns()
    images = ganzoo.generate(G, 40, seed=1)
    report = check_distinct(images)
    assert not report.ok and report.min_distance == 0.0  # birthday collisions among 256 patterns
    images = ganzoo.generate(G, 40, seed=2)
    images[17] = images[5]  # and a deliberate duplicate
    assert (5, 17, 0.0) in check_distinct(images).close_pairs
    fixed, report = generate_distinct(G, 40, seed=1, threshold=0.02)
    assert report.ok and report.min_distance >= 0.02 and report.regenerated > 0 and len(fixed) == 40

    tiny["output"]["samples"] = 0
    ckpt = train(load_recipe(tiny), tmp_path / "run", progress=False).checkpoint
    res = CliRunner().invoke(app, ["sample", str(ckpt), "-n", "30", "-o", str(tmp_path / "s"), "--truncation", "1.5"])
    assert res.exit_code == 0 and "distinct: min pairwise RMS distance" in res.output
    assert len(list((tmp_path / "s").glob("[0-9]*.png"))) == 30


def test_interpolate_writes_a_grid_and_a_gif(tiny, tmp_path):
    from typer.testing import CliRunner

    from ganzoo.cli import app

    tiny["output"]["samples"] = 0
    ckpt = train(load_recipe(tiny), tmp_path / "run", progress=False).checkpoint
    runner = CliRunner()
    assert runner.invoke(app, ["interpolate", str(ckpt), "-o", str(tmp_path / "w.png"), "--points", "3", "--steps", "4"]).exit_code == 0
    assert Image.open(tmp_path / "w.png").size == (4 * 16 + 5 * 2, 2 * 16 + 3 * 2)  # 2 segments x 4 steps
    assert runner.invoke(app, ["interpolate", str(ckpt), "-o", str(tmp_path / "w.gif"), "--points", "3", "--steps", "4"]).exit_code == 0
    assert 2 <= Image.open(tmp_path / "w.gif").n_frames <= 7  # 4 + 3 frames; PIL merges identical neighbours


def test_collapse_monitor_warns_when_the_critic_wins_outright_and_can_stop_keeping_best(tiny, tmp_path, monkeypatch):
    import pytest

    bce = ganzoo.get_registry().get("objective", "bce").cls
    monkeypatch.setattr(bce, "critic_wins", lambda self, r, f: True)  # as experiment E2 at epoch 17
    tiny["train"].update(steps=6, log_every=1)
    tiny["output"]["samples"] = 0
    run = train(load_recipe(tiny), tmp_path / "warn", progress=False).run_dir
    warnings = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if "warning" in s]
    assert warnings and warnings[0]["step"] == 2 and "critic wins outright" in warnings[0]["warning"]
    tiny["monitor"] = {"stop": True}
    with pytest.raises(ganzoo.GanzooError, match=r"stopped at step 2 by the collapse monitor .*; checkpoint of step 2 at "):
        train(load_recipe(tiny), tmp_path / "stop", progress=False)
    assert ganzoo.load_checkpoint(tmp_path / "stop").meta["step"] == 2


def test_collapse_monitor_catches_a_diversity_drop():
    import torch

    from ganzoo.recipe import MonitorSection
    from ganzoo.watch import Monitor

    m = Monitor(MonitorSection(), objective=None)
    g = torch.Generator().manual_seed(0)
    varied = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=g)
    assert m.after_grid(varied) is None
    collapsed = varied[:1].expand(16, -1, -1, -1).clone()
    collapsed[1:] += 1  # all nearly the same image
    assert "diversity of the fixed batch fell" in m.after_grid(collapsed)


def test_pairwise_rms_to_another_set_matches_the_distances_within_one():
    from ganzoo.sampling import pairwise_rms

    images = torch.randint(0, 256, (7, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    within = pairwise_rms(images, block=3)
    across = pairwise_rms(images[:3], images, block=2)
    assert across.shape == (3, 7)
    assert torch.allclose(across[:, 3:], within[:3, 3:]) and torch.allclose(across.diagonal(), torch.zeros(3), atol=1e-6)
    one = (images[0].float() - images[5].float()).div(255).pow(2).mean().sqrt()
    assert torch.isclose(across[0, 5], one)
