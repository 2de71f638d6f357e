"""docs/zoo.md is generated from the zoo's JSON (bench/zoo_page.py): a fixture's page must equal the expected page,
and the committed page and scores file must be what the generator makes of the committed JSON."""

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
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
    """The fixture JSON in tmp_path/results/, with the strips of three of its four rows (ragan's is missing)."""
    results = tmp_path / "results" / "zoo_fixture.json"
    results.parent.mkdir(parents=True)
    shutil.copy(DATA / "zoo_fixture.json", results)
    g = torch.Generator().manual_seed(0)
    for strip, channels in (("anime32/anime_fast.png", 3), ("anime32/r3gan_anime.png", 3), ("mnist32/e2_dcgan.png", 1)):
        path = results.parent / "zoo_fixture" / strip
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png(torch.randint(0, 256, (channels, 32, 8 * 32), dtype=torch.uint8, generator=g), path)
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
    # per data set: the curves where a row has a speed (mnist32's has none), the strips where a row has one
    assert sorted(p.name for p in (docs / "zoo").iterdir()) == ["anime32-curves.png", "anime32.png", "mnist32.png"]
    anime = read_png(docs / "zoo" / "anime32.png")
    assert anime.shape[0] == 3 and anime.shape[1] > 2 * 64  # two labelled rows (ragan's strip is missing)
    # what `ganzoo recipes` reads: a recipe's own rows only (ragan is anime_fast with another loss), at its last full point
    scores = json.loads((tmp_path / "scores.json").read_text())["recipes"]
    assert scores["anime_fast"] == [{"data_set": "anime32", "kimg": 80.0, "minutes": 24.7, "fid": 73.5, "n": 5000, "n_real": 10000,
                                     "recall": 0.1274, "source": "zoo"}]
    assert scores["e2_dcgan"][0]["minutes"] is None and scores["e2_dcgan"][0]["kimg"] == 32.0  # no speed: images seen only
    assert set(scores) == {"anime_fast", "e2_dcgan", "r3gan_anime"}


def test_the_page_reads_budgets_off_the_curves_and_says_where_lines_cross(tmp_path):
    data = json.loads(_fixture(tmp_path).read_text())
    text = zoo_page.page(data, current={})
    # anime_fast sees 54 img/s alone: 10 minutes are 32.4k images, so its 10-minute cell is the 32 kimg point
    assert "| anime_fast | 54.0 | 200.0 (200.0), 8 | 100.0 (100.0), 32 | 80.0 (80.0), 64 |" in text
    assert "| r3gan_anime | 30.0 | (first point later) |" in text
    assert "anime_fast and r3gan_anime cross at about 24 min; r3gan_anime is ahead at 25 min." in text
    assert "Still improving at the end of its curve: r3gan_anime." in text
    assert "60 min" not in text.split("## anime32")[1].split("## mnist32")[0]  # no row reaches 60 minutes
    data["rows"][0]["points"][-1]["scores"]["5000"]["recall"] = 0.5
    assert zoo_page.page(data, current={}) != text


def test_a_row_of_an_earlier_version_of_its_recipe_is_marked_on_the_page(tmp_path):
    data = json.loads(_fixture(tmp_path).read_text())
    for r in data["rows"]:
        r["recipe_fingerprint"] = {"anime_fast": "aaaaaaaaaaaa", "e2_dcgan": "eeeeeeeeeeee", "r3gan_anime": "rrrrrrrrrrrr"}[r["recipe"]]
    same = zoo_page.page(data, current={"anime_fast": "aaaaaaaaaaaa", "e2_dcgan": "eeeeeeeeeeee"})
    assert "†" not in same
    changed = zoo_page.page(data, current={"anime_fast": "bbbbbbbbbbbb", "e2_dcgan": "eeeeeeeeeeee"})
    zoo, recipes = changed.split("## Every shipped recipe")
    marked = [line.split(" | ")[0] for line in zoo.splitlines() if line.startswith("| ") and " † |" in line]
    assert marked == ["| anime_fast", "| ragan"]  # both rows built from anime_fast; the others' recipes are unchanged
    assert zoo.count("† measured on an earlier version of the recipe") == 1
    assert [line.split(" | ")[0] for line in recipes.splitlines() if " † |" in line] == ["| anime_fast †"]


def test_an_empty_table_says_that_nothing_is_measured():
    empty = {"version": 2, "rows": [], "speeds": []}
    text = zoo_page.page(empty, current={})
    assert "No row has been measured yet" in text
    assert "FID@1,000 (" not in text.split("## anime32")[1]  # no table, no number
    assert zoo_page.recipe_scores(empty)["recipes"] == {}


