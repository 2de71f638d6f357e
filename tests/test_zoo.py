"""bench/zoo.py's rows: every family builds for every data set of the zoo; a row keeps its points, is scored point by
point into the JSON, and extended by resuming it gives the points of one run to that length."""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY
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


@pytest.mark.parametrize("data_set", ["anime32", "mnist32", "anime64"])
def test_every_family_builds_on_the_data_set_with_whole_steps_per_point(zoo, data_set):
    for row in zoo.FAMILIES:
        raw, overrides = zoo.row_recipe(row, data_set, zoo.BUDGET_KIMG[data_set], threads=1)
        recipe = load_recipe(raw)
        want = zoo.DATA_SETS[data_set]["section"]
        assert (recipe.data.name, recipe.data.resolution, recipe.data.channels) == (want["name"], want["resolution"], want["channels"])
        per_step = recipe.train.batch_size * recipe.train.n_critic
        # a point about every tenth of the budget, a whole number of steps; the budget reached exactly, on a point
        assert recipe.train.keep_every * per_step == zoo.point_kimg(data_set) * 1000
        assert recipe.train.steps * per_step == zoo.BUDGET_KIMG[data_set] * 1000 and recipe.train.steps % recipe.train.keep_every == 0
        assert 8 <= zoo.BUDGET_KIMG[data_set] / zoo.point_kimg(data_set) <= 12
        assert recipe.train.time_limit is None and recipe.train.threads == 1
        # both nets built for the data set's shape (procedural images of that shape: no data set needed here)
        shape_only = dict(raw, data={"name": "toyfaces", "size": 16, "resolution": want["resolution"], "channels": want["channels"]})
        counts = preflight(load_recipe(shape_only))
        assert counts["generator"] > 0 and counts["critic"] > 0, row


def test_rows_are_the_shipped_recipes_with_only_the_listed_changes(zoo):
    raw, overrides = zoo.recipe_for("anime_fast", "anime64")
    assert overrides == {}
    raw, overrides = zoo.recipe_for("fastgan", "anime32")
    assert (raw["generator"]["name"], raw["critic"]["name"], raw["objective"]["name"]) == ("fastgan", "fastgan", "hinge")
    assert overrides == {"generator.name": "fastgan", "critic.name": "fastgan"}
    raw, overrides = zoo.recipe_for("ragan", "tagged64")
    assert raw["objective"]["name"] == "ragan" and raw["generator"]["name"] == "resnet"
    assert raw["data"]["path"].endswith("anime-tagged-96.zip") and not raw["data"].get("labels")  # unconditional
    # the 32 px variant: flips off on one channel only (E2 flips its faces), attention moved to 16 px, nothing else
    raw, overrides = zoo.recipe_for("e2_dcgan", "mnist32")
    assert overrides == {"data.augment.hflip": False} and raw["data"]["augment"]["brightness"] == 0.5
    assert zoo.recipe_for("e2_dcgan", "anime32")[1] == {}
    raw, overrides = zoo.recipe_for("sagan_anime", "anime32")
    assert overrides == {"generator.attention": [16], "critic.attention": [16]}
    assert zoo.recipe_for("sagan_anime", "anime64")[0]["generator"]["attention"] == [32]


def test_unknown_rows_are_refused_by_the_parser(zoo, capsys):
    with pytest.raises(SystemExit):
        zoo.main(["train", "--only", "dcgan"])
    assert "invalid choice: 'dcgan'" in capsys.readouterr().err


def _tiny_zoo(zoo, monkeypatch, tmp_path):
    """The zoo on a tiny procedural data set: one family (TINY), 4 points of 2 steps (8 images a step)."""
    tiny = copy.deepcopy(TINY)
    monkeypatch.setitem(zoo.DATA_SETS, "toy", {"section": dict(TINY["data"]), "n_real": 16})
    monkeypatch.setitem(zoo.BUDGET_KIMG, "toy", 0.064)
    monkeypatch.setitem(zoo.POINT_KIMG, "toy", 0.016)

    def recipe_for(row, ds):
        raw = copy.deepcopy(tiny)
        raw.update(name=f"zoo_{row}_{ds}", output={"samples": 0, "tensorboard": False, "dir": str(tmp_path)},
                   eval={"every": None})
        return raw, {}

    monkeypatch.setattr(zoo, "recipe_for", recipe_for)
    monkeypatch.setattr(zoo, "available", lambda ds: None)
    monkeypatch.setattr(zoo, "default_rows", lambda ds: ["anime_fast"])


