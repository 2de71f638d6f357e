import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import GanzooError, load_recipe, train

from ganzoo.labels import _natural

from conftest import ANIME_ZIP, MNIST_ROOT, captured_log, needs_anime, needs_mnist, write_faces

ROOT = Path(__file__).resolve().parents[1]


def png_bytes(mode="RGB", size=(20, 20), color=(200, 30, 30), fmt="PNG"):
    buf = io.BytesIO()
    img = Image.new("RGB", size, color)
    if mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE)
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(buf, format=fmt)
    return buf.getvalue()


def section(**data):
    r = {"name": "t", "data": data, "generator": {"name": "dcgan"}, "critic": {"name": "dcgan"},
         "objective": {"name": "bce"}, "train": {"steps": 1}}
    return load_recipe(r).data


def load(path, resolution=16, channels=3, cache=False):
    s = section(name="images", path=str(path), resolution=resolution, channels=channels, cache=cache)
    with captured_log() as messages:
        data, report = ganzoo.load_dataset(s)
    return data, " | ".join(messages)


def test_folder_recursive_mixed_modes_and_formats(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "one.PNG").write_bytes(png_bytes("RGB"))
    (tmp_path / "a" / "two.jpg").write_bytes(png_bytes("RGB", fmt="JPEG"))
    (tmp_path / "a" / "b" / "three.bmp").write_bytes(png_bytes("L", fmt="BMP"))
    (tmp_path / "a" / "four.png").write_bytes(png_bytes("RGBA"))
    (tmp_path / "a" / "five.png").write_bytes(png_bytes("P"))
    (tmp_path / "notes.txt").write_text("not an image")
    data, log = load(tmp_path)
    assert data.shape == (5, 3, 16, 16) and data.dtype == torch.uint8
    assert "ignored 1 non-image file" in log
    gray, _ = load(tmp_path, channels=1)
    assert gray.shape == (5, 1, 16, 16)


def test_resize_center_crops_and_counts_upscaled(tmp_path):
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 20:60] = 255  # white centre square of a wide image
    Image.fromarray(img).save(tmp_path / "wide.png")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "small.png")
    data, log = load(tmp_path, resolution=16)
    wide = data[1].float()
    assert wide.mean() > 240  # the centre crop of the wide image is the white square
    assert "1 image(s) smaller than the target resolution were upscaled" in log


def test_corrupt_and_fake_images_are_skipped_counted_and_named(tmp_path):
    (tmp_path / "good.png").write_bytes(png_bytes())
    (tmp_path / "truncated.png").write_bytes(png_bytes()[:40])
    (tmp_path / "fake.jpg").write_text("this is text with an image extension")
    data, log = load(tmp_path)
    assert len(data) == 1
    assert "skipped 2 unreadable image(s)" in log and "truncated.png" in log and "fake.jpg" in log


def test_zip_is_read_in_memory_and_never_extracted(tmp_path):
    z = tmp_path / "faces.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../escape.png", png_bytes())
        zf.writestr("inner/ok.jpeg", png_bytes(fmt="JPEG"))
        zf.writestr("readme.md", "hello")
    data, log = load(z)
    assert len(data) == 2 and "ignored 1 non-image file(s)" in log and "(1 .md;" in log
    assert not (tmp_path.parent / "escape.png").exists() and not (Path.cwd() / "escape.png").exists()


def test_files_left_out_for_their_extension_are_counted_by_extension(tmp_path):
    (tmp_path / "good.png").write_bytes(png_bytes())
    (tmp_path / "moving.gif").write_bytes(png_bytes(fmt="GIF"))
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.TXT").write_text("x")
    (tmp_path / "LICENSE").write_text("x")
    data, log = load(tmp_path)
    assert len(data) == 1
    assert "ignored 4 non-image file(s)" in log and "(1 .gif, 2 .txt, 1 no extension; images are .bmp .jpeg .jpg" in log


@pytest.mark.parametrize("case", ["missing", "empty_folder", "zip_without_images", "not_a_zip"])
def test_unusable_paths_are_one_clear_error(tmp_path, case):
    path = tmp_path / case
    if case == "empty_folder":
        path.mkdir()
    elif case == "zip_without_images":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("a.txt", "x")
    elif case == "not_a_zip":
        path.write_text("hello")
    expected = {
        "missing": "does not exist",
        "empty_folder": "no readable images",
        "zip_without_images": "no readable images",
        "not_a_zip": "neither a folder nor a readable zip",
    }[case]
    with pytest.raises(GanzooError, match=expected):
        load(path)


