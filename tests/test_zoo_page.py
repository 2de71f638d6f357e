"""docs/zoo.md is generated from the zoo's JSON (bench/zoo_page.py): a fixture's page must equal the expected page,
and the committed page and scores file must be what the generator makes of the committed JSON."""

import importlib.util
import json
import os
import shutil
from pathlib import Path

import torch

from ganzoo.sampling import read_png, write_png

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo_page = _module("zoo_page")


def _fixture(tmp_path: Path) -> Path:
    """The fixture JSON in tmp_path/results/, with grid strips for two of its three rows (the third's is missing)."""
    results = tmp_path / "results" / "zoo_fixture.json"
    results.parent.mkdir(parents=True)
    shutil.copy(DATA / "zoo_fixture.json", results)
    g = torch.Generator().manual_seed(0)
    for strip, channels in (("anime64/anime_fast-20min.png", 3), ("mnist32/e2_dcgan-5min.png", 1)):
        path = results.parent / "zoo_fixture" / strip
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 64 if channels == 3 else 32
        write_png(torch.randint(0, 256, (channels, size, 8 * size), dtype=torch.uint8, generator=g), path)
    return results


def test_the_page_of_a_fixture_is_the_expected_page(tmp_path):
    results = _fixture(tmp_path)
    docs = tmp_path / "docs"
    text = zoo_page.build(results, docs / "zoo.md", docs / "zoo", tmp_path / "scores.json")
    expected = DATA / "zoo_expected.md"
    if os.environ.get("ZOO_PAGE_REGENERATE"):  # after a deliberate change of the page: rewrite, then read the diff
        expected.write_text(text)
    assert (docs / "zoo.md").read_text() == text
    assert text == expected.read_text(), "the generated page differs from tests/data/zoo_expected.md"
    # one figure per data set with a strip: a labelled row per family that has one (ragan's strip is missing)
    anime, digits = read_png(docs / "zoo" / "anime64.png"), read_png(docs / "zoo" / "mnist32.png")
    assert anime.shape[0] == 3 and anime.shape[1] == 64 + 4 and anime.shape[2] > 8 * 66  # one row + the label margin
    assert digits.shape[0] == 1 and digits.shape[1] == 64 + 4  # 32 px enlarged to 64 for the labelled grid
    assert not (docs / "zoo" / "tagged64.png").exists()
    # what `ganzoo recipes` reads: a recipe's own rows only (ragan is anime_fast with another loss), largest N of each
    scores = json.loads((tmp_path / "scores.json").read_text())["recipes"]
    assert scores == {"anime_fast": [{"data_set": "anime64", "minutes": 20, "fid": 118.9, "n": 5000, "n_real": 22969, "recall": 0.0002}],
                      "e2_dcgan": [{"data_set": "mnist32", "minutes": 5, "fid": 80.0, "n": 64, "n_real": 10000, "recall": 0.25}]}


def test_the_page_shows_each_number_with_its_n_and_changes_with_the_json(tmp_path):
    results = _fixture(tmp_path)
    data = json.loads(results.read_text())
    text = zoo_page.page(data)
    assert ("| FID@1,000 | FID@5,000 | KID@5,000 (x1e3) | precision@5,000 | recall@5,000 | 3-NN radius G / real@5,000 "
            "| real in G balls@5,000 | N real |") in text
    assert "| 118.90 | 98.70 ± 1.00 | 0.3300 | 0.0002 | 11.5 / 17.2 | 1.93 | 22,969 |" in text
    assert "| 150.12 | - | - | - | - | - | - | 22,969 |" in text  # ragan has no N = 5,000 score: a dash, not a number
    assert "`anime_fast` with objective.name=\"ragan\"" in text
    assert "tagged64" in text and "No row measured yet." in text
    data["rows"][1]["scores"]["5000"]["recall"] = 0.5
    assert zoo_page.page(data) != text


def test_a_row_of_an_earlier_version_of_its_recipe_is_marked_on_the_page(tmp_path):
    data = json.loads(_fixture(tmp_path).read_text())
    for r in data["rows"]:
        r["recipe_fingerprint"] = {"anime_fast": "aaaaaaaaaaaa", "e2_dcgan": "eeeeeeeeeeee"}[r["recipe"]]
    same = zoo_page.page(data, current={"anime_fast": "aaaaaaaaaaaa", "e2_dcgan": "eeeeeeeeeeee"})
    assert "†" not in same
    changed = zoo_page.page(data, current={"anime_fast": "bbbbbbbbbbbb", "e2_dcgan": "eeeeeeeeeeee"})
    marked = [line.split(" | ")[0] for line in changed.splitlines() if line.startswith("| ") and " † |" in line]
    assert marked == ["| anime_fast", "| ragan"]  # both rows built from anime_fast; e2_dcgan's recipe is unchanged
    assert changed.count("† measured on an earlier version of the recipe") == 1  # one note, under the anime64 table


