"""Reliability by class (docs/reliability.md): never overwrite or mix, sizes, image modes, advice that works,
`check` agrees with `run`, degrade don't die, resume with an edited recipe. Each class has several cases."""

import copy
import gzip
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

import ganzoo
from conftest import TINY, captured_log
from ganzoo import GanzooError
from ganzoo.cli import app
from ganzoo.rundir import RunLock


def recipe_file(tmp_path, name="r.yaml", **sections) -> Path:
    r = copy.deepcopy(TINY)
    r["output"].update(dir=str(tmp_path / "runs"), samples=4)
    for key, value in sections.items():
        r[key] = {**r[key], **value} if isinstance(r.get(key), dict) and isinstance(value, dict) else value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(r))
    return path


def cli(*args, columns=400):
    res = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns)})
    assert "Traceback" not in res.output
    return res


@pytest.fixture
def trained(tmp_path):
    run_dir = tmp_path / "run"
    assert cli("run", recipe_file(tmp_path), "--run-dir", run_dir, "-q").exit_code == 0
    return run_dir


# -- never overwrite, never mix --------------------------------------------------------------------------------
def test_sample_never_overwrites_and_force_leaves_no_stale_files(trained, tmp_path):
    out = tmp_path / "faces"
    assert cli("sample", trained, "-n", 6, "-o", out).exit_code == 0
    before = (out / "00000.png").read_bytes()
    res = cli("sample", trained, "-n", 3, "-o", out, "--seed", 5)
    assert res.exit_code == 2 and "already holds 7 sample file(s)" in res.output and "--force" in res.output
    assert (out / "00000.png").read_bytes() == before
    (out / "notes.txt").write_text("mine")
    assert cli("sample", trained, "-n", 3, "-o", out, "--seed", 5, "--force").exit_code == 0  # the advice works
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "00002.png", "grid.png", "notes.txt"]


def test_interpolate_refuses_unknown_formats_and_existing_files(trained, tmp_path):
    for name in ("walk.mp4", "walk"):
        res = cli("interpolate", trained, "-o", tmp_path / name)
        assert res.exit_code == 2 and "written as .png" in res.output and not (tmp_path / name).exists()
    assert cli("interpolate", trained, "-o", tmp_path / "w.gif", "--points", 2, "--steps", 2).exit_code == 0
    res = cli("interpolate", trained, "-o", tmp_path / "w.gif")
    assert res.exit_code == 2 and "exists" in res.output
    assert cli("interpolate", trained, "-o", tmp_path / "w.gif", "--points", 2, "--steps", 2, "--force").exit_code == 0


def test_a_run_folder_in_use_is_refused_to_run_resume_and_force(trained, tmp_path):
    lock = RunLock(trained).acquire()
    try:
        for args in (["resume", trained, "--set", "train.steps=5"], ["run", recipe_file(tmp_path), "--run-dir", trained, "--force"]):
            res = cli(*args)
            assert res.exit_code == 2 and "is in use by another ganzoo process" in res.output and f"pid {os.getpid()}" in res.output
        assert (trained / "checkpoints" / "last.safetensors").is_file()  # --force deleted nothing
    finally:
        lock.release()
    assert cli("resume", trained, "--set", "train.steps=5", "-q").exit_code == 0


