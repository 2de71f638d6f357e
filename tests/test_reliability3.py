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

from conftest import TINY, captured_log

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


def _faces(folder, n=6, size=8):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 30 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def _images(**params):
    comp = ganzoo.get_registry().get("dataset", "images")
    return comp.create(comp.cls.Params(**params))


def test_numbers_a_backend_cannot_hold_are_refused_naming_the_key(tmp_path, tiny):
    import yaml

    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny))
    for override, words in (("optim.generator.lr=1e39", "beyond what float32 holds"), ("optim.critic.lr=.inf", "finite"),
                            ("optim.generator.lr=.nan", "finite"), ("seed=99999999999999999999999", "seed"),
                            ("train.steps=100000000000000000000", "train.steps")):
        with pytest.raises(GanzooError, match=words):
            load_recipe(tmp_path / "r.yaml", [override])
    with pytest.raises(GanzooError, match="generator.lr.*float32"):
        load_recipe(tmp_path / "r.yaml", ["optim.generator.lr=3.5e38"])
    assert load_recipe(tmp_path / "r.yaml", ["optim.generator.lr=3e38"]).optim.generator.lr == 3e38


def test_a_labels_file_outside_the_folder_is_part_of_the_cache_key(tmp_path):
    from ganzoo.data import load_data
    from ganzoo.recipe import load_data_section

    _faces(tmp_path / "faces" / "a", 3)
    _faces(tmp_path / "faces" / "b", 3)
    csv = tmp_path / "labels.csv"
    csv.write_text("file,hair\n" + "".join(f"{d}/{i}.png,red\n" for d in "ab" for i in range(3)))
    section = load_data_section({"name": "images", "path": str(tmp_path / "faces"), "labels_file": "../labels.csv",
                                 "resolution": 8})
    assert set(load_data(section).columns["hair"]) == {"red"}
    csv.write_text("file,hair\n" + "".join(f"{d}/{i}.png,blue\n" for d in "ab" for i in range(3)))
    assert set(load_data(section).columns["hair"]) == {"blue"}  # not the cached red


def test_a_semicolon_or_tab_separated_labels_file_is_read(tmp_path):
    _faces(tmp_path / "faces", 4)
    for sep in (";", "\t"):
        (tmp_path / "faces" / "tags.csv").write_text(f"file{sep}hair{sep}eyes\n" + "".join(
            f"{i}.png{sep}{'red' if i % 2 else 'blue'}{sep}green\n" for i in range(4)))
        from ganzoo.interfaces import DataReport

        _, columns = _images(path=str(tmp_path / "faces"), labels_file="tags.csv").load(8, 3, DataReport())
        assert columns["hair"] == ["blue", "red", "blue", "red"] and set(columns["eyes"]) == {"green"}


def test_a_zip_member_with_a_bad_crc_is_skipped_and_named(tmp_path):
    import io
    import zipfile

    from ganzoo.interfaces import DataReport

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(4):
            png = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(png, "PNG")
            zf.writestr(f"faces/{i}.png", png.getvalue())
    data = bytearray(buf.getvalue())
    at = data.find(b"IDAT", data.find(b"faces/2.png")) + 6  # a byte inside the third member's image data
    data[at] ^= 0xFF
    (tmp_path / "faces.zip").write_bytes(bytes(data))
    report = DataReport()
    images, _ = _images(path=str(tmp_path / "faces.zip")).load(8, 3, report)
    assert len(images) == 3 and report.skipped["unreadable or corrupt"] == 1
    assert "faces/2.png" in report.bad_files[0] and "CRC" in report.bad_files[0]


