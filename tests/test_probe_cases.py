"""Cases from a second, independent probe of the CLI (a careless user, 150 cases): each was a traceback, a lost
file or a silently wrong result, and is now one clear line or the right result."""

import copy
import json
import os
from pathlib import Path

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

import ganzoo
from conftest import TINY, tiny_feature_network
from ganzoo.cli import app


def cli(*args):
    res = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})
    assert "Traceback" not in res.output, res.output
    return res


def recipe(tmp_path, **changes) -> Path:
    r = copy.deepcopy(TINY)
    r["output"].update(dir=str(tmp_path / "runs"), samples=4)
    r.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(r))
    return path


@pytest.fixture
def run(tmp_path):
    assert cli("run", recipe(tmp_path), "--run-dir", tmp_path / "run", "-q").exit_code == 0
    return tmp_path / "run"


def test_force_never_deletes_a_folder_with_files_a_run_does_not_write(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "thesis.txt").write_text("draft")
    (project / "recipe.yaml").write_text(recipe(tmp_path).read_text())
    (project / "checkpoints").mkdir()
    monkeypatch.chdir(project)
    for run_dir in (".", project):
        res = cli("run", "recipe.yaml", "--run-dir", run_dir, "--force", "-q")
        assert res.exit_code == 2 and "refusing to delete it" in res.output
    assert (project / "thesis.txt").read_text() == "draft" and (project / "data").is_dir()


def test_run_resume_with_another_recipe_refuses_what_a_resume_cannot_honour(run, tmp_path):
    res = cli("run", recipe(tmp_path), "--resume", run, "--set", "objective.name=hinge", "--set", "train.steps=6", "-q")
    assert res.exit_code == 2 and "objective.name: 'bce' -> 'hinge'" in res.output
    assert cli("run", recipe(tmp_path), "--resume", run, "--set", "train.steps=5", "--set", "optim.critic={lr: 0.001}",
               "-q").exit_code == 0  # length and optimizer hyper-parameters may change


def test_image_outputs_never_overwrite_and_need_an_image_name(run, tmp_path):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "holiday.png")
    before = (tmp_path / "holiday.png").read_bytes()
    res = cli("data", "inspect", recipe(tmp_path), "-n", 4, "--grid", tmp_path / "holiday.png")
    assert res.exit_code == 2 and "exists" in res.output and (tmp_path / "holiday.png").read_bytes() == before
    for args in (["compare", run, "-o", tmp_path / "table.txt"], ["data", "inspect", recipe(tmp_path), "--grid", tmp_path / "g"]):
        res = cli(*args)
        assert res.exit_code == 2 and "give an image file name" in res.output


def test_writes_in_a_run_folder_replace_links_instead_of_writing_through_them(run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    (run / "report.html").unlink()
    (run / "report.html").symlink_to(notes)
    assert cli("report", run).exit_code == 0
    assert notes.read_text() == "my notes" and not (run / "report.html").is_symlink()


@pytest.mark.parametrize("name", ["../escaped", "my faces", ""])
def test_init_refuses_names_that_are_not_recipe_names(tmp_path, name):
    res = cli("init", name, "--from", "quick_toyfaces", "--dir", tmp_path)
    assert res.exit_code == 2 and "a recipe name is" in res.output and not list(tmp_path.parent.glob("escaped*"))


@pytest.mark.parametrize("override,fragment", [
    ("optim.generator={name: adam, betas: [2.0, 0.9]}", "each beta must be in [0, 1)"),
    ("train.epochs=.inf", "train"),
    ("seed=100000000000000000000000", "seed"),
    ("data.augment.brightness=1e400", "brightness"),
    ("data.seed=-5", "data.seed"),
    ("output.dir=", "output.dir"),
    ("train={steps: 1, steps: 2}", "duplicate key 'steps'"),
    ("regularizers.3.gamma=1", "the list has 0 entries"),
])
def test_values_that_used_to_crash_the_run_are_refused_by_check_and_run(tmp_path, override, fragment):
    for command in ("check", "run"):
        res = cli(command, recipe(tmp_path), "--set", override, *(["-q"] if command == "run" else []))
        assert res.exit_code == 2 and fragment in res.output, (command, res.output)


def test_memory_for_toy_faces_is_estimated_not_attempted(tmp_path):
    res = cli("run", recipe(tmp_path), "--set", "data.size=2000000", "--set", "data.resolution=1024", "-q")
    assert res.exit_code == 2 and "needs about" in res.output and "lower data.size" in res.output


def test_damaged_checkpoint_metadata_is_one_line(run):
    from safetensors.torch import load_file, save_file

    path = run / "checkpoints" / "last.safetensors"
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["ganzoo"])
    for change in ({"step": "2"}, {"recipe": "/etc/passwd"}, {"format_version": "1"}):
        save_file(tensors, str(path), metadata={"ganzoo": json.dumps({**meta, **change})})
        res = cli("sample", run, "-n", 2, "-o", run.parent / f"s{len(change)}")
        assert res.exit_code == 2 and "damaged ganzoo checkpoint metadata" in res.output


def test_small_evaluations_skip_precision_recall_instead_of_crashing(run, tmp_path):
    pytest.importorskip("torch_fidelity")
    res = cli("eval", run, "-n", 3, "--n-real", 3, "--weights", tiny_feature_network(tmp_path, 16))
    assert res.exit_code == 0, res.output
    assert "needs at least 5 images" in json.loads((run / "metrics.json").read_text())["protocol"]["precision_recall"]["skipped"]


def test_hand_edited_run_files_of_the_wrong_type_are_one_line(run):
    summary = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(dict(summary, seconds_total="12 s", steps="2")))
    for args in (["report", run], ["compare", run, "-o", run.parent / "c.png"]):
        res = cli(*args)
        assert res.exit_code == 2 and "unexpected type" in res.output


def test_odd_options_name_themselves(run, tmp_path, monkeypatch):
    res = cli("sample", run, "-n", 2, "-o", tmp_path / "cu", "--device", "cuda")
    if res.exit_code == 2:  # no GPU here
        assert "--device is 'cuda'" in res.output
    assert cli("sample", run, "-n", 2, "-o", tmp_path / "s", "--seed", 10**20).exit_code == 2
    assert cli("eval", tmp_path, "--ref", tmp_path, "--resolution", -5).exit_code == 2
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cli("run", recipe(tmp_path), "--set", "output.dir=~/runs", "-q").exit_code == 0
    assert (tmp_path / "home" / "runs" / "tiny" / "checkpoints").is_dir() and not Path("~").exists()


def test_a_garbage_recipe_yaml_does_not_blank_the_report(run):
    (run / "recipe.yaml").write_text(": [garbage")
    res = cli("compare", run, "-o", run.parent / "c.png")
    assert res.exit_code == 0 and "recipe None" not in res.output


def test_an_interrupted_start_leaves_no_empty_run_folder(tmp_path, monkeypatch):
    import importlib

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("ganzoo.train"), "prepare", interrupted)
    res = cli("run", recipe(tmp_path), "--run-dir", tmp_path / "intr", "-q")
    assert res.exit_code == 130 and "second" not in res.output and not (tmp_path / "intr").exists()
