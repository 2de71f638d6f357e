"""One home for a trained run: a run folder, a checkpoint inside its run, the same checkpoint copied elsewhere and an
exported model folder open alike (``ganzoo.trained``), and every command that draws on a generator takes each of
them: eval, sample, nearest, project, explore and export. The layout rules that keep it that way are checked too:
no run file's name spelled outside ``ganzoo.rundir``, no walking from a checkpoint up to its run, no two modules
importing each other."""

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.cli import app
from ganzoo.export import export
from ganzoo.rundir import ModelFiles, RunFiles
from ganzoo.sampling import read_png, write_png
from ganzoo.trained import open_trained

from conftest import tiny_feature_network

runner = CliRunner()
SRC = Path(ganzoo.__file__).parent
SOURCES = ("run", "checkpoint", "outside", "model")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The four ways to point at one trained generator (with a weight average, so that EMA handling shows)."""
    from conftest import TINY
    import copy

    tmp = tmp_path_factory.mktemp("trained")
    r = copy.deepcopy(TINY)
    r["output"].update(dir=str(tmp / "runs"), samples=0)
    r["train"].update(steps=6)
    r["ema"] = {"decay": 0.9}
    run = train(load_recipe(r), tmp / "run", progress=False).run_dir
    outside = tmp / "elsewhere" / "copy.safetensors"
    outside.parent.mkdir()
    shutil.copy(RunFiles(run).last, outside)
    model = export(run, "folder", output=tmp / "model").path
    images = tmp / "images"
    images.mkdir()
    for i in range(6):  # a few real-looking images to score against and project
        write_png(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(i)),
                  images / f"img{i}.png")
    return {"run": run, "checkpoint": RunFiles(run).last, "outside": outside, "model": model, "images": images, "tmp": tmp}


def test_every_source_opens_to_the_same_generator(sources):
    kinds = {name: open_trained(sources[name]) for name in SOURCES}
    assert [kinds[n].kind for n in SOURCES] == ["run", "checkpoint", "checkpoint", "model"]
    assert kinds["run"].files == kinds["checkpoint"].files == RunFiles(sources["run"]) and kinds["outside"].files is None
    assert kinds["model"].files is None and kinds["model"].critic() is None and kinds["run"].critic() is not None
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = {n: t.generator()(z) for n, t in kinds.items()}
    assert all(torch.equal(out["run"], out[n]) for n in SOURCES)  # the model folder was exported with the weight average
    assert kinds["run"].uses_ema() and not kinds["run"].uses_ema(False) and kinds["model"].uses_ema()
    with torch.no_grad():
        assert not torch.equal(kinds["run"].generator(ema=False)(z), out["run"])
    assert kinds["model"].step == kinds["run"].step == 6 and kinds["model"].name == "model"


@pytest.mark.parametrize("name", SOURCES)
def test_sample_takes_every_source(sources, name, tmp_path):
    res = runner.invoke(app, ["sample", str(sources[name]), "-n", "3", "-o", str(tmp_path / "s"), "--no-grid"])
    assert res.exit_code == 0, res.output
    assert [p.name for p in sorted((tmp_path / "s").glob("0*.png"))] == ["00000.png", "00001.png", "00002.png"]


def test_samples_are_the_same_from_every_source(sources, tmp_path):
    first = []
    for name in SOURCES:
        assert runner.invoke(app, ["sample", str(sources[name]), "-n", "2", "-o", str(tmp_path / name), "--no-grid"]).exit_code == 0
        first.append(read_png(tmp_path / name / "00000.png"))
    assert all(torch.equal(first[0], other) for other in first[1:])


@pytest.mark.parametrize("name", SOURCES)
def test_export_takes_every_source(sources, name, tmp_path):
    out = tmp_path / "g.onnx"
    res = runner.invoke(app, ["export", str(sources[name]), "-f", "onnx", "-o", str(out)])
    assert res.exit_code == 0 and out.is_file(), res.output


@pytest.mark.parametrize("name", ["outside", "model"])
def test_export_outside_a_run_asks_where_to_write(sources, name):
    res = runner.invoke(app, ["export", str(sources[name]), "-f", "onnx"])
    assert res.exit_code == 2 and "say where to write the export with -o" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("name", SOURCES)
def test_project_takes_every_source(sources, name, tmp_path):
    res = runner.invoke(app, ["project", str(sources[name]), str(sources["images"] / "img0.png"), "-o", str(tmp_path / "p"),
                              "--steps", "2", "--features", "pixels"])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"img0.latent.safetensors", "img0.png", "img0.side.png"}


@pytest.mark.parametrize("name", SOURCES)
def test_nearest_takes_every_source(sources, name, tmp_path):
    grid = tmp_path / "n.png"
    res = runner.invoke(app, ["nearest", str(sources[name]), "-n", "4", "-o", str(grid), "--data", str(sources["images"])])
    assert res.exit_code == 0, res.output
    assert grid.is_file()
    json_path = RunFiles(sources["run"]).nearest if name in ("run", "checkpoint") else grid.with_suffix(".json")
    assert '"n_generated": 4' in json_path.read_text()


def test_nearest_outside_a_run_needs_a_grid_path(sources):
    res = runner.invoke(app, ["nearest", str(sources["model"]), "-n", "4"])
    assert res.exit_code == 2 and "say where to write the grid with -o" in res.output


@pytest.mark.parametrize("name", SOURCES)
def test_explore_takes_every_source(sources, name):
    from ganzoo.explore import _load

    generator, critic, title = _load(sources[name], torch.device("cpu"))
    assert generator.latent_dim == 8 and (critic is None) == (name == "model")
    assert title == {"run": "run", "checkpoint": "run", "outside": "copy", "model": "model"}[name]


@pytest.mark.parametrize("name", SOURCES)
def test_eval_takes_every_source_and_a_model_folder_is_scored_as_a_generator(sources, name, tmp_path):
    weights = tiny_feature_network(tmp_path, features=16)  # what is scored is the point here, not the network (tests/test_evaluate.py)
    res = runner.invoke(app, ["eval", str(sources[name]), "-n", "4", "--n-real", "6", "--ref", str(sources["images"]),
                              "--weights", weights, "--backend", "torch"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert re.search(r"FID\s*│\s*\d+\.\d\d", res.output) and re.search(r"N generated\s*│\s*4 \(", res.output)
    if name == "model":
        assert "model folder, step 6, weight average" in res.output


def test_eval_of_a_model_folder_without_its_data_says_to_give_ref(sources, tmp_path):
    import json

    model = tmp_path / "downloaded"
    shutil.copytree(sources["model"], model)
    config = json.loads((model / ModelFiles.CONFIG).read_text())
    config["recipe"]["data"] = {"name": "images", "path": "/machine/that/trained/it/faces.zip", "resolution": 16, "channels": 3}
    (model / ModelFiles.CONFIG).write_text(json.dumps(config))
    res = runner.invoke(app, ["eval", str(model), "-n", "2", "--backend", "torch"])
    assert res.exit_code == 2 and res.output.count("error:") == 1, res.output
    assert "exported model folder; the data its recipe was trained on is not here" in res.output and "--ref PATH" in res.output


@pytest.mark.parametrize("broken, message", [
    ("no_weights", "its model.safetensors is missing"),
    ("config_dir", "its config.json is a folder, not a file"),
    ("latent", "latent_dim is 9, but the weights and recipe beside it are of 8"),
    ("not_ours", "is not a ganzoo model folder's config"),
    ("width", "the generator's parameters ({'base_channels': 16"),
    ("condition", "condition is 'concat', the recipe beside it says None"),
])
def test_a_damaged_model_folder_is_named_as_one(sources, tmp_path, broken, message):
    folder = tmp_path / "m"
    shutil.copytree(sources["model"], folder)
    files = ModelFiles(folder)
    if broken == "no_weights":
        files.weights.unlink()
    elif broken == "config_dir":
        files.config.unlink()
        files.config.mkdir()
    elif broken in ("latent", "width", "condition"):
        config = json.loads(files.config.read_text())
        if broken == "latent":
            config["latent_dim"] = 9
        elif broken == "width":
            config["generator"]["params"]["base_channels"] = 16
        else:
            config["condition"] = "concat"
        files.config.write_text(json.dumps(config))
    else:
        files.config.write_text('{"format": "something-else"}')
    with pytest.raises(GanzooError, match=re.escape(message)):
        open_trained(folder).generator()
    res = runner.invoke(app, ["sample", str(folder), "-n", "2", "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "first checkpoint" not in res.output


def test_a_model_folder_cannot_be_resumed_and_is_not_a_sample_folder(sources, tmp_path):
    res = runner.invoke(app, ["resume", str(sources["model"])])
    assert res.exit_code == 2 and "exported model folder" in res.output and "cannot be resumed" in res.output
    res = runner.invoke(app, ["sample", str(sources["run"]), "-n", "2", "-o", str(sources["model"])])
    assert res.exit_code == 2 and "is a model folder: samples go in a folder of their own" in res.output


# -- the layout rules ------------------------------------------------------------------------------------------------------
def _modules():
    return sorted(p for p in SRC.rglob("*.py"))


def test_no_run_file_name_is_spelled_outside_the_run_folder_module():
    names = sorted(RunFiles.NAMES - {RunFiles.LOCK, RunFiles.EXPORTS, RunFiles.SAMPLES, RunFiles.GRIDS, RunFiles.TENSORBOARD,
                                     RunFiles.EVALS, RunFiles.PROJECTIONS, RunFiles.CHECKPOINTS})
    names += ["last.safetensors", "best.json", "best.safetensors"]  # plain words (samples, export, ...) appear in prose too
    found = []
    for path in _modules():
        if path.name == "rundir.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and not _is_docstring(node, path):
                found += [f"{path.relative_to(SRC)}:{node.lineno} {n}" for n in names if re.search(rf"(^|[/ ]){re.escape(n)}$", node.value)
                          or node.value == n]
    assert not found, found


def _is_docstring(node, path) -> bool:
    return "\n" in node.value or len(node.value) > 120  # docstrings and messages that mention a file to the user


def test_no_checkpoint_path_walks_up_to_its_run():
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in _modules() if p.name != "rundir.py"  # RunFiles.of_checkpoint: the one place
                 for i, line in enumerate(p.read_text().splitlines(), 1) if ".parent.parent" in line]
    assert not offenders, offenders


def test_no_two_modules_import_each_other():
    mods = {}
    for f in _modules():
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(["ganzoo", *parts])] = f

    def targets(mod, node):
        package = mod.split(".") if mods[mod].name == "__init__.py" else mod.split(".")[:-1]
        if node.level:
            base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
        elif (node.module or "").startswith("ganzoo"):
            base = node.module
        else:
            return []
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]

    edges = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                edges[m] |= {t for t in targets(m, node) if t in mods and t != m}
            elif isinstance(node, ast.Import):
                edges[m] |= {a.name for a in node.names if a.name in mods and a.name != m}
    mutual = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges[b]})
    assert not mutual, mutual