def test_names_that_are_not_utf8_are_named_and_skipped(tmp_path):
    import os

    from ganzoo.data import load_data
    from ganzoo.recipe import load_data_section

    _faces(tmp_path / "faces", 3)
    root = os.fsencode(tmp_path / "faces")
    os.mkdir(root + b"/caf\xe9")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.fsdecode(root + b"/caf\xe9/0.png"))
    (open(root + b"/note\xff.txt", "wb")).close()
    with captured_log() as messages:
        data = load_data(load_data_section({"name": "images", "path": str(tmp_path / "faces"), "resolution": 8}))
    assert len(data.images) == 3 and data.report.skipped["name not UTF-8"] == 2
    warning = next(m for m in messages if "not UTF-8" in m)
    assert "caf\\xe9" in warning and "note\\xff.txt" in warning


def test_an_mnist_label_byte_out_of_range_names_the_file_and_leaves_the_image_unlabelled(tmp_path):
    import struct

    from ganzoo.data import load_data
    from ganzoo.recipe import load_data_section

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, 4, 28, 28) + bytes(4 * 784))
    (raw / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, 4) + bytes([1, 200, 3, 4]))
    with captured_log() as messages:
        data = load_data(load_data_section({"name": "mnist", "root": str(tmp_path), "resolution": 28, "channels": 1}))
    assert len(data.images) == 4 and data.columns["digit"] == ["1", None, "3", "4"]
    assert any("train-labels-idx1-ubyte" in m and "200" in m for m in messages)
    cond = load_data(load_data_section({"name": "mnist", "root": str(tmp_path), "resolution": 28, "channels": 1,
                                        "labels": ["digit"]}))
    assert len(cond.images) == 3  # the image without a class is left out of a conditional run


# -- runs, checkpoints and evaluation ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny finished run (toyfaces 16 px), shared by the tests that only read it or copy it."""
    r = copy.deepcopy(TINY)
    base = tmp_path_factory.mktemp("trained")
    r["output"].update(dir=str(base / "runs"), samples=4)
    return ganzoo.train(load_recipe(r), base / "run", progress=False).run_dir


def _copy_run(run, to):
    import shutil

    shutil.copytree(run, to)
    return to


def _tiny_weights(tmp_path):
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 9, stride=30)
            self.fc = torch.nn.Linear(4, 2048)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    torch.jit.script(Net().eval()).save(str(tmp_path / "tiny.pt"))
    return str(tmp_path / "tiny.pt")


def test_non_finite_weights_are_refused_for_sampling_and_evaluation(trained, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from ganzoo.checkpoint import load_checkpoint

    run = _copy_run(trained, tmp_path / "run")
    path = run / "checkpoints" / "last.safetensors"
    ckpt = load_checkpoint(path)
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.startswith("generator.") and tensors[k].is_floating_point())
    tensors[key][..., 0] = float("nan")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    save_file(tensors, str(path), metadata=meta)
    assert ckpt.meta["step"] == load_checkpoint(path).meta["step"]
    for args in (["sample", str(run), "-n", "4", "-o", str(tmp_path / "s"), "--no-ema"],
                 ["eval", str(run), "-n", "4", "--no-ema", "--no-prc", "--weights", _tiny_weights(tmp_path)]):
        res = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert res.exit_code == 2 and "NaN or infinite" in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
    with pytest.raises(GanzooError, match="NaN or infinite"):
        ganzoo.load_generator(path, ema=False)
    torch.manual_seed(0)