def test_a_missing_data_folder_never_trains_on_anything_else(tiny, tmp_path):
    tiny["data"] = {"name": "images", "path": str(tmp_path / "nowhere"), "resolution": 16}
    with pytest.raises(GanzooError, match="nowhere does not exist"):
        train(load_recipe(tiny), progress=False)
    assert not list((Path(tiny["output"]["dir"]) / "tiny").glob("checkpoints/*"))


def test_mnist_missing_root_says_where_to_put_the_files(tmp_path):
    with pytest.raises(GanzooError, match=r"MNIST not found: put train-images-idx3-ubyte.gz .* in .* or .*/MNIST/raw, or set data.download: true"):
        ganzoo.load_dataset(section(name="mnist", root=str(tmp_path), resolution=28, channels=1))


def toyfaces(**kw):
    res, ch = kw.pop("resolution", 24), kw.pop("channels", 3)
    return ganzoo.load_dataset(section(name="toyfaces", resolution=res, channels=ch, **kw))[0]


def test_toyfaces_are_deterministic_varied_and_any_size():
    a, b, c = toyfaces(size=50, seed=3), toyfaces(size=50, seed=3), toyfaces(size=50, seed=4)
    assert a.shape == (50, 3, 24, 24) and torch.equal(a, b) and not torch.equal(a, c)
    flat = a.flatten(1).float()
    dists = torch.cdist(flat, flat) + torch.eye(50) * 1e9
    assert dists.min() > 100  # no two faces alike
    assert toyfaces(size=2, resolution=128, channels=1).shape == (2, 1, 128, 128)


def test_cache_hit_after_miss_and_rebuilt_when_source_changes_or_cache_is_corrupt(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 50, 0, 0)).save(src / f"{i}.png")
    (src / "bad.png").write_text("not a png")
    first, log = load(src, cache=True)
    assert "cached for next time" in log and "skipped 1 unreadable image(s)" in log
    second, log = load(src, cache=True)
    assert "from cache" in log and torch.equal(first, second)
    assert "skipped 1 unreadable image(s)" in log and "bad.png" in log  # the report is cached too
    Image.new("RGB", (20, 20)).save(src / "3.png")
    third, log = load(src, cache=True)
    assert "cached for next time" in log and len(third) == 4
    for npy in (Path(os.environ["GANZOO_CACHE_DIR"]) / "datasets").glob("images-16px-3ch-*.npy"):
        npy.write_bytes(b"garbage")
    fourth, log = load(src, cache=True)
    assert "unreadable data cache" in log and "rebuilding" in log and torch.equal(third, fourth)


def test_cache_is_keyed_by_content_a_fresh_copy_hits_and_a_changed_byte_misses(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 50, 0, 0)).save(src / f"{i}.png")
    first, log = load(src, cache=True)
    assert "cached for next time" in log
    shutil.move(src, tmp_path / "away")  # the data copied in again, as on a fresh machine: new mtimes, same bytes
    shutil.copytree(tmp_path / "away", src, copy_function=shutil.copyfile)
    for f in src.iterdir():
        os.utime(f, ns=(1, 1))
    _, log = load(src, cache=True)
    assert "from cache" in log
    Image.new("RGB", (20, 20), (0, 0, 99)).save(src / "2.png")  # same size, other pixels
    changed, log = load(src, cache=True)
    assert "cached for next time" in log and not torch.equal(first, changed)


def test_one_source_spelled_relative_absolute_or_through_a_link_is_one_cache_key(tmp_path, monkeypatch):
    from ganzoo.data import dataset_key

    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 50, 0, 0)).save(src / f"{i}.png")
    (tmp_path / "link").symlink_to(src)
    monkeypatch.chdir(tmp_path / "link")
    keys = {dataset_key(section(name="images", path=p, resolution=16, channels=3))
            for p in (str(src), "../imgs", ".", str(tmp_path / "link"), str(src) + "/")}
    assert len(keys) == 1
    _, log = load(src, cache=True)
    assert "cached for next time" in log
    _, log = load("../imgs", cache=True)
    assert "from cache" in log
    other = tmp_path / "other"
    shutil.copytree(src, other)
    Image.new("RGB", (20, 20), (0, 0, 99)).save(other / "2.png")  # another source: another key, however spelled
    assert dataset_key(section(name="images", path="../other", resolution=16, channels=3)) not in keys


