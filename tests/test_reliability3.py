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