def test_an_empty_table_says_that_nothing_is_measured():
    text = zoo_page.page({"rows": []})
    assert "No row has been measured yet" in text
    assert "FID@" not in text.split("## anime64")[1]  # no table, no number
    assert zoo_page.recipe_scores({"rows": []})["recipes"] == {}


def test_the_committed_page_and_scores_are_generated_from_the_committed_json():
    results = zoo_page.load(zoo_page.RESULTS)
    links = zoo_page.figure_links(results, zoo_page.RESULTS.parent)
    assert zoo_page.PAGE.read_text() == zoo_page.page(results, links), \
        "docs/zoo.md is not what `python bench/zoo.py page` makes of bench/results/zoo.json: regenerate it"
    assert json.loads(zoo_page.SCORES.read_text()) == zoo_page.recipe_scores(results), \
        "recipes/scores.json is not what `python bench/zoo.py page` makes of bench/results/zoo.json: regenerate it"
    for ds, link in links.items():
        assert (zoo_page.PAGE.parent / link).is_file(), f"docs/{link} is missing"


def test_ganzoo_recipes_shows_the_measured_scores_the_page_generator_writes(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import ganzoo.shipped
    from ganzoo.cli import app

    results = _fixture(tmp_path)
    scores = tmp_path / "scores.json"
    zoo_page.build(results, tmp_path / "docs" / "zoo.md", tmp_path / "docs" / "zoo", scores, draw=False)
    monkeypatch.setattr(ganzoo.shipped, "scores_path", lambda: scores)
    res = CliRunner().invoke(app, ["recipes", "--all"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line for line in res.output.splitlines() if line.strip()}
    assert rows["anime_fast"].rstrip().endswith("118.9 @5k, 20 min, anime64")
    assert rows["e2_dcgan"].rstrip().endswith("80.0 @64, 5 min, mnist32")
    assert rows["sagan_anime"].rstrip().endswith(" -") and rows["dcgan_mnist"].rstrip().endswith(" -")  # not measured
    assert "FID@N, budget, data" in res.output
    scores.write_text("{not json")
    res = CliRunner().invoke(app, ["recipes"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "recipes are listed without their scores" in res.output
    assert {line.split()[0]: line for line in res.output.splitlines() if line.strip()}["anime_fast"].rstrip().endswith(" -")


def test_a_score_of_an_earlier_version_of_a_recipe_says_so(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import ganzoo.shipped
    from ganzoo.cli import app
    from ganzoo.shipped import fingerprint, shipped_recipes

    # what the fingerprint sees: the training sections, not words, output or where the data lies
    path = tmp_path / "r.yaml"
    path.write_text("name: a\ndescription: x\ndata: {name: images, path: one.zip}\ntrain: {batch_size: 16}\noutput: {samples: 5}\n")
    before = fingerprint(path)
    path.write_text("name: b\ndescription: y\ndata: {name: images, path: two.zip}\ntrain: {batch_size: 16}\noutput: {samples: 0}\n")
    assert fingerprint(path) == before
    path.write_text("name: a\ndata: {name: images, path: one.zip}\ntrain: {batch_size: 8}\n")
    assert fingerprint(path) != before
    path.write_text("name: a\ndata: {name: images, path: one.zip, augment: {hflip: true}}\ntrain: {batch_size: 16}\n")
    assert fingerprint(path) != before
    # ganzoo recipes marks a score measured on another version; the current version's score shows plainly
    now = fingerprint(shipped_recipes()["anime_fast"])
    entry = {"data_set": "anime64", "minutes": 3.0, "fid": 301.54, "n": 5000, "n_real": 22969, "recall": 0.0}
    scores = tmp_path / "scores.json"
    monkeypatch.setattr(ganzoo.shipped, "scores_path", lambda: scores)
    for fp, shown in ((now, "301.5 @5k, 3 min, anime64"), ("0" * 12, "301.5 @5k, 3 min, anime64 (an earlier version)")):
        scores.write_text(json.dumps({"recipes": {"anime_fast": [dict(entry, fingerprint=fp)]}}))
        res = CliRunner().invoke(app, ["recipes"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        row = {line.split()[0]: line for line in res.output.splitlines() if line.strip()}["anime_fast"]
        assert row.rstrip().endswith(shown), row
