import json

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
