"""`ganzoo nearest`: generated images against their nearest training images, on a tiny toyfaces run (16 px)."""

import copy
import json
import os
import shutil

import pytest
import torch
import yaml
from typer.testing import CliRunner

import ganzoo
from ganzoo import nearest as nearest_module
from ganzoo.cli import app
from ganzoo.nearest import NEAR_IDENTICAL, nearest
from ganzoo.sampling import generate, read_png, write_png

from conftest import TINY, copy_run, write_faces



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run for the module; each test gets its own copy of the folder (``run``)."""
    base = tmp_path_factory.mktemp("nearest")
    recipe = copy.deepcopy(TINY)
    recipe["output"]["dir"] = str(base / "runs")
    torch.set_num_threads(1)
    return ganzoo.train(ganzoo.load_recipe(recipe), base / "run", progress=False).run_dir


@pytest.fixture
def run(trained, tmp_path):
    return shutil.copytree(trained, tmp_path / "run")


def rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) RMS distances on [0, 1], in float64, the plain way."""
    a, b = a.double().div(255).flatten(1), b.double().div(255).flatten(1)
    return ((a[:, None] - b[None]) ** 2).mean(-1).sqrt()


def quantiles(d: torch.Tensor) -> dict:
    return {"min": d.min().item(), "p1": d.quantile(0.01).item(), "p10": d.quantile(0.1).item(), "median": d.median().item()}


def training(run) -> torch.Tensor:
    return ganzoo.load_dataset(ganzoo.load_recipe(run / "recipe.yaml").data)[0]


def test_the_numbers_equal_a_direct_computation_on_the_same_images(run):
    n = 40
    result = nearest(run, n=n)
    fake = generate(ganzoo.load_generator(run), n, seed=0)
    real = training(run)
    g1 = rms(fake, real).min(dim=1).values
    m = min(max(n, 500), len(real))  # the threshold's sample: up to 500 training images, whatever n is
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:m]
    to_real = rms(real[pick], real)
    to_real[torch.arange(m), pick] = float("inf")  # its own copy left out
    r1 = to_real.min(dim=1).values
    assert (result.n_generated, result.n_train, result.n_train_sampled) == (n, 64, 64)
    for key, value in quantiles(g1).items():
        assert result.generated_to_train[key] == pytest.approx(value, abs=1e-4), key
    for key, value in quantiles(r1).items():
        assert result.train_to_train[key] == pytest.approx(value, abs=1e-4), key
    assert result.threshold == pytest.approx(r1.quantile(0.01).item(), abs=1e-4)
    assert result.close == int((g1 < result.threshold).sum()) and result.close_fraction == result.close / n
    assert result.near_identical == int((g1 < NEAR_IDENTICAL).sum()) == 0
    assert not result.copies and result.verdict.startswith("no sign of copying: the nearest training image is at RMS "
                                                           f"{g1.median().item():.3f} (median)")
    saved = json.loads((run / "nearest.json").read_text())
    assert saved["step"] == 3 and saved["n_generated"] == n and saved["n_train"] == 64 and saved["verdict"] == result.verdict
    assert saved["generated_to_train"] == result.generated_to_train and saved["distance"].startswith("RMS pixel difference on [0, 1]")
    assert saved["grid"] == "nearest.png"


def test_a_generator_that_returns_training_images_is_called_a_copier(run, monkeypatch):
    real = training(run)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(5))
    monkeypatch.setattr(ganzoo.sampling, "generate", lambda G, n, seed=0, **kw: real[order[:n]].clone())
    result = nearest(run, n=48)
    assert result.copies and result.close_fraction == 1.0 and result.near_identical == 48
    assert result.generated_to_train["median"] < 1e-3  # the same pixels: 0 up to float rounding
    assert result.verdict.startswith("possible copies: 48 of 48 generated images are nearer a training image than 99% of "
                                     "training images are to theirs") and result.verdict.endswith("see nearest.png")
    grid = read_png(run / "nearest.png")  # under each generated image its nearest training image: itself
    assert grid.shape[1] == 4 * (64 + 2) + 2  # 4 rows of 16 px images enlarged to 64 px (row labels)
    margin = grid.shape[2] - (8 * (64 + 2) + 2)  # the row labels' margin
    band = grid[:, 66 + 2 + 64 - 14: 66 + 2 + 64, margin + 2: margin + 66].float().mean(0)  # foot of the first training image
    assert (band == 255).float().mean() > 0.5 and (band < 100).any()  # its distance, black on a white band


def test_held_out_images_of_the_same_distribution_are_no_copies(run, monkeypatch):
    """Faces drawn like the training set's but not in it: as near their nearest training face as training faces
    are to each other, so no copying (the test's control)."""
    recipe = copy.deepcopy(TINY)
    recipe["data"]["size"] = 128
    section = ganzoo.load_recipe(recipe).data
    fresh = ganzoo.load_dataset(section)[0][64:]  # the same drawing, faces 64-127: never trained on
    assert rms(fresh, training(run)).min() > NEAR_IDENTICAL
    monkeypatch.setattr(ganzoo.sampling, "generate", lambda G, n, seed=0, **kw: fresh[:n].clone())
    result = nearest(run, n=64)
    assert not result.copies and result.close <= 3 and result.verdict.startswith("no sign of copying")
    assert 0.5 < result.generated_to_train["median"] / result.train_to_train["median"] < 2