def test_the_spread_between_evaluations_is_said_where_measured_and_marked_where_not():
    assert "not measured yet" in zoo_page.spread_text(None)
    scores = [{"seed": k, "fid": f} for k, f in enumerate((78.8, 79.6, 78.1))]
    entry = {"model": "anime-faces", "data_set": "anime64", "n": 5000, "scores": scores, "fid_mean": 78.833, "fid_std": 0.751,
             "fid_range": [78.1, 79.6], "card": {"fid": 78.803}}
    text = zoo_page.spread_text({"anime-faces": entry, "half-done": {**entry, "model": "x", "fid_std": None}})
    assert ("`anime-faces` (anime64) FID@5,000 78.83 ± 0.75 (range 78.10 to 79.60, seeds 0, 1, 2; at the card's seed 0 the "
            "shipped fp16 weights give 78.80, the card 78.80)") in text and "`x`" not in text


def test_a_missing_or_foreign_results_file_writes_nothing(tmp_path):
    page = tmp_path / "zoo.md"
    with pytest.raises(SystemExit, match="not found"):
        zoo_page.build(tmp_path / "misspelt.json", page, tmp_path / "fig", tmp_path / "scores.json")
    (tmp_path / "old.json").write_text('{"rows": []}')
    with pytest.raises(SystemExit, match="is not the zoo's results"):
        zoo_page.build(tmp_path / "old.json", page, tmp_path / "fig", tmp_path / "scores.json")
    assert not page.exists() and not (tmp_path / "scores.json").exists()


def test_the_committed_page_and_scores_are_generated_from_the_committed_json():
    results = zoo_page.load(zoo_page.RESULTS)
    links = {ds: {kind: f"zoo/{name}" for kind, name in (("curves", f"{ds}-curves.png"), ("strips", f"{ds}.png"))
                  if (zoo_page.FIGURES / name).is_file()} for ds in zoo_page.DATA_SETS}
    scores = zoo_page.recipe_scores(results, zoo_page.other_scores(zoo_page.RESULTS.parent))
    spread = zoo_page.load_spread(zoo_page.RESULTS.parent)
    assert zoo_page.without_block(zoo_page.PAGE.read_text()) == zoo_page.page(results, {k: v for k, v in links.items() if v}, scores=scores,
                                                                              spread=spread), \
        "docs/zoo.md is not what `python bench/zoo.py page` makes of bench/results/zoo.json: regenerate it"
    assert json.loads(zoo_page.SCORES.read_text()) == scores, \
        "recipes/scores.json is not what `python bench/zoo.py page` makes of bench/results/zoo.json: regenerate it"


def test_ganzoo_recipes_shows_the_longest_measured_score_with_its_budget(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import ganzoo.shipped
    from ganzoo.cli import app

    results = _fixture(tmp_path)
    scores = tmp_path / "scores.json"
    zoo_page.build(results, tmp_path / "docs" / "zoo.md", tmp_path / "docs" / "zoo", scores, figures=False)
    monkeypatch.setattr(ganzoo.shipped, "scores_path", lambda: scores)
    res = CliRunner().invoke(app, ["recipes", "--all"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line for line in res.output.splitlines() if line.strip()}
    assert rows["anime_fast"].rstrip().endswith("73.5 @5k, 80k img = 24.7 min, anime32")
    assert rows["e2_dcgan"].rstrip().endswith("50.0 @5k, 32k img, mnist32")
    assert rows["sagan_anime"].rstrip().endswith(" -")  # not measured
    # narrow: one block per recipe, every score line (and its wrapped rest) indented alike
    for width in (40, 60, 100):
        res = CliRunner().invoke(app, ["recipes"], env={"COLUMNS": str(width)})
        lines = res.output.splitlines()
        block = lines[lines.index("anime_fast") + 1:]
        block = block[:next(i for i, line in enumerate(block) if not line.startswith(" "))]
        assert block and all(line.startswith("  ") and len(line) <= width for line in block), (width, block)
        assert any("73.5 @5k" in line for line in block)
    scores.write_text("{not json")
    res = CliRunner().invoke(app, ["recipes"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "recipes are listed without their scores" in res.output


def test_the_race_table_marks_the_goal_of_each_budget():
    pp = _module("projected_page")

    def row(ds, minutes, fid5, recall, fid1):
        return {"data_set": ds, "minutes": minutes, "scores": {"5000": {"fid": fid5, "recall": recall}, "1000": {"fid": fid1}}}

    assert pp.goal(row("anime64", 20, 59.0, 0.11, 70.0)) == "met"
    assert pp.goal(row("anime64", 20, 61.0, 0.05, 70.0)) == "not met (FID and recall)"
    assert pp.goal(row("anime64", 20, 50.0, 0.05, 70.0)) == "not met (recall)"
    assert pp.goal(row("anime64", 60, 90.0, 0.0, 34.9)) == "met"  # 60 minutes: FID@1k alone
    assert pp.goal(row("anime64", 60, 30.0, 0.5, 36.0)) == "not met (FID@1k)"
    assert pp.goal(row("tagged64", 20, 10.0, 0.5, 10.0)) == pp.goal(row("anime64", 40, 10.0, 0.5, 10.0)) == "-"  # no goal set
