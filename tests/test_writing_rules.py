"""One rule for what every writing command may write over, one folder per writer at a time, nothing local in an
export, and the cases a second reader found among model folders and names (docs/reliability.md)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError
from ganzoo.cli import app
from ganzoo.export import export
from ganzoo.sampling import write_png

from conftest import copy_run

runner = CliRunner()


def test_no_writing_command_writes_over_a_run_file_an_input_or_a_non_file(finished_run, tmp_path):
    """One rule for every -o: never a file a run keeps, a model folder's file, an input of the command, a device or
    a folder, even with --force; distinct inputs with one stem get distinct outputs."""
    run = copy_run(finished_run, tmp_path / "run")
    model = export(run, "folder", tmp_path / "model").path
    kept = {p: p.read_bytes() for p in [run / "checkpoints" / "last.safetensors", run / "recipe.yaml", model / "config.json"]}
    cases = [["export", str(run), "-f", "onnx", "-o", str(run / "checkpoints" / "last.safetensors")],
             ["export", str(run), "-f", "torchscript", "-o", str(run / "recipe.yaml")],
             ["export", str(run), "-f", "onnx", "-o", str(model / "config.json")],
             ["export", str(model), "-f", "folder", "-o", str(model)],
             ["export", str(run), "-f", "folder", "-o", str(run / "recipe.yaml")],
             ["export", str(run), "-f", "onnx", "-o", "/dev/null"],
             ["interpolate", str(run), "-o", str(run / "curves.png")],
             ["compare", str(run), "-o", str(run / "grids")]]
    for args in cases:
        res = runner.invoke(app, args + ["--force"], env={"COLUMNS": "200"})
        assert res.exit_code != 0 and "Traceback" not in res.output and res.output.startswith("error: "), (args, res.output)
    assert all(p.read_bytes() == b for p, b in kept.items()) and Path("/dev/null").is_char_device()
    # project: a photo in the output folder is an input, never replaced; face.png and face.jpg keep their own results
    photos = tmp_path / "photos"
    photos.mkdir()
    g = torch.Generator().manual_seed(0)
    for name in ("face.png", "face.jpg"):
        write_png(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g), photos / "tmp.png")
        from PIL import Image
        Image.open(photos / "tmp.png").save(photos / name)
    (photos / "tmp.png").unlink()
    before = (photos / "face.png").read_bytes()
    res = runner.invoke(app, ["project", str(run), str(photos / "face.png"), "--steps", "1", "-o", str(photos), "--force"])
    assert res.exit_code != 0 and "inputs" in res.output and (photos / "face.png").read_bytes() == before, res.output
    out = tmp_path / "proj"
    res = runner.invoke(app, ["project", str(run), str(photos / "face.png"), str(photos / "face.jpg"), "--steps", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {f"face-{s}{e}" for s in ("png", "jpg") for e in (".png", ".side.png", ".latent.safetensors")}


def test_two_commands_writing_into_one_folder_at_once_are_refused(finished_run, tmp_path):
    from ganzoo.rundir import writing_into

    target = tmp_path / "new"
    with writing_into(target):  # stands for another process writing there (an OS lock: released when it ends)
        import subprocess
        import sys
        for args in (["export", str(finished_run), "-f", "folder", "-o", str(target)],
                     ["sample", str(finished_run), "-n", "2", "-o", str(target)]):
            res = subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, timeout=120)
            assert res.returncode != 0 and "is being written by another ganzoo command" in res.stderr, res.stderr
    assert not any(target.iterdir())


def test_nothing_exported_carries_a_local_path(finished_run, tmp_path):
    """Every byte of every exported file, and of every member of the TorchScript and torch.export archives, is read for the paths of
    this machine: the run's folder, the ganzoo and torch installs, the home folder."""
    import zipfile

    run = copy_run(finished_run, tmp_path / "some-user-folder" / "run")
    out = tmp_path / "out"
    files = [export(run, "onnx", out / "g.onnx").path, export(run, "torchscript", out / "g.pt").path,
             export(run, "pt2", out / "g.pt2").path]
    files += sorted(export(run, "folder", out / "model").path.iterdir())
    local = {str(tmp_path), str(Path(ganzoo.__file__).resolve().parents[1]), str(Path(torch.__file__).resolve().parents[1]),
             str(Path.home())}
    for f in files:
        blobs = [f.read_bytes()]
        if zipfile.is_zipfile(f):
            with zipfile.ZipFile(f) as z:
                blobs += [z.read(i) for i in z.infolist()]
        for blob in blobs:
            for path in local:
                assert path.encode() not in blob, (f.name, path)
    assert torch.equal(torch.jit.load(str(out / "g.pt"))(torch.zeros(2, 8)), torch.jit.load(str(out / "g.pt"))(torch.zeros(2, 8)))


