"""bench/zoo.py's rows: every family builds for every data set of the zoo (without training or data)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from ganzoo.models import preflight
from ganzoo.recipe import load_recipe

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def zoo():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("zoo", BENCH / "zoo.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("data_set", ["anime64", "mnist32"])
def test_every_family_builds_on_the_data_set(zoo, data_set):
    for row in zoo.FAMILIES:
        raw, overrides = zoo.recipe_for(row, data_set)
        recipe = load_recipe(raw)
        want = zoo.DATA_SETS[data_set]["section"]
        assert (recipe.data.name, recipe.data.resolution, recipe.data.channels) == (want["name"], want["resolution"], want["channels"])
        # both nets built for the data set's shape (procedural images of that shape: no data set needed here)
        shape_only = dict(raw, data={"name": "toyfaces", "size": 16, "resolution": want["resolution"], "channels": want["channels"]})
        counts = preflight(load_recipe(shape_only))
        assert counts["generator"] > 0 and counts["critic"] > 0, row


def test_rows_are_the_shipped_recipes_with_only_the_listed_changes(zoo):
    raw, overrides = zoo.recipe_for("anime_fast", "anime64")
    assert overrides == {}
    raw, overrides = zoo.recipe_for("fastgan", "anime64")
    assert (raw["generator"]["name"], raw["critic"]["name"], raw["objective"]["name"]) == ("fastgan", "fastgan", "hinge")
    assert overrides == {"generator.name": "fastgan", "critic.name": "fastgan"}
    raw, overrides = zoo.recipe_for("ragan", "tagged64")
    assert raw["objective"]["name"] == "ragan" and raw["generator"]["name"] == "resnet"
    assert raw["data"]["path"].endswith("anime-tagged-96.zip") and not raw["data"].get("labels_file")  # unconditional
    # the MNIST-size variant: flips off (E2 flips its faces), attention moved to 16 px, nothing else
    raw, overrides = zoo.recipe_for("e2_dcgan", "mnist32")
    assert overrides == {"data.augment.hflip": False} and raw["data"]["augment"]["brightness"] == 0.5
    raw, overrides = zoo.recipe_for("sagan_anime", "mnist32")
    assert overrides == {"generator.attention": [16], "critic.attention": [16]}
    assert zoo.recipe_for("sagan_anime", "anime64")[0]["generator"]["attention"] == [32]


def test_unknown_rows_are_refused_with_the_list(zoo, capsys, tmp_path):
    assert zoo.main(["run", "--only", "dcgan", "--out", str(tmp_path / "z.json")]) == 2
    assert "unknown row(s) dcgan: the rows are e2_dcgan, e0_wgan_gp" in capsys.readouterr().err
    assert not (tmp_path / "z.json").exists()


def test_rows_are_merged_into_the_json_as_they_finish_and_kept_across_sessions(zoo, tmp_path, monkeypatch, capsys):
    measured = []

    def fake_measure(row, ds, args):  # stands for training and scoring: what run() does around it is under test
        measured.append((row, ds, args.minutes))
        score = {"fid": 1.0, "kid_mean": 0.0, "precision": 0.5, "recall": 0.5, "n_real": 10}
        return {"row": row, "recipe": zoo.FAMILIES[row][0], "data_set": ds, "minutes": args.minutes, "scores": {"5000": score},
                "eval_s": 0.0}

    monkeypatch.setattr(zoo, "measure", fake_measure)
    monkeypatch.setattr(zoo, "available", lambda ds: None if ds != "fmnist32" else "Fashion-MNIST's files are not here")
    out = tmp_path / "zoo.json"
    base = ["run", "--out", str(out), "--data-sets", "mnist32", "fmnist32"]
    assert zoo.main(base + ["--only", "anime_fast", "ragan"]) == 0
    assert "fmnist32: skipped (Fashion-MNIST's files are not here)" in capsys.readouterr().out
    assert zoo.main(base + ["--skip", "ragan", "e2_dcgan", "e0_wgan_gp", "fastgan", "r3gan_anime", "stylegan2_anime"]) == 0
    assert "anime_fast on mnist32: already in" in capsys.readouterr().out  # sagan_anime is new, anime_fast is not redone
    assert zoo.main(base + ["--only", "anime_fast", "--minutes", "5"]) == 0  # another budget: another row
    assert zoo.main(base + ["--only", "anime_fast", "--again"]) == 0  # measured again: replaces its row
    rows = json.loads(out.read_text())["rows"]
    assert measured == [("anime_fast", "mnist32", 20), ("ragan", "mnist32", 20), ("sagan_anime", "mnist32", 20),
                        ("anime_fast", "mnist32", 5), ("anime_fast", "mnist32", 20)]
    assert sorted((r["row"], r["minutes"]) for r in rows) == [("anime_fast", 5), ("anime_fast", 20), ("ragan", 20), ("sagan_anime", 20)]
