"""The trained models that ship with ganzoo: each loads by name and draws images of its shape, its card parses as a
Hugging Face model card with the scores of exactly its weights; names work wherever a model folder goes."""

import json

import pytest
import torch
from typer.testing import CliRunner

import ganzoo
import ganzoo.shipped
from ganzoo.cli import app
from ganzoo.errors import GanzooError
from ganzoo.export import export
from ganzoo.rundir import ModelFiles
from ganzoo.shipped import model_summary, shipped_models

EXPECTED = ("anime-faces", "anime-faces-32", "mnist-digits")  # what the package promises (docs/models.md)
SHIPPED = shipped_models()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_model_loads_by_name_and_draws_its_shape(name):
    G = ganzoo.load_generator(name)
    config = json.loads(ModelFiles(SHIPPED[name]).config.read_text())
    image = config["image"]
    labels = "random" if config["labels"] else None
    images = ganzoo.generate(G, 2, seed=0, labels=labels)
    assert images.dtype == torch.uint8 and tuple(images.shape) == (2, image["channels"], image["resolution"], image["resolution"])
    assert config["name"] == name and config["weights_dtype"] == "float16"
    assert ModelFiles(SHIPPED[name]).weights.stat().st_size <= 5 * 1024 * 1024
    assert config["evaluation"] and config["evaluation"]["fid"] > 0 and config["evaluation"]["n"] >= 5000


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_card_parses_as_a_hub_model_card_with_its_scores(name):
    hub = pytest.importorskip("huggingface_hub")
    card = hub.ModelCard.load(ModelFiles(SHIPPED[name]).card)
    results = card.data.to_dict()["model-index"][0]["results"][0]["metrics"]
    fid = next(m for m in results if m["type"] == "fid")
    assert fid["value"] == pytest.approx(json.loads(ModelFiles(SHIPPED[name]).config.read_text())["evaluation"]["fid"], abs=1e-4)


def test_the_package_ships_the_promised_models():
    missing = [n for n in EXPECTED if n not in SHIPPED]
    assert not missing, f"not shipped: {missing} (python bench/ship_models.py all)"


@pytest.fixture
def a_shipped_model(finished_run, tmp_path, monkeypatch):
    """A tiny run exported as a shipped model named tiny-faces (fp16), in a stand-in for the installed models."""
    root = tmp_path / "installed"
    export(finished_run, "folder", root / "tiny-faces", half=True, name="tiny-faces")
    monkeypatch.setattr(ganzoo.shipped, "shipped_models", lambda: {"tiny-faces": root / "tiny-faces"})
    monkeypatch.setattr(ganzoo.trained, "shipped_models", lambda: {"tiny-faces": root / "tiny-faces"})
    return root / "tiny-faces"


def test_a_half_export_stores_fp16_and_draws_what_the_fp32_weights_draw_to_the_nearest_level(a_shipped_model, finished_run):
    from safetensors.torch import load_file

    weights = load_file(str(ModelFiles(a_shipped_model).weights))
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    full = ganzoo.generate(ganzoo.load_generator(finished_run), 8, seed=0).int()
    half = ganzoo.generate(ganzoo.load_generator("tiny-faces"), 8, seed=0).int()
    assert (full - half).abs().max() <= 2  # fp16 weights: at most two levels of 255 apart


def test_names_work_wherever_a_model_folder_goes_and_a_path_wins(a_shipped_model, tmp_path, monkeypatch):
    runner = CliRunner()
    res = runner.invoke(app, ["sample", "tiny-faces", "-n", "4", "-o", str(tmp_path / "faces")])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "faces").glob("0*.png"))) == 4
    res = runner.invoke(app, ["sample", "tiny-face", "-n", "4", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "did you mean tiny-faces" in res.output.replace("'", "") and "Traceback" not in res.output
    res = runner.invoke(app, ["export", "tiny-faces", "-f", "onnx"])  # no -o: a shipped model is not written into
    assert res.exit_code != 0 and "with -o" in res.output, res.output
    assert ganzoo.open_trained("tiny-faces").name == "tiny-faces"
    # a folder of that name where the command runs is what the user means
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-faces").mkdir()
    with pytest.raises(GanzooError, match="neither a run folder"):
        ganzoo.open_trained("tiny-faces")


def test_ganzoo_models_lists_each_model_with_its_scores_and_origin(a_shipped_model):
    res = CliRunner().invoke(app, ["models"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "tiny-faces" in res.output and "3x16x16, unconditional" in res.output and "not evaluated" in res.output
    assert "images seen" in res.output and "recipe " in res.output
    lines = res.output.splitlines()
    assert all(len(line) <= 80 for line in lines)
    summary = model_summary(a_shipped_model)
    assert summary["images_seen"] == summary["step"] * 8  # TINY: batch 8, one critic step

def test_listings_into_a_file_keep_every_word_of_a_long_line(monkeypatch):
    from ganzoo.cli import catalog

    long = "FID 1.0 against " + " ".join(f"word{i}" for i in range(40))  # far past 80 columns
    monkeypatch.setattr(catalog, "_model_rows", lambda: [("long-model", "3x16x16, unconditional", long, "recipe tiny")])
    # into a file or a pipe (no COLUMNS): every line whole, however long, never cut at 80 columns
    for command in (["models"], ["recipes"]):
        piped = CliRunner().invoke(app, command, env={"COLUMNS": None}).output
        wrapped = CliRunner().invoke(app, command, env={"COLUMNS": "40"}).output
        assert " ".join(piped.split()) == " ".join(wrapped.split()), command  # the same words
        assert all(line.startswith("  ") for line in piped.splitlines() if line[:1] == " ")
        if command == ["models"]:
            assert "  " + long in piped.splitlines()