def test_second_probe_cases_writing_and_model_folder_edits(finished_run, tmp_path, monkeypatch):
    """Cases a second reader found: each now refused in one line, nothing written where it must not be."""
    import ganzoo.export as exporting

    run = copy_run(finished_run, tmp_path / "run")
    model = export(run, "folder", tmp_path / "m1").path
    before = sorted(p.name for p in (run / "samples").iterdir())
    refused = [["sample", str(run), "-n", "2", "-o", str(run / "samples"), "--force"],
               ["sample", str(run), "-n", "2", "-o", str(run / "checkpoints")],
               ["sample", str(model), "-n", "2", "-o", str(model / "samples")],
               ["export", str(run), "-f", "torchscript", "-o", str(tmp_path / "b.onnx")],
               ["export", str(run), "-f", "onnx", "-o", str(tmp_path / "b.pt")],
               ["export", str(run), "-f", "onnx", "--name", "foo", "-o", str(tmp_path / "c.onnx")],
               ["export", str(run), "-f", "folder", "--name", "../evil", "-o", str(tmp_path / "e")],
               ["export", str(run), "-f", "folder", "--name", "a\nb", "-o", str(tmp_path / "f")],
               ["compare", str(run), "-o", str(tmp_path / "c.txt")]]
    for args in refused:
        res = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert res.exit_code != 0 and res.output.startswith("error: "), (args, res.output)
        assert "|" not in res.output.split("\n")[0][:3]  # compare: refused before its table
    assert sorted(p.name for p in (run / "samples").iterdir()) == before
    assert not (run / "checkpoints" / "grid.png").exists() and not (model / "samples").exists()
    assert not any((tmp_path / n).exists() for n in ("b.onnx", "b.pt", "c.onnx", "e", "f", "c.txt"))
    # a hand-edited config or recipe.yaml is refused, never sampled from or carried into a new card
    for edit, said in ((lambda c: c.update(output_range=[0, 1]), "output_range"), (lambda c: c.update(step=-7), "step is -7"),
                       (lambda c: c.update(name="a b"), "not a model name")):
        folder = tmp_path / f"edit{len(said)}"
        shutil.copytree(model, folder)
        config = json.loads((folder / "config.json").read_text())
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))
        with pytest.raises(GanzooError, match=said):
            ganzoo.load_generator(folder)
    shutil.copytree(model, tmp_path / "r")
    (tmp_path / "r" / "recipe.yaml").write_text((tmp_path / "r" / "recipe.yaml").read_text().replace("base_channels: 8", "base_channels: 16"))
    with pytest.raises(GanzooError, match="recipe.yaml is not the recipe in config.json"):
        ganzoo.load_generator(tmp_path / "r")
    # two exports of one file: the one without --force never replaces a file that appeared while it ran
    target = tmp_path / "race.onnx"
    real_onnx = exporting._onnx

    def another_writer_meanwhile(*args, **kwargs):
        real_onnx(*args, **kwargs)
        target.write_bytes(b"the other command's file")

    monkeypatch.setattr(exporting, "_onnx", another_writer_meanwhile)
    with pytest.raises(GanzooError, match="was written by another command while this export ran"):
        export(run, "onnx", target)
    assert target.read_bytes() == b"the other command's file" and not list(tmp_path.glob(".race.onnx*"))


def test_a_name_that_is_no_installed_model_says_what_is_installed(tmp_path, monkeypatch):
    import ganzoo.trained

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ganzoo.trained, "shipped_models", lambda: {})
    with pytest.raises(GanzooError, match="this copy of ganzoo has no trained model installed"):
        ganzoo.load_generator("anime-faces")
