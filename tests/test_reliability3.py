"""Reliability, third round (first classes): numbers read as YAML 1.2, `~user` paths that cannot be expanded, class
names that look like digits."""

import copy

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe
from ganzoo.cli import app
from ganzoo.labels import _natural
from ganzoo.yamlio import load

from conftest import TINY

runner = CliRunner()


def test_numbers_are_read_as_yaml_1_2_no_octal_no_sexagesimal(tmp_path):
    assert load("a: 010\nb: 0123\nc: 1:30\nd: 1e-4\ne: 0o17\nf: 0x1f\ng: .inf\nh: -2.5", "x") == \
        {"a": 10, "b": 123, "c": "1:30", "d": 1e-4, "e": 15, "f": 31, "g": float("inf"), "h": -2.5}
    text = (f"name: octal\nseed: 0123\ndata: {{name: toyfaces, size: 64, resolution: 16}}\n"
            "generator: {name: dcgan, latent_dim: 8, base_channels: 8}\ncritic: {name: dcgan, base_channels: 8}\n"
            "objective: {name: bce}\ntrain: {batch_size: 010, steps: 3, threads: 1}\noptim: {generator: {name: adam, lr: 2e-4}}\n")
    (tmp_path / "r.yaml").write_text(text)
    r = load_recipe(tmp_path / "r.yaml")
    assert r.seed == 123 and r.train.batch_size == 10 and r.optim.generator.lr == 2e-4
    r = load_recipe(tmp_path / "r.yaml", ["train.steps=010"])
    assert r.train.steps == 10
    with pytest.raises(GanzooError, match="train.steps"):
        load_recipe(tmp_path / "r.yaml", ["train.steps=1:30"])  # text, not ninety


@pytest.mark.parametrize("where", ["-o", "output.dir", "data.path"])
def test_a_home_folder_that_cannot_be_found_is_one_line(tmp_path, where):
    r = copy.deepcopy(TINY)
    r["output"]["dir"] = str(tmp_path / "runs")
    if where == "data.path":
        r["data"] = {"name": "images", "path": "~nosuchuser/faces", "resolution": 16}
    if where == "output.dir":
        r["output"]["dir"] = "~nosuchuser/runs"
    import yaml

    (tmp_path / "r.yaml").write_text(yaml.safe_dump(r))
    args = ["run", str(tmp_path / "r.yaml")] + (["--run-dir", "~nosuchuser/x"] if where == "-o" else [])
    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "cannot expand '~nosuchuser'" in res.output, res.output
    assert "Traceback" not in res.output and not isinstance(res.exception, RuntimeError)


def test_class_names_that_look_like_digits_sort_without_raising(tmp_path):
    assert sorted(["²", "①", "10", "2", "a3"], key=_natural) == ["2", "10", "a3", "²", "①"]
    for name in ("²", "①", "7"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    comp = ganzoo.get_registry().get("dataset", "images")
    ds = comp.create(comp.cls.Params(path=str(tmp_path)))
    from ganzoo.interfaces import DataReport

    _, labels = ds.load(8, 3, DataReport())
    assert sorted(set(labels["folder"])) == sorted({"²", "①", "7"})