def _points(run_dir):
    from safetensors.torch import load_file

    return {p.name: {k: v for k, v in load_file(str(p)).items() if k.startswith("generator")}
            for p in sorted((run_dir / "checkpoints").glob("step_*.safetensors"))}


def test_a_row_extended_by_resume_has_the_points_of_one_run_to_that_length(zoo, tmp_path, monkeypatch):
    _tiny_zoo(zoo, monkeypatch, tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    assert zoo.main(["train", "--data-sets", "toy", "--runs", str(one), "--kimg", "0.064"]) == 0
    assert zoo.main(["train", "--data-sets", "toy", "--runs", str(two), "--kimg", "0.032"]) == 0
    assert len(_points(two / "toy" / "anime_fast")) == 2
    assert zoo.main(["train", "--data-sets", "toy", "--runs", str(two), "--kimg", "0.064"]) == 0  # resumed, not retrained
    a, b = _points(one / "toy" / "anime_fast"), _points(two / "toy" / "anime_fast")
    assert list(a) == list(b) == [f"step_{s:07d}.safetensors" for s in (2, 4, 6, 8)]
    for name in a:
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), (name, key)


def test_points_are_scored_once_into_the_json_with_n_5000_at_the_middle_and_the_end(zoo, tmp_path, monkeypatch, capsys):
    _tiny_zoo(zoo, monkeypatch, tmp_path)
    calls = []

    def fake_score(G, ref, ns, n_real, radii=False):  # stands for the Inception scores: what score does around it is tested
        calls.append(list(ns))
        fid = float(sum(p.detach().double().sum() for p in G.parameters()))
        return {str(n): {"fid": fid, "kid_mean": 0.001, "kid_std": 0.0001, "n_real": n_real, "n_generated": n,
                         **({"precision": 0.5, "recall": 0.25} if n == zoo.N_FULL else {})} for n in ns}, {"n": n_real}

    monkeypatch.setattr(zoo, "score_generator", fake_score)
    runs, out = tmp_path / "runs", tmp_path / "results" / "zoo.json"
    args = ["--data-sets", "toy", "--runs", str(runs), "--out", str(out)]
    assert zoo.main(["train", *args]) == 0
    assert zoo.main(["score", *args]) == 0
    assert calls == [[1000], [1000, 5000], [1000], [1000, 5000]]  # 4 points: the middle and the last in full
    assert zoo.main(["score", *args]) == 0
    assert len(calls) == 4  # nothing scored twice
    row = json.loads(out.read_text())["rows"][0]
    assert [p["kimg"] for p in row["points"]] == [0.016, 0.032, 0.048, 0.064]
    assert [p.get("strip") for p in row["points"]][:3] == [None] * 3 and (out.parent / row["points"][-1]["strip"]).is_file()
    assert row["images_per_step"] == 8 and row["point_kimg"] == 0.016
    # extended: the new points are scored, the new end in full, and the strip moves to it
    assert zoo.main(["train", *args, "--kimg", "0.08"]) == 0
    assert zoo.main(["score", *args]) == 0
    assert calls[4:] == [[1000, 5000]]
    row = json.loads(out.read_text())["rows"][0]
    assert [p["kimg"] for p in row["points"]][-1] == 0.08 and sum(1 for p in row["points"] if p.get("strip")) == 1


def test_a_results_file_that_is_not_the_zoos_is_refused(zoo, tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"rows": [{"minutes": 3}]}')
    with pytest.raises(SystemExit, match="is not the zoo's results"):
        zoo.main(["score", "--out", str(other), "--data-sets", "mnist32", "--runs", str(tmp_path / "none")])
    assert json.loads(other.read_text()) == {"rows": [{"minutes": 3}]}


@pytest.mark.parametrize("args, said", [(["train", "--only", "ragan", "--skip", "ragan"], "--only and --skip both name ragan"),
                                        (["train", "--kimg", "nan"], "--kimg: a positive"),
                                        (["train", "--kimg", "-1"], "--kimg: a positive"),
                                        (["score", "--n-real", "1"], "--n-real: at least 2"),
                                        (["speed", "--seconds", "0"], "--seconds: a positive")])
def test_bad_arguments_are_one_line_before_any_work(zoo, capsys, args, said):
    with pytest.raises(SystemExit) as exc:
        zoo.main(args)
    assert exc.value.code == 2 and said in capsys.readouterr().err


