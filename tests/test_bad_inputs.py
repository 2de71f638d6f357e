"""Every bad input a user can give gets one clear line (exit 2), never a traceback.

Each case is (what, CLI arguments, expected message fragment); files are made per case.
"""

import copy
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file
from typer.testing import CliRunner

from conftest import TINY
from ganzoo.cli import app


def recipe(tmp, **changes):
    r = copy.deepcopy(TINY)
    r["output"]["dir"] = str(tmp / "runs")
    for dotted, value in changes.items():
        node, *path = dotted.split("__")
        target = r
        for key in [node, *path][:-1]:
            target = target.setdefault(key, {})
        if value is None:
            target.pop([node, *path][-1], None)
        else:
            target[[node, *path][-1]] = value
    p = tmp / "recipe.yaml"
    p.write_text(yaml.safe_dump(r))
    return str(p)


def text_file(tmp, name, content):
    p = tmp / name
    p.write_text(content)
    return str(p)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    res = CliRunner().invoke(app, ["run", recipe(tmp, output__samples=0), "--run-dir", str(tmp / "run"), "-q"])
    assert res.exit_code == 0, res.output
    return tmp / "run"


def empty_zip(tmp):
    p = tmp / "none.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("readme.txt", "no images here")
    return str(p)


CASES = {
    # recipes
    "missing recipe file": (lambda t, c: ["run", str(t / "nope.yaml")], "recipe file not found"),
    "invalid YAML": (lambda t, c: ["run", text_file(t, "r.yaml", "name: x\ntrain: {steps: 3\n")], "not valid YAML at line"),
    "YAML list, not mapping": (lambda t, c: ["run", text_file(t, "r.yaml", "- a\n")], "must be a YAML mapping"),
    "object-constructing YAML tag": (lambda t, c: ["check", text_file(t, "r.yaml", "name: !!python/object/apply:os.system [ls]\n")], "not valid YAML"),
    "unknown top-level key": (lambda t, c: ["run", recipe(t, sed=1)], "sed: unknown key (did you mean 'seed'?)"),
    "unknown section key": (lambda t, c: ["run", recipe(t, train__batchsize=4)], "train.batchsize: unknown key (did you mean 'batch_size'?)"),
    "unknown component param": (lambda t, c: ["run", recipe(t, critic__nrom="none")], "critic.nrom: unknown key (did you mean 'norm'?)"),
    "wrong type": (lambda t, c: ["run", recipe(t, train__steps="ten")], "train.steps: Input should be a valid integer"),
    "value out of range": (lambda t, c: ["run", recipe(t, data__resolution=4)], "data.resolution: Input should be greater than or equal to 8"),
    "bad enum value": (lambda t, c: ["run", recipe(t, data__channels=2)], "data.channels: Input should be 1 or 3"),
    "unknown objective": (lambda t, c: ["run", recipe(t, objective__name="wgan")], "unknown objective 'wgan'"),
    "unknown architecture": (lambda t, c: ["run", recipe(t, generator__name="dcgna")], "unknown generator 'dcgna' (did you mean 'dcgan'?)"),
    "steps and epochs": (lambda t, c: ["run", recipe(t, train__epochs=1)], "give train.steps or train.epochs, not both"),
    "no training length": (lambda t, c: ["run", recipe(t, train__steps=None)], "give train.steps or train.epochs"),
    "bad label range": (lambda t, c: ["run", recipe(t, objective={"name": "bce_smooth", "real_label": [1.0, 0.5]})], "[low, high] with low <= high"),
    "unbuildable resolution": (lambda t, c: ["run", recipe(t, data__resolution=20, generator={"name": "upsample_conv", "n_upsample": 3})], "cannot be built for 3x20x20"),
    "--set without =": (lambda t, c: ["run", recipe(t), "--set", "train.steps"], "expected KEY=VALUE"),
    "--set into a value": (lambda t, c: ["run", recipe(t), "--set", "seed.x=1"], "'seed' is not a section"),
    # data
    "missing data folder": (lambda t, c: ["run", recipe(t, data={"name": "images", "path": str(t / "nowhere"), "resolution": 16})], "does not exist"),
    "empty data folder": (lambda t, c: ["run", recipe(t, data={"name": "images", "path": str(t), "resolution": 16})], "no readable images"),
    "zip with no images": (lambda t, c: ["run", recipe(t, data={"name": "images", "path": empty_zip(t), "resolution": 16})], "no readable images"),
    "data file not a zip": (lambda t, c: ["run", recipe(t, data={"name": "images", "path": text_file(t, "x.zip", "hi"), "resolution": 16})], "neither a folder nor a readable zip"),
    "MNIST files missing": (lambda t, c: ["run", recipe(t, data={"name": "mnist", "root": str(t), "resolution": 28, "channels": 1})], "MNIST not found: put train-images-idx3-ubyte.gz"),
    "batch larger than data": (lambda t, c: ["run", recipe(t, train__batch_size=500)], "larger than the dataset"),
    # checkpoints
    "missing checkpoint": (lambda t, c: ["sample", str(t / "no.safetensors"), "-o", str(t / "o")], "checkpoint not found"),
    "truncated checkpoint": (lambda t, c: ["sample", truncated(t, c), "-o", str(t / "o")], "not a readable safetensors checkpoint"),
    "text file as checkpoint": (lambda t, c: ["sample", text_file(t, "c.safetensors", "hello"), "-o", str(t / "o")], "not a readable safetensors checkpoint"),
    "foreign safetensors": (lambda t, c: ["sample", foreign(t), "-o", str(t / "o")], "not a ganzoo checkpoint"),
    "folder without checkpoint": (lambda t, c: ["sample", str(t), "-o", str(t / "o")], "no checkpoints/last.safetensors"),
    "resume with another architecture": (lambda t, c: ["run", recipe(t, generator__base_channels=16, train__steps=6), "--resume", str(c)], "changes a resume cannot honour (generator.base_channels: 8 -> 16)"),
    "resume with another optimizer": (lambda t, c: ["run", recipe(t, optim={"critic": {"name": "rmsprop"}}, train__steps=6), "--resume", str(c)], "optimizer state does not match"),
    "resume a finished run": (lambda t, c: ["resume", str(c)], "nothing to resume"),
    "run folder in use": (lambda t, c: ["run", recipe(t), "--run-dir", str(c)], "exists and is not empty"),
    "--force on a folder that is not a run": (lambda t, c: ["run", recipe(t), "--run-dir", user_folder(t), "--force"], "does not look like a ganzoo run folder"),
    "--resume with --run-dir": (lambda t, c: ["run", recipe(t), "--resume", str(c), "--run-dir", str(t / "x")], "--resume continues RUN_DIR in place"),
    "unknown device": (lambda t, c: ["sample", str(c), "-o", str(t / "o"), "--device", "tpu"], "unknown device 'tpu'"),
    "output folder is a file": (lambda t, c: ["sample", str(c), "-n", "2", "-o", text_file(t, "f", "x")], "is a file, not a folder for samples"),
    # components
    "show unknown component": (lambda t, c: ["show", "wgan_pg"], "no component named 'wgan_pg' (did you mean 'wgan_gp'?)"),
}