def test_per_class_scores_of_an_unconditional_run_are_an_error_before_any_work(trained):
    res = runner.invoke(app, ["eval", str(trained), "-n", "4", "--per-class", "hair"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "not a conditional model" in res.output, res.output


def test_an_evaluation_never_files_its_scores_under_a_run_that_replaced_the_one_it_scored(trained, tmp_path, monkeypatch):
    import json
    import shutil

    from ganzoo import evaluation

    run = _copy_run(trained, tmp_path / "run")
    other = ganzoo.train(load_recipe({**copy.deepcopy(TINY), "seed": 7, "output": {"dir": str(tmp_path), "samples": 0}}),
                         tmp_path / "other", progress=False).run_dir
    real = evaluation.evaluate_images

    def replace_meanwhile(*args, **kwargs):  # `ganzoo run --force` replaces the folder while the scores are computed
        out = real(*args, **kwargs)
        shutil.copy(other / "checkpoints" / "last.safetensors", run / "checkpoints" / "last.safetensors")
        return out

    monkeypatch.setattr(evaluation, "evaluate_images", replace_meanwhile)
    weights = _tiny_weights(tmp_path)
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(GanzooError, match="changed while it was being scored.*not written"):
        evaluation.evaluate(run, n=4, n_real=8, prc=False, weights=weights)
    assert not (run / "evals").exists() and not (run / "metrics.json").exists()
    assert (run / "metrics.jsonl").read_text() == before
    monkeypatch.setattr(evaluation, "evaluate_images", real)
    result = evaluation.evaluate(run, n=4, n_real=8, prc=False, weights=weights)
    kept = json.loads((run / "metrics.json").read_text())
    from ganzoo.fileio import file_sha256

    assert kept["protocol"]["evaluated"]["checkpoint_sha256"] == file_sha256(run / "checkpoints" / "last.safetensors")
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["checkpoint_sha256"] == \
        result["protocol"]["evaluated"]["checkpoint_sha256"]


def test_an_evaluation_of_a_read_only_run_says_so_first_and_still_prints_its_scores(trained, tmp_path):
    import os
    import stat

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: the check is os.access, which root passes")
    run = _copy_run(trained, tmp_path / "run")
    os.chmod(run, stat.S_IRUSR | stat.S_IXUSR)
    try:
        res = runner.invoke(app, ["eval", str(run), "-n", "4", "--n-real", "8", "--no-prc", "--weights", _tiny_weights(tmp_path)],
                            env={"COLUMNS": "200"})
    finally:
        os.chmod(run, stat.S_IRWXU)
    assert res.exit_code == 0 and "read-only" in res.output and "FID" in res.output, res.output


def test_the_read_only_check_is_made_before_any_work(trained, tmp_path, monkeypatch):
    import os

    from ganzoo import evaluation

    run = _copy_run(trained, tmp_path / "run")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).startswith(str(run)) else real_access(p, mode, **kw))
    calls = []
    monkeypatch.setattr(evaluation, "evaluate_images", lambda *a, **k: calls.append(1) or {"fid": 1.0, "kid_mean": 0.1,
                                                                                            "kid_std": None, "protocol": {}})
    with captured_log() as messages:
        evaluation.evaluate(run, n=4, n_real=8, prc=False)
    assert any("read-only" in m for m in messages) and calls and not (run / "metrics.json").exists()