def test_a_page_that_cannot_be_written_is_one_line(zoo, tmp_path, capsys):
    import shutil
    results = tmp_path / "zoo.json"
    shutil.copy(Path(__file__).parent / "data" / "zoo_fixture.json", results)
    assert zoo.main(["page", "--results", str(results), "--page", "/dev/full", "--figures", str(tmp_path / "f"),
                     "--scores", str(tmp_path / "s.json")]) == 1
    assert "could not write the page" in capsys.readouterr().err


@pytest.fixture
def recipe_runs(zoo):
    spec = importlib.util.spec_from_file_location("recipe_runs", BENCH / "recipe_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_recipe_trained_as_shipped_is_scored_on_its_own_data_and_shown_by_ganzoo_recipes(zoo, recipe_runs, tmp_path, monkeypatch):
    from pathlib import Path as P

    assert recipe_runs.own_data({"name": "mnist", "root": "data/mnist", "resolution": 28}, P("/d")) == \
        {"name": "mnist", "root": "/d/mnist", "resolution": 28}
    assert recipe_runs.own_data({"name": "images", "path": "data/anime-tagged-96.zip"}, P("/d"))["path"] == "/d/anime-tagged-96.zip"
    assert [recipe_runs.data_set_name(s) for s in ({"name": "mnist", "resolution": 28}, {"name": "images", "path": "a/anime-tagged-96.zip",
            "resolution": 64}, {"name": "toyfaces", "resolution": 32})] == ["mnist28", "tagged64", "toyfaces32"]
    calls = []

    def fake_score(G, ref, ns, n_real, radii=False):  # stands for the Inception scores
        calls.append((ref.name, ref.resolution, list(ns), n_real))
        return {str(n): {"fid": 10.0 + n / 1000, "kid_mean": 0.01, "kid_std": 0.001, "n_real": n_real, "n_generated": n,
                         **({"precision": 0.5, "recall": 0.25} if n == 5000 else {})} for n in ns}, {"n": n_real, "source": "toyfaces"}

    monkeypatch.setattr(recipe_runs.zoo, "score_generator", fake_score)
    import yaml

    from ganzoo.shipped import shipped_recipes

    shipped = shipped_recipes()
    small = yaml.safe_load(shipped["quick_toyfaces"].read_text())
    small["data"]["size"] = 256  # the shipped recipe with fewer procedural faces to draw: the same path through the bench
    (tmp_path / "quick_toyfaces.yaml").write_text(yaml.safe_dump(small))
    monkeypatch.setattr(recipe_runs, "shipped_recipes", lambda: {**shipped, "quick_toyfaces": tmp_path / "quick_toyfaces.yaml"})
    runs, out = tmp_path / "runs", tmp_path / "results" / "recipe_runs.json"
    common = ["--runs", str(runs), "--out", str(out)]
    assert recipe_runs.main(["train", "quick_toyfaces", *common, "--kimg", "0.128", "--threads", "1"]) == 0  # 2 steps of 64
    assert recipe_runs.main(["train", "quick_toyfaces", *common, "--kimg", "0.128", "--threads", "1"]) == 0  # trained already: says so
    assert recipe_runs.main(["score", "quick_toyfaces", *common]) == 0
    assert calls == [("toyfaces", 32, [1000, 5000], 256)]  # its own data at its own resolution (all of its 256 images)
    entry = json.loads(out.read_text())["runs"]["quick_toyfaces"]
    assert entry["data_set"] == "toyfaces32" and entry["kimg"] == 0.13 and entry["steps"] == 2 and entry["minutes"] is None  # not alone
    assert (out.parent / entry["strip"]).is_file() and entry["trained"]["threads"] == 1
    assert recipe_runs.main(["speed", "quick_toyfaces", *common, "--seconds", "0.3", "--warmup", "1"]) == 0  # alone: its CPU-minutes
    entry = json.loads(out.read_text())["runs"]["quick_toyfaces"]
    assert entry["scores"] and entry["minutes"] == round(128 / entry["speed"]["img_per_s"] / 60, 1) and entry["img_per_s_alone"] > 0
    # into what `ganzoo recipes` reads, beside the zoo's rows
    import zoo_page  # on the path while the zoo fixture is

    merged = zoo_page.recipe_scores({"rows": [], "speeds": []}, zoo_page.other_scores(out.parent))
    assert merged["recipes"]["quick_toyfaces"] == [{"data_set": "toyfaces32", "kimg": 0.13, "minutes": entry["minutes"], "fid": 15.0, "n": 5000,
                                                    "n_real": 256, "recall": 0.25, "fingerprint": entry["fingerprint"],
                                                    "source": "shipped"}]
    with pytest.raises(SystemExit, match="no run in"):
        recipe_runs.main(["score", "dcgan_mnist", *common])
    for bad in (["--kimg", "-1"], ["--kimg", "nan"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            recipe_runs.main(["train", "dcgan_mnist", *common, *bad])
    assert not (runs / "dcgan_mnist").exists()


def test_the_longest_score_of_a_recipe_wins_whichever_bench_measured_it(zoo):
    import zoo_page

    def entry(kimg, fid, source="race", recipe="anime_fast", row="anime_fast"):
        return {"recipe": recipe, "row": row, "data_set": "anime64", "kimg": kimg, "minutes": None, "source": source,
                "scores": {"5000": {"fid": fid, "n_real": 5000, "recall": 0.01}}}

    rows = {"rows": [{"row": "anime_fast", "recipe": "anime_fast", "data_set": "anime64",
                      "points": [{"kimg": 23.0, "scores": {"1000": {"fid": 100.0, "n_real": 5000}}}]}], "speeds": []}
    got = zoo_page.recipe_scores(rows, [entry(17.0, 90.0), entry(21.0, 80.0, recipe="projected_anime", row="projected")])["recipes"]
    assert got["anime_fast"][0]["fid"] == 100.0 and got["anime_fast"][0]["source"] == "zoo"  # 23k images beat 17k
    assert got["projected_anime"][0]["kimg"] == 21.0
    got = zoo_page.recipe_scores(rows, [entry(51.0, 60.0)])["recipes"]
    assert got["anime_fast"][0]["fid"] == 60.0 and got["anime_fast"][0]["source"] == "race"
    changed = dict(entry(90.0, 10.0), overrides={"objective": {"name": "ragan"}})  # anime_fast with another loss: not anime_fast's score
    assert zoo_page.recipe_scores(rows, [changed])["recipes"]["anime_fast"][0]["fid"] == 100.0


def test_the_spread_of_a_shipped_model_keeps_every_seed_and_scores_only_new_ones(zoo, finished_run, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("ship_models", BENCH / "ship_models.py")
    ship_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship_models)
    from ganzoo.export import export

    export(finished_run, "folder", tmp_path / "models" / "tiny-faces", half=True, name="tiny-faces")
    monkeypatch.setattr(ship_models, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setitem(ship_models.MODELS, "tiny-faces", {"data_set": "toy16", "row": "anime_fast", "changes": {}})
    monkeypatch.setitem(ship_models.zoo.DATA_SETS, "toy16", {"section": {"name": "toyfaces", "size": 64, "resolution": 16}, "n_real": 64})
    calls = []

    def fake_evaluate(target, ref, n, n_real, seed):  # stands for the Inception scores of the shipped folder
        calls.append((Path(target).name, ref.name, n, n_real, seed))
        return {"fid": 50.0 + seed, "kid_mean": 0.05, "kid_std": 0.001, "precision": 0.5, "recall": 0.1, "protocol": {}}

    monkeypatch.setattr(ship_models.ganzoo, "evaluate", fake_evaluate)
    out = tmp_path / "spread.json"
    assert ship_models.main(["spread", "tiny-faces", "--seeds", "1", "--spread-out", str(out)]) == 0
    assert calls == [("tiny-faces", "toyfaces", 5000, 5000, 0), ("tiny-faces", "toyfaces", 5000, 5000, 1)]  # the card's seed too
    assert ship_models.main(["spread", "tiny-faces", "--seeds", "1", "2", "--spread-out", str(out)]) == 0
    assert [c[-1] for c in calls] == [0, 1, 2]  # seeds scored before are kept, not scored again
    entry = json.loads(out.read_text())["tiny-faces"]
    assert [s["seed"] for s in entry["scores"]] == [0, 1, 2] and entry["fid_mean"] == 51.0 and entry["fid_std"] == 1.0
    assert entry["fid_range"] == [50.0, 52.0] and entry["data_set"] == "toy16" and entry["n"] == 5000
    (tmp_path / "models" / "tiny-faces" / "model.safetensors").unlink()
    with pytest.raises(SystemExit, match="no shipped folder"):
        ship_models.main(["spread", "tiny-faces", "--spread-out", str(out)])
