"""Everyday use, third round: files others can read, honest KID spreads, a redirectable `check`, shipped recipes
by name, progress in notebooks and logs, clean stops, one-evaluation reports, labelled per-class grids, unlagged
curves, `list` at 80 columns, user-facing recipe headers, no spurious label attribute, the eval bar."""

import json
import os
import re
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.cli import app
from ganzoo.fileio import atomic_write

from conftest import ROOT, captured_log

runner = CliRunner()


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _modes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def test_run_files_get_the_users_umask_not_the_temporary_files_0600(tiny, tmp_path, umask):
    umask(0o022)
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    modes = _modes(run)
    for name in ("report.html", "recipe.yaml", "run.json", "checkpoints/last.safetensors", "checkpoints/last.json"):
        assert modes[name] == 0o644, name
    assert set(modes.values()) == {0o644}, {k: oct(v) for k, v in modes.items() if v != 0o644}
    umask(0o077)  # a private umask stays private
    assert stat.S_IMODE(atomic_write(tmp_path / "private.json", b"{}").stat().st_mode) == 0o600
    umask(0o002)
    assert stat.S_IMODE(atomic_write(tmp_path / "group.json", b"{}").stat().st_mode) == 0o664


def test_kid_spread_is_honest_when_a_side_fits_in_one_subset():
    from ganzoo.metrics import kid_subset, scores

    assert kid_subset(10000, 5000) == (1000, True)  # the standard protocol
    assert kid_subset(1000, 5000) == (500, True)  # 1000 of 1000 would be the same generated images in every subset
    assert kid_subset(3, 50) == (3, False)
    gen, real = torch.randn(40, 16, dtype=torch.float64), torch.randn(60, 16, dtype=torch.float64) + 0.3
    out = scores(gen, real, prc=False)
    assert out["kid_std"] > 0 and out["protocol_extra"]["kid"]["subset_size"] == 20
    assert "half the smaller side" in out["protocol_extra"]["kid"]["note"]
    few = scores(gen[:3], real[:3], prc=False)
    assert few["kid_std"] is None and few["protocol_extra"]["kid"]["subsets"] == 1


def test_check_output_redirected_is_valid_yaml_even_when_narrow():
    res = runner.invoke(app, ["check", "quick_toyfaces"], env={"COLUMNS": "40"})
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout) == load_recipe("quick_toyfaces").to_dict()


def test_load_recipe_takes_a_shipped_recipes_name():
    assert load_recipe("quick_toyfaces").name == load_recipe("quick_toyfaces.yaml").name == "quick_toyfaces"
    with pytest.raises(GanzooError, match=r"recipe file not found: quick_toyface \(did you mean 'quick_toyfaces'\?\).*shipped"):
        load_recipe("quick_toyface")


def _fake_run(step, logged):
    return SimpleNamespace(step=step, total=10, start=0, logged=logged, recipe=SimpleNamespace(name="tiny"))


def test_plain_progress_lines_say_which_step_their_losses_are_from_and_notebooks_without_widgets_get_them():
    from rich.console import Console

    from ganzoo.progress import ProgressBar

    bar = ProgressBar(console=Console(file=open(os.devnull, "w")), every_seconds=0)
    line = {"step": 1, "d_loss": 1.0, "g_loss": 2.0, "img_per_s": 10.0, "data_frac": 0.0}
    with captured_log() as log:
        bar.on_start(_fake_run(0, None))
        bar.on_step(_fake_run(1, line), None)
        bar.on_step(_fake_run(2, None), None)
    assert bar.plain and "step 1/10" in log[0] and "logged at" not in log[0]
    assert "step 2/10 (20%)  D 1.000  G 2.000" in log[1] and "(logged at step 1)" in log[1]
    pytest.importorskip("rich")
    try:
        import ipywidgets  # noqa: F401
        pytest.skip("ipywidgets is installed: rich draws its notebook bar")
    except ImportError:
        pass
    notebook = ProgressBar(console=Console(force_jupyter=True))
    notebook.on_start(_fake_run(0, None))
    assert notebook.plain and notebook.every == 5 and notebook.bar is None


def test_done_line_names_the_report_and_samples_are_announced(tiny, tmp_path):
    with captured_log() as log:
        run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    assert any(m.startswith("writing 10 samples to") for m in log)
    done = [m for m in log if m.startswith("done:")]
    assert len(done) == 1 and done[0].endswith(f"report {run / 'report.html'}")