def user_folder(tmp):
    d = tmp / "my-photos"
    d.mkdir()
    (d / "keep.jpg").write_text("precious")
    return str(d)


def truncated(tmp, ckpt_dir):
    p = tmp / "trunc.safetensors"
    p.write_bytes((ckpt_dir / "checkpoints" / "last.safetensors").read_bytes()[:5000])
    return str(p)


def foreign(tmp):
    p = tmp / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(p))
    return str(p)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_one_clear_line(case, tmp_path, trained):
    make_args, expected = CASES[case]
    res = CliRunner().invoke(app, make_args(tmp_path, trained), env={"COLUMNS": "400"})
    out = res.output
    assert res.exit_code == 2, (case, res.exit_code, out, res.exception)
    assert "Traceback" not in out and isinstance(res.exception, SystemExit)  # a clean exit, not an exception
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], (case, out)


def test_at_least_25_cases():
    assert len(CASES) >= 25


def test_force_never_deletes_a_folder_that_is_not_a_run(tmp_path):
    folder = user_folder(tmp_path)
    res = CliRunner().invoke(app, ["run", recipe(tmp_path), "--run-dir", folder, "--force"])
    assert res.exit_code == 2 and (Path(folder) / "keep.jpg").read_text() == "precious"


@pytest.mark.parametrize("args", [["sample", "x", "-n", "0", "-o", "o"], ["frobnicate"], ["run"]])
def test_bad_cli_arguments_are_usage_errors_not_tracebacks(args):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert isinstance(res.exception, SystemExit)


def test_recipe_text_classes(tmp_path):
    """Encodings, duplicate keys, alias bombs, recursion, deep nesting, tags: each one line, quickly."""
    import time

    from ganzoo import GanzooError, load_recipe

    good = yaml.safe_dump(dict(TINY)).encode()
    cases = {
        "latin-1 bytes": (b"name: caf\xe9\n" + good, "not UTF-8 text"),
        "utf-16 with BOM": ("\ufeff".encode("utf-16-le") + good.decode().encode("utf-16-le"), None),
        "NUL bytes": (b"\x00\x00" + good, "not a text file"),
        "duplicate key": (good + b"seed: 3\n", "duplicate key 'seed'"),
        "billion laughs": (b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                           b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                           b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                           "aliases expand to more than"),
        "recursive alias": (b"a: &a [*a]\n", "recursive structure"),
        "deep nesting": (b"[" * 3000, "nested too deeply"),
        "python tag": (b"name: !!python/object/apply:os.system [ls]\n", "not valid YAML"),
        "binary tag": (good.replace(b"seed: 1", b"seed: !!binary aGVsbG8="), "seed"),
        "bad date": (b"name: 2001-13-45\n", "cannot represent"),
        "merge key (valid: merged keys may be overridden)": (good.replace(b"train:", b"base: &t {batch_size: 4}\ntrain:\n  <<: *t", 1), "base: unknown key"),
    }
    for what, (data, fragment) in cases.items():
        path = tmp_path / "r.yaml"
        path.write_bytes(data)
        t0 = time.perf_counter()
        try:
            load_recipe(path, [f"output.dir={tmp_path}"])
            assert fragment is None, what
        except GanzooError as exc:
            assert fragment is not None and fragment in str(exc), (what, str(exc))
        assert time.perf_counter() - t0 < 2, what