def test_two_runs_started_together_in_one_folder_never_mix(tmp_path):
    recipe, run_dir = recipe_file(tmp_path, train={"steps": 6}), tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-m", "ganzoo", "run", str(recipe), "--run-dir", str(run_dir), "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = outs[[p.returncode for p in procs].index(2)]
    assert "in use by another ganzoo process" in loser or "exists and is not empty" in loser
    steps = [yaml.safe_load(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # every step once


def test_the_lock_is_released_by_kill_9(tmp_path):
    code = f"from ganzoo.rundir import RunLock; import time; RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    with pytest.raises(GanzooError, match="in use"):
        RunLock(tmp_path).acquire()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    RunLock(tmp_path).acquire().release()


# -- sizes --------------------------------------------------------------------------------------------------------
def test_sizes_that_do_not_fit_are_refused_quickly_with_an_estimate(trained, tmp_path):
    t0 = time.perf_counter()
    huge = recipe_file(tmp_path, "huge.yaml", generator={"latent_dim": 2_000_000_000})
    for command in ("check", "run"):
        res = cli(command, huge)
        assert res.exit_code == 2 and "GB of memory, this machine has" in res.output and "latent_dim" in res.output
    res = cli("sample", trained, "-n", 10**11, "-o", tmp_path / "many")
    assert res.exit_code == 2 and "100,000,000,000 PNGs of 3x16x16 needs about" in res.output
    res = cli("interpolate", trained, "-o", tmp_path / "w.png", "--points", 10**6, "--steps", 10**6)
    assert res.exit_code == 2 and "fewer --points or --steps" in res.output
    assert time.perf_counter() - t0 < 20 and not (tmp_path / "many").exists()


# -- images -------------------------------------------------------------------------------------------------------
def _modes_folder(root: Path) -> dict[str, Image.Image]:
    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    images = {
        "gray16.png": Image.fromarray((ramp * 65535).astype(np.uint16)),
        "float.tiff": Image.fromarray(ramp.astype(np.float32)),
        "int32.tiff": Image.fromarray((ramp * 65535).astype(np.int32)),
        "cmyk.jpg": Image.new("CMYK", (32, 32), (0, 255, 255, 0)),
        "rgba.png": Image.new("RGBA", (32, 32), (0, 0, 255, 0)),
        "la.png": Image.new("LA", (32, 32), (0, 0)),
        "palette.png": Image.new("P", (32, 32), 0),
        "bilevel.png": Image.new("1", (32, 32), 1),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, img in images.items():
        if name == "palette.png":
            img.putpalette([0, 255, 0] * 256)
            img.save(root / name, transparency=0)
        else:
            img.save(root / name)
    return images


def test_every_pil_mode_converts_correctly(tmp_path):
    from ganzoo.interfaces import DataReport
    from ganzoo.imagefiles import read_images

    _modes_folder(tmp_path / "modes")
    report = DataReport()
    images = read_images(tmp_path / "modes", 16, 3, report)
    names = sorted(p.name for p in (tmp_path / "modes").iterdir())
    by_name = dict(zip(names, images.float().mean(dim=(2, 3))))
    assert len(images) == 8 and not report.skipped
    for ramp in ("gray16.png", "float.tiff", "int32.tiff"):  # a ramp from black to white: mean grey, not solid white
        assert 100 < by_name[ramp].mean() < 155, (ramp, by_name[ramp])
    assert by_name["cmyk.jpg"].tolist() == pytest.approx([254, 0, 0], abs=3)  # CMYK (0, 255, 255, 0) is red
    for clear in ("rgba.png", "la.png", "palette.png"):  # fully transparent: composited over white
        assert by_name[clear].tolist() == pytest.approx([255, 255, 255], abs=1), clear
    assert by_name["bilevel.png"].tolist() == pytest.approx([255, 255, 255], abs=1)


def test_symlinked_folders_are_followed_once_and_loops_reported(tmp_path):
    from ganzoo.interfaces import DataReport
    from ganzoo.imagefiles import read_images

    real = tmp_path / "data" / "real"
    real.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (16, 16), (i * 80, 0, 0)).save(real / f"{i}.png")
    (tmp_path / "data" / "link").symlink_to(real, target_is_directory=True)  # a second way to the same folder
    (real / "loop").symlink_to(tmp_path / "data", target_is_directory=True)  # a loop
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (16, 16)).save(outside / "x.png")
    (tmp_path / "data" / "more").symlink_to(outside, target_is_directory=True)  # a linked folder: followed
    report = DataReport()
    images = read_images(tmp_path / "data", 16, 3, report)
    assert len(images) == 4 and report.skipped["symlinked folder already read (or a link loop)"] >= 2


def test_an_empty_path_never_means_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (16, 16)).save(tmp_path / "here.png")
    for key in ("data.path=", "data.path=' '"):
        with pytest.raises(GanzooError, match="data.path"):
            ganzoo.load_recipe(dict(TINY, data={"name": "images", "path": "x", "resolution": 16}), [key])
    assert cli("eval", tmp_path, "--ref", "").exit_code == 2
    assert cli("sample", tmp_path, "-o", "").exit_code == 2


# -- advice that works: data as distributed ----------------------------------------------------------------------
def _idx(path: Path, n: int, seed: int, compress: bool) -> None:
    data = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    raw = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", n, 28, 28) + data.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_files_as_distributed_load_after_following_the_advice(tmp_path, layout, name, folder):
    root = tmp_path / "root"
    section = {"name": name, "root": str(root), "resolution": 28, "channels": 1, "cache": False, "split": "all"}
    recipe = dict(copy.deepcopy(TINY), data=section)
    with pytest.raises(GanzooError) as info:
        ganzoo.models.preflight(ganzoo.load_recipe(recipe))
    message = str(info.value)
    assert f"put train-images-idx3-ubyte.gz" in message and str(root) in message and f"{root / folder / 'raw'}" in message
    where = root if layout == "flat" else root / folder / "raw"  # doing exactly what the message says
    _idx(where / "train-images-idx3-ubyte", 10, 0, compress=True)
    _idx(where / "t10k-images-idx3-ubyte", 4, 1, compress=layout == "flat")
    images, _ = ganzoo.load_dataset(ganzoo.load_recipe(recipe).data)
    assert images.shape == (14, 1, 28, 28) and images.dtype == torch.uint8