def test_a_single_evaluation_is_a_line_in_the_report_not_two_empty_charts(tiny, tmp_path):
    from ganzoo.report import write_report

    tiny["train"]["steps"] = 2
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 2, "eval": {"fid": 300.0, "kid_mean": 0.4, "kid_std": None}, "eval_n": 500}) + "\n")
    page = write_report(run).read_text()
    assert "One evaluation during training: FID 300.00, KID 0.4000 (one subset) at step 2 (N 500 generated)" in page
    assert "evaluations during training" not in page and "1 evaluations" not in page


def test_per_class_grids_name_their_rows_at_a_readable_size():
    from ganzoo.sampling import grid_image

    images = torch.full((6, 1, 28, 28), 128, dtype=torch.uint8)
    plain, named = grid_image(images, 3), grid_image(images, 3, ["seven", "eight"])
    assert plain.shape == (1, 2 * 30 + 2, 3 * 30 + 2)
    assert named.shape[1] == 2 * (84 + 2) + 2  # 28 px enlarged 3x to 84, two rows
    margin = named.shape[2] - (3 * (84 + 2) + 2)
    assert margin > 20 and (named[0, :, :margin] < 100).any()  # dark text in the white margin
    assert (named[0, : 84 + 2, :margin] < 100).any() and (named[0, 84 + 2:, :margin] < 100).any()  # a label per row


def test_curves_are_smoothed_without_lag():
    from ganzoo.watch import smooth

    values = [0.0] * 50 + [1.0] * 50
    out = smooth(values)
    assert out[49] == pytest.approx(0.4, abs=0.11) and out[50] == pytest.approx(0.6, abs=0.11)  # centred at the jump
    assert out[0] == 0 and out[-1] == 1 and out[30] == 0 and out[70] == 1
    assert smooth([1.0, float("nan"), 3.0], 3) == [1.0, 2.0, 3.0]


def test_list_at_80_columns_cuts_descriptions_at_a_word_with_an_ellipsis():
    res = runner.invoke(app, ["list"], env={"COLUMNS": "80"})
    assert res.exit_code == 0
    descriptions = {c.description for c in ganzoo.get_registry().all()}
    for line in res.output.splitlines():
        text = line.rstrip()
        assert len(text) <= 80
        if text.startswith("  ") and not text.endswith("…"):
            assert any(text.endswith(d) for d in descriptions), text
        elif text.endswith("…"):
            words = text.split()[1:]
            assert " ".join(words)[:-1] and any(d.startswith(" ".join(words)[:-1]) for d in descriptions), text


def test_shipped_recipes_speak_to_users_and_the_readme_gives_their_times():
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "recipes").rglob("*.yaml")):
        text = path.read_text()
        assert not re.search(r"\bissue\b|\bmachine [A-Z]\b|bench/", text, re.I), path.name
        if path.parent.name == "reference":
            continue
        row = next((r for r in readme.splitlines() if r.startswith(f"| `{path.name}`")), None)
        assert row is not None, f"README has no row for {path.name}"
        time_ = yaml.safe_load(text)["expected_time"].split(" (")[0]
        assert f"| {time_} |" in row, (path.name, time_)


def test_one_folder_of_images_with_a_labels_file_has_no_folder_attribute(tmp_path):
    from ganzoo.interfaces import DataReport

    (tmp_path / "faces").mkdir()
    rows = ["file,hair"]
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "faces" / f"{i}.png")
        rows.append(f"faces/{i}.png,{'blue' if i % 2 else 'red'}")
    (tmp_path / "tags.csv").write_text("\n".join(rows) + "\n")
    comp = ganzoo.get_registry().get("dataset", "images")
    ds = comp.create(comp.cls.Params(path=str(tmp_path), labels_file="tags.csv"))
    _, labels = ds.load(8, 3, DataReport())
    assert set(labels) == {"hair"}
    (tmp_path / "more").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "more" / "x.png")
    ds = comp.create(comp.cls.Params(path=str(tmp_path)))
    _, labels = ds.load(8, 3, DataReport())
    assert sorted(set(labels["folder"])) == ["faces", "more"]  # two folders: the ImageFolder convention


def test_the_eval_bar_starts_at_the_first_image_and_help_names_the_real_subset():
    from ganzoo.features import extract

    calls = []
    extract(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), progress=lambda *a: calls.append(a), what="real images")
    assert calls == [("real images", 0, 2), ("real images", 2, 2)]
    res = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert "--n-real" in res.output and "--all-real" in res.output and "ONNX Runtime" in res.output