def test_half_copies_are_still_copies_and_the_grid_shows_the_nearest_first(run, monkeypatch):
    real = training(run)
    make = generate

    def half(G, n, seed=0, **kw):
        out = make(G, n, seed=seed, **kw)
        out[::2] = real[: (n + 1) // 2]
        return out

    monkeypatch.setattr(ganzoo.sampling, "generate", half)
    result = nearest(run, n=32)
    assert result.copies and result.close == result.near_identical == 16 and result.close_fraction == 0.5
    assert result.grid_columns.startswith("8 generated images nearest a training image (nearest first), then 8 in seed order")


def test_files_written_with_the_umask_and_the_report_has_the_section(run, tmp_path):
    assert (run / "report.html").is_file()
    old = os.umask(0o027)
    try:
        result = nearest(run, n=16)
    finally:
        os.umask(old)
    for name in ("nearest.json", "nearest.png", "report.html"):
        assert (run / name).stat().st_mode & 0o777 == 0o640, name
    assert result.paths == {"json": str(run / "nearest.json"), "grid": str(run / "nearest.png"), "report": str(run / "report.html")}
    page = (run / "report.html").read_text()
    section = page.split("<h2>Copy check</h2>", 1)[1].split("<h2>", 1)[0]
    assert result.verdict.split(";")[0] in section and "N 16 generated vs all 64 training images" in section
    assert "N 64 of 64 training images, their own copy left out" in section and "step 3" in section
    assert 'alt="generated images over their nearest training images" src="data:image/png;base64,' in section
    other = nearest(run, n=16, grid=tmp_path / "elsewhere" / "g.png")  # -o: the grid elsewhere, still in the report
    assert (tmp_path / "elsewhere" / "g.png").is_file() and other.paths["grid"] == str(tmp_path / "elsewhere" / "g.png")
    assert 'alt="generated images over their nearest training images"' in (run / "report.html").read_text()


def test_data_moved_is_one_line_naming_the_path_and_data_gives_the_same_numbers(run, tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for i, image in enumerate(training(run)):
        write_png(image, faces / f"{i:03d}.png")
    want = nearest(run, n=16, report=False)
    same = nearest(run, n=16, data=faces, report=False)  # a toyfaces run, its faces as PNGs: the same pixels
    assert same.generated_to_train == pytest.approx(want.generated_to_train) and same.data == str(faces)
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["data"] = {"name": "images", "path": str(tmp_path / "gone.zip"), "resolution": 16, "channels": 3}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    res = CliRunner().invoke(app, ["nearest", str(run), "-n", "16"], env={"COLUMNS": "400"})
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"is not at {tmp_path / 'gone.zip'} (its recipe's data.path): give where it is now with --data PATH" in res.output
    got = nearest(run, n=16, data=faces, report=False)
    assert got.generated_to_train == pytest.approx(want.generated_to_train) and got.train_to_train == pytest.approx(want.train_to_train)


def test_the_command_prints_the_verdict_and_errors_are_one_line(run, tmp_path):
    res = CliRunner().invoke(app, ["nearest", str(run), "-n", "16", "--device", "cpu"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert json.loads((run / "nearest.json").read_text())["verdict"] in res.output
    assert f"wrote {run / 'nearest.json'}, {run / 'nearest.png'}, {run / 'report.html'}" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, line in (([str(empty)], f"{empty} is a folder but neither a run folder (no checkpoints/last.safetensors)"),
                       ([str(run), "--data", str(tmp_path / "nope")], f"--data {tmp_path / 'nope'}: no such folder or zip of images"),
                       ([str(run), "-n", "1000000000"], "of 3x16x16 needs about"),
                       ([str(run), "-o", str(tmp_path / "grid.txt")], "give an image file name ending in .png"),
                       ([str(run), "-o", str(run / "nearest.png")], "nearest.png exists: pick another name (-o) or pass --force")):
        res = CliRunner().invoke(app, ["nearest", *args], env={"COLUMNS": "400"})
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert res.output.count("error:") == 1 and line in res.output, res.output
    res = CliRunner().invoke(app, ["nearest", str(run), "-n", "8", "-o", str(run / "nearest.png"), "--force"], env={"COLUMNS": "400"})
    assert res.exit_code == 0 and json.loads((run / "nearest.json").read_text())["n_generated"] == 8
    assert "lower -n" in CliRunner().invoke(app, ["nearest", str(run), "-n", "1000000000"], env={"COLUMNS": "400"}).output


def test_bench_script_still_runs(run, tmp_path, monkeypatch):
    import runpy
    import sys

    out = tmp_path / "bench.json"
    monkeypatch.setattr(sys, "argv", ["nearest.py", str(run), "--n", "16", "--out", str(out), "--grid", str(tmp_path / "b.png")])
    runpy.run_path(str(nearest_module.__file__).replace("src/ganzoo/nearest.py", "bench/nearest.py"), run_name="__main__")
    saved = json.loads(out.read_text())
    assert saved["n_generated"] == 16 and (tmp_path / "b.png").is_file()


def test_the_copy_check_gives_one_verdict_whatever_n_and_names_other_data(finished_run, tmp_path):
    from ganzoo.nearest import nearest

    run = copy_run(finished_run, tmp_path / "run")
    small = nearest(run, n=2, grid=tmp_path / "a.png", report=False)
    large = nearest(run, n=16, grid=tmp_path / "b.png", report=False)
    assert small.threshold == large.threshold and small.n_train_sampled == large.n_train_sampled == 64
    assert small.copies == large.copies and "rough estimate" in small.verdict
    other = write_faces(tmp_path / "other", 8, 16)
    elsewhere = nearest(run, n=4, data=other, grid=tmp_path / "c.png", report=False)
    assert elsewhere.verdict.startswith(f"against {other}") and "not the recipe's data" in elsewhere.verdict