# -- check agrees with run -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("what,sections,fragment", [
    ("unbuildable resolution", {"data": {"resolution": 20}, "generator": {"name": "upsample_conv", "latent_dim": 8, "channels": 8,
                                                                         "n_upsample": 3}}, "cannot be built for 3x20x20"),
    ("missing data path", {"data": {"name": "images", "path": "no/such/folder", "resolution": 16}}, "does not exist"),
    ("missing MNIST", {"data": {"name": "mnist", "root": "no/such/root", "resolution": 28, "channels": 1}}, "MNIST not found"),
    ("an mlp critic for a dcgan generator", {"critic": {"name": "mlp", "hidden": [8]}}, None),
])
def test_check_refuses_what_run_refuses(tmp_path, what, sections, fragment):
    if fragment is None:  # a pair that does fit: both accept it
        r = dict(copy.deepcopy(TINY), **sections)
        r["output"]["dir"] = str(tmp_path / "runs")
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump(r))
        assert cli("check", path).exit_code == 0 and cli("run", path, "-q").exit_code == 0
        return
    r = copy.deepcopy(TINY)
    r["output"]["dir"] = str(tmp_path / "runs")
    for key, value in sections.items():
        r[key] = value if key != "data" or "name" in value else {**r["data"], **value}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(r))
    checked, ran = cli("check", path), cli("run", path, "-q")
    assert checked.exit_code == ran.exit_code == 2 and fragment in checked.output and fragment in ran.output
    assert not (tmp_path / "runs").exists()  # refused before a run folder


# -- degrade, don't die --------------------------------------------------------------------------------------------
def test_an_unwritable_cache_means_no_cache_and_a_warning(tmp_path, monkeypatch, tiny):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("GANZOO_CACHE_DIR", str(blocker))
    tiny["data"]["seed"] = 12345  # not in any cache
    with captured_log() as messages:
        result = ganzoo.train(ganzoo.load_recipe(tiny), progress=False)
    assert result.steps == 3
    assert any(m.startswith("warning: data cache not written") for m in messages)


# -- resume with an edited recipe.yaml -------------------------------------------------------------------------------
def test_an_edited_recipe_is_honoured_where_safe_and_refused_otherwise(trained):
    path = trained / "recipe.yaml"
    original = path.read_text()
    edited = yaml.safe_load(original)
    edited["optim"] = {"critic": {"name": "adam", "lr": 0.001}}
    path.write_text(yaml.safe_dump(edited))
    res = cli("resume", trained, "-q")
    assert res.exit_code == 2 and "was edited: changes a resume cannot honour" in res.output and "optim.critic" in res.output
    assert path.read_text() == yaml.safe_dump(edited)  # the user's edit is not overwritten
    edited = yaml.safe_load(original)
    edited["train"]["steps"], edited["output"]["samples"] = 5, 2
    path.write_text(yaml.safe_dump(edited))
    with captured_log() as messages:
        assert cli("resume", trained, "-q").exit_code == 0
    assert any("honouring" in m and "was edited" in m and "train.steps: 3 -> 5" in m for m in messages)
    assert ganzoo.load_checkpoint(trained).meta["step"] == 5 and len(list((trained / "samples").glob("0*.png"))) == 2


def test_many_samples_stream_to_disk_chunk_by_chunk(trained, tmp_path, monkeypatch):
    from ganzoo import sampling

    monkeypatch.setattr(sampling, "CHUNK", 4)  # 10 images: three chunks, never more than 4 in memory
    G = ganzoo.load_generator(trained)
    report = sampling.sample_to_folder(G, 10, tmp_path / "many")
    names = sorted(p.name for p in (tmp_path / "many").iterdir())
    assert names == [f"{i:05d}.png" for i in range(10)] + ["grid.png"] and report.n == 10
    assert all(0 <= i < j < 10 for i, j, _ in report.close_pairs) and 0 <= min(report.closest_pair) < 10
    res = cli("sample", trained, "-n", 10**9, "-o", tmp_path / "huge")
    assert res.exit_code == 2 and "on disk" in res.output and not (tmp_path / "huge").exists()