def test_resume_takes_a_checkpoint_file_of_the_run(tmp_path, tiny):
    tiny["train"].update(steps=4, keep_every=2)
    tiny["output"]["samples"] = 0
    run = ganzoo.train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    res = runner.invoke(app, ["resume", str(run / "checkpoints" / "step_0000002.safetensors"), "--set", "train.steps=6", "-q"],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert ganzoo.load_checkpoint(run).meta["step"] == 6
    res = runner.invoke(app, ["resume", str(tmp_path / "elsewhere.safetensors")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "not in a run folder" in res.output


def test_a_checkpoint_copied_in_from_another_run_is_named_as_such(tmp_path, tiny):
    import shutil

    tiny["train"].update(steps=4, keep_every=2)
    tiny["output"]["samples"] = 0
    run = ganzoo.train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    other = copy.deepcopy(tiny)
    other["seed"], other["train"]["steps"] = 5, 2
    other_run = ganzoo.train(load_recipe(other), tmp_path / "other", progress=False).run_dir
    shutil.copy(other_run / "checkpoints" / "last.safetensors", run / "checkpoints" / "last.safetensors")
    res = runner.invoke(app, ["resume", str(run), "--set", "train.steps=8"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "belongs to another run" in res.output and "undo" not in res.output, res.output


def test_wgan_gp_with_a_listed_gradient_penalty_applies_one_penalty_with_the_recipes_weight(tiny):
    from ganzoo.models import build_regularizers

    tiny["objective"] = {"name": "wgan_gp"}
    tiny["regularizers"] = [{"name": "gradient_penalty", "weight": 5}]
    with captured_log() as messages:
        regs = build_regularizers(load_recipe(tiny))
    penalties = [r for r in regs if r.name == "gradient_penalty"]
    assert len(penalties) == 1 and penalties[0].params.weight == 5
    assert any("gradient_penalty" in m and "wgan_gp" in m for m in messages)


# -- interruption ------------------------------------------------------------------------------------------------------
def test_ctrl_c_while_sampling_leaves_only_whole_images_and_says_how_many(trained, tmp_path, monkeypatch):
    from ganzoo import sampling

    real, calls = sampling._pil, []

    def interrupted_at_the_fifth(img):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(img)

    monkeypatch.setattr(sampling, "_pil", interrupted_at_the_fifth)
    res = runner.invoke(app, ["sample", str(trained), "-n", "12", "-o", str(tmp_path / "s")], env={"COLUMNS": "200"})
    assert res.exit_code == 130 and "4 of 12 images were written" in res.output, res.output
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == [f"{i:05d}.png" for i in range(4)]  # no temporary, no torn file
    from PIL import Image as I

    for f in files:
        I.open(tmp_path / "s" / f).load()


def test_ctrl_c_while_a_run_writes_its_final_samples_stops_at_once_and_resume_finishes_them(tmp_path, tiny, monkeypatch):
    import json
    import os
    import signal

    from ganzoo import sampling

    tiny["output"]["samples"] = 6
    real = sampling.generate_distinct

    def ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the handler raises at the next bytecode: well before 6 images are drawn
        return real(*args, **kwargs)

    monkeypatch.setattr(sampling, "generate_distinct", ctrl_c)
    res = runner.invoke(app, ["run", _write(tmp_path, tiny), "--run-dir", str(tmp_path / "run"), "-q"], env={"COLUMNS": "200"})
    assert res.exit_code == 130 and "final outputs" in res.output and f"ganzoo resume {tmp_path / 'run'}" in res.output, res.output
    assert not (tmp_path / "run" / "run.json").exists()
    monkeypatch.setattr(sampling, "generate_distinct", real)
    res = runner.invoke(app, ["resume", str(tmp_path / "run"), "-q"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "run" / "samples").glob("0*.png"))) == 6
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["steps"] == 3 and summary["images_per_second"] > 0
    res = runner.invoke(app, ["resume", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "nothing to resume" in res.output  # finished now


def _write(tmp_path, recipe) -> str:
    import yaml

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


# -- the command line and its environment --------------------------------------------------------------------------------
def _cli(args, cwd=None, **env):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=120)


def test_a_width_no_output_fits_still_prints_everything(tmp_path, monkeypatch):
    from ganzoo.cli.common import sane_columns as _sane_columns

    for given, read in (("0", "80"), ("abc", "80"), ("-5", "80"), ("5", "40"), ("39", "40"), ("40", "40"), ("200", "200")):
        monkeypatch.setenv("COLUMNS", given)
        _sane_columns()
        assert __import__("os").environ["COLUMNS"] == read, given
    listed = _cli(["list"], COLUMNS="0")  # the consoles read COLUMNS when the command starts: a real process
    assert listed.returncode == 0 and "generators" in listed.stdout and "wgan_gp" in listed.stdout, listed
    error = _cli(["check", str(tmp_path / "nosuch.yaml")], COLUMNS="0")
    assert error.returncode == 2 and "error:" in error.stderr and "nosuch.yaml" in error.stderr, error


def test_a_deleted_current_folder_is_named_before_torch_loads(tmp_path):
    import os
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    script = (f"import os, runpy, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); sys.argv = ['ganzoo', 'list']; "
              "runpy.run_module('ganzoo', run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert res.returncode == 2 and "current folder no longer exists" in res.stderr and "MKL" not in res.stderr, res
    assert res.stderr.count("\n") == 1


def test_check_refuses_what_run_would_refuse_after_decoding(tmp_path, tiny, monkeypatch):
    import importlib.util

    import yaml

    _faces(tmp_path / "faces", 3)
    (tmp_path / "faces" / "tags.csv").write_text("file,hair\n0.png,red\n1.png,blue\n7.png,red\n")
    tiny["data"] = {"name": "images", "path": str(tmp_path / "faces"), "labels_file": "tags.csv", "resolution": 16}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny))
    for command in ("check", "run"):
        res = runner.invoke(app, [command, str(tmp_path / "r.yaml")], env={"COLUMNS": "200"})
        assert res.exit_code == 2 and "7.png" in res.output and "not images" in res.output, res.output
    tiny["data"] = copy.deepcopy(TINY["data"])
    tiny["callbacks"] = [{"name": "mlflow"}]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    res = runner.invoke(app, ["check", str(tmp_path / "r.yaml")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "pip install" in res.output and "mlflow" in res.output, res.output


def test_a_component_named_in_the_wrong_section_is_told_where_it_goes(tmp_path, tiny):
    import yaml

    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny))
    with pytest.raises(GanzooError, match=r"'diffaugment' is a regularizer \(listed under regularizers:\), not a callback"):
        load_recipe(tmp_path / "r.yaml", ["callbacks=[{name: diffaugment}]"])
    with pytest.raises(GanzooError, match=r"'r1' is a regularizer .*not an objective"):
        load_recipe(tmp_path / "r.yaml", ["objective.name=r1"])
    with pytest.raises(GanzooError, match=r"regularizers.0: give a mapping such as \{name: r1\}"):
        load_recipe(tmp_path / "r.yaml", ["regularizers=[r1]"])


# -- found by a second reader's probe ------------------------------------------------------------------------------------
def test_export_force_never_deletes_what_an_export_did_not_write(trained, tmp_path):
    import os

    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    run = _copy_run(trained, tmp_path / "run")
    for target in (user, run, tmp_path):
        res = runner.invoke(app, ["export", str(run), "-f", "folder", "-o", str(target), "--force"], env={"COLUMNS": "200"})
        assert res.exit_code == 2 and "nothing was deleted" in res.output, res.output
    assert (user / "notes.txt").read_text() == "precious" and (run / "checkpoints" / "last.safetensors").is_file()
    here = os.getcwd()
    try:
        os.chdir(user)
        res = runner.invoke(app, ["export", str(run), "-f", "folder", "-o", ".", "--force"], env={"COLUMNS": "200"})
    finally:
        os.chdir(here)
    assert res.exit_code == 2 and (user / "notes.txt").is_file()
    model = tmp_path / "model"
    for _ in range(2):  # a model folder an export wrote is replaced with --force
        res = runner.invoke(app, ["export", str(run), "-f", "folder", "-o", str(model), "--force"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["export", str(run), "-f", "onnx", "-o", str(user), "--force"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "is a folder: give a file name" in res.output and ".tmp" not in res.output, res.output


def test_outputs_that_are_folders_or_runs_are_named_plainly(trained, tmp_path):
    (tmp_path / "w.gif").mkdir()
    res = runner.invoke(app, ["interpolate", str(trained), "-o", str(tmp_path / "w.gif"), "--force"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "is a folder; give a file name" in res.output and ".tmp" not in res.output, res.output
    run = _copy_run(trained, tmp_path / "run")
    res = runner.invoke(app, ["sample", str(run), "-n", "2", "-o", str(run)], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "is a run folder" in res.output and not (run / "00000.png").exists(), res.output
    res = runner.invoke(app, ["run", str(run / "recipe.yaml"), "--run-dir", str(run / "checkpoints" / "nested")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "inside the run folder" in res.output and not (run / "checkpoints" / "nested").exists()
    res = runner.invoke(app, ["check", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "is a folder, not a recipe file" in res.output
    res = runner.invoke(app, ["eval", str(run / "samples" / "grid.png"), "-n", "4"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "single file" in res.output and "--ref" not in res.output, res.output


def test_an_empty_reference_is_named_as_the_reference_before_any_image_is_generated(trained, tmp_path, monkeypatch):
    from ganzoo import evaluation, sampling

    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(sampling, "generate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("generated first")))
    with pytest.raises(GanzooError, match=r"reference images \(--ref\).*no readable images"):
        evaluation.evaluate(trained, ref=tmp_path / "empty", n=4)
    with pytest.raises(GanzooError, match="reference images .*no such folder"):
        evaluation.evaluate(trained, ref=tmp_path / "nowhere", n=4)


def test_the_copy_check_gives_one_verdict_whatever_n_and_names_other_data(trained, tmp_path):
    from ganzoo.nearest import nearest

    run = _copy_run(trained, tmp_path / "run")
    small = nearest(run, n=2, grid=tmp_path / "a.png", report=False)
    large = nearest(run, n=16, grid=tmp_path / "b.png", report=False)
    assert small.threshold == large.threshold and small.n_train_sampled == large.n_train_sampled == 64
    assert small.copies == large.copies and "rough estimate" in small.verdict
    other = _faces(tmp_path / "other", 8, 16)
    elsewhere = nearest(run, n=4, data=other, grid=tmp_path / "c.png", report=False)
    assert elsewhere.verdict.startswith(f"against {other}") and "not the recipe's data" in elsewhere.verdict


def test_a_checkpoint_with_non_finite_weights_is_not_resumed(trained, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    run = _copy_run(trained, tmp_path / "run")
    path = run / "checkpoints" / "last.safetensors"
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.startswith("critic.") and tensors[k].is_floating_point())
    tensors[key].fill_(float("inf"))
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    save_file(tensors, str(path), metadata=meta)
    res = runner.invoke(app, ["resume", str(run), "--set", "train.steps=6", "-q"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "critic's weights hold" in res.output and "cannot be resumed" in res.output, res.output
    assert "diverged" not in res.output and not (run / "grids" / "step_0000004.png").exists()


def test_a_run_stopped_before_its_first_checkpoint_gets_advice_that_works(tmp_path, tiny):
    import shutil

    tiny["output"]["samples"] = 0
    run = ganzoo.train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    shutil.rmtree(run / "checkpoints")  # as a double Ctrl-C before the first checkpoint leaves it
    res = runner.invoke(app, ["resume", str(run)], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "before its first checkpoint" in res.output and "--force" in res.output, res.output
    res = runner.invoke(app, ["run", str(run / "recipe.yaml"), "--run-dir", str(run)], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "before its first checkpoint" in res.output and "--force" in res.output, res.output
    res = runner.invoke(app, ["run", str(run / "recipe.yaml"), "--run-dir", str(run), "--force", "-q"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and (run / "checkpoints" / "last.safetensors").is_file(), res.output


def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.6)  # torch is loading
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the command finished before the signal arrived")
    assert proc.returncode == 130 and "Traceback" not in stderr and stderr.strip().count("\n") <= 1, stderr
    assert "aborted" in stderr


def test_metrics_lines_that_are_not_json_are_named_and_a_torn_last_line_is_not(tmp_path, capsys):
    from ganzoo.rundir import read_lines as _read_lines

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\ngarbage\n[1, 2]\n{"step": 2}\n{"step": 3, "lo')  # a killed run's torn last line
    assert [line["step"] for line in _read_lines(path)] == [1, 2]
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "skipped 2 line(s)" in err and "(line 2, 3)" in err
    path.write_text('{"step": 1}\n{"step": 2, "lo')
    assert [line["step"] for line in _read_lines(path)] == [1]
    assert capsys.readouterr().err == ""