def test_augment_draws_per_image_and_data_inspect_writes_a_grid(tmp_path):
    from typer.testing import CliRunner

    from ganzoo.cli import app
    from ganzoo.data import BatchStream, build_augment

    s = section(name="toyfaces", size=64, resolution=16, augment={"hflip": True})
    images, _ = ganzoo.load_dataset(s)
    plain = next(BatchStream(images, 32, 0, "cpu"))
    torch.manual_seed(0)
    aug = next(BatchStream(images, 32, 0, "cpu", augment=build_augment(s.augment)))
    flipped = [torch.equal(a, p.flip(-1)) for a, p in zip(aug, plain)]
    unchanged = [torch.equal(a, p) for a, p in zip(aug, plain)]
    assert all(f or u for f, u in zip(flipped, unchanged))  # each image flipped or not, nothing else
    assert 5 < sum(flipped) < 27  # drawn per image: some flipped, some not
    s = section(name="toyfaces", size=64, resolution=16, augment={"brightness": 0.5})
    torch.manual_seed(0)
    bright = next(BatchStream(images, 32, 0, "cpu", augment=build_augment(s.augment)))
    ratios = (bright + 1).mean((1, 2, 3)) / (plain + 1).mean((1, 2, 3))
    assert ratios.std() > 0.05  # brightness drawn per image
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\ndata: {name: toyfaces, size: 40, resolution: 16, augment: {hflip: true}}\n"
                      "generator: {name: dcgan}\ncritic: {name: dcgan}\nobjective: {name: bce}\ntrain: {steps: 1}\n")
    res = CliRunner().invoke(app, ["data", "inspect", str(recipe), "--grid", str(tmp_path / "g.png"), "-n", "16"])
    assert res.exit_code == 0, res.output
    assert "40 at 3x16x16" in res.output and (tmp_path / "g.png").is_file()


@needs_mnist
def test_real_mnist_loads_and_resizes():
    data, _ = ganzoo.load_dataset(section(name="mnist", root=str(MNIST_ROOT), split="test", resolution=32))
    assert data.shape == (10000, 3, 32, 32) and data.dtype == torch.uint8 and data.max() == 255


@needs_anime
def test_real_anime_zip_loads_from_cache_in_under_2s():
    import time

    s = section(name="images", path=str(ANIME_ZIP), resolution=64, cache=True)
    first, _ = ganzoo.load_dataset(s)
    assert first.shape == (22969, 3, 64, 64)
    t0 = time.perf_counter()
    again, _ = ganzoo.load_dataset(s)
    assert time.perf_counter() - t0 < 2.0
    assert torch.equal(again[::997], first[::997])


REAL = {
    "dcgan_anime.yaml": [f"data.path={ANIME_ZIP}"],
    "wgan_gp_anime.yaml": [f"data.path={ANIME_ZIP}"],
    "gan_mlp_mnist.yaml": [f"data.root={MNIST_ROOT}"],
    "dcgan_mnist.yaml": [f"data.root={MNIST_ROOT}"],
    "wgan_clip_mnist.yaml": [f"data.root={MNIST_ROOT}"],
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_shipped_recipe_runs_on_real_data(name, tmp_path):
    needs = ANIME_ZIP.is_file() if "anime" in name else (MNIST_ROOT / "MNIST" / "raw").is_dir()
    if not needs:
        pytest.skip(f"real data for {name} not found under {ANIME_ZIP.parent}")
    overrides = REAL[name] + ["train.epochs=null", "train.steps=2", "train.batch_size=16", "output.samples=4", f"output.dir={tmp_path}", "train.threads=1"]
    result = train(load_recipe(ROOT / "recipes" / name, overrides), progress=False)
    assert len(list((result.run_dir / "samples").glob("[0-9]*.png"))) == 4


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


def _images(**params):
    comp = ganzoo.get_registry().get("dataset", "images")
    return comp.create(comp.cls.Params(**params))


def test_a_labels_file_outside_the_folder_is_part_of_the_cache_key(tmp_path):
    from ganzoo.data import load_data
    from ganzoo.recipe import load_data_section

    write_faces(tmp_path / "faces" / "a", 3)
    write_faces(tmp_path / "faces" / "b", 3)
    csv = tmp_path / "labels.csv"
    csv.write_text("file,hair\n" + "".join(f"{d}/{i}.png,red\n" for d in "ab" for i in range(3)))
    section = load_data_section({"name": "images", "path": str(tmp_path / "faces"), "labels_file": "../labels.csv",
                                 "resolution": 8})
    assert set(load_data(section).columns["hair"]) == {"red"}
    csv.write_text("file,hair\n" + "".join(f"{d}/{i}.png,blue\n" for d in "ab" for i in range(3)))
    assert set(load_data(section).columns["hair"]) == {"blue"}  # not the cached red


def test_a_semicolon_or_tab_separated_labels_file_is_read(tmp_path):
    write_faces(tmp_path / "faces", 4)
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

    write_faces(tmp_path / "faces", 3)
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
