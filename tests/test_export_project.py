"""A generator outside ganzoo: ONNX and TorchScript exports equal the torch generator (conditional and noise-input
ones too), model folders load back and carry a model card the Hub can read, and projection finds a generator's
own image again."""

import copy
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.cli import app
from ganzoo.fileio import file_sha256
from ganzoo.export import TOLERANCE, check_inputs, export, is_model_folder
from ganzoo.projection import load_projection, project, walk_between
from ganzoo.sampling import generate, write_png

from test_conditional import colour_folders, recipe as cond_recipe
from test_stylegan2 import TINY_SG2

from conftest import TINY, copy_run

runner = CliRunner()


def plain(images):
    return images.as_subclass(torch.Tensor)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The module's three tiny runs (plain, StyleGAN2 with noise inputs, conditional), trained once; each test
    gets copies (``run``, ``sg2_run``, ``cond_run``), so what one test writes into a run no other test sees."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("export_runs")

    def tiny_recipe(**changes):
        r = copy.deepcopy(TINY)
        r["output"].update(dir=str(base / "runs"), samples=0)
        r["train"]["steps"] = changes.pop("steps")
        return load_recipe({**r, **changes})

    cond = cond_recipe({"name": "images", "path": str(colour_folders(base)), "labels": ["folder"]}, "concat")
    cond["output"].update(dir=str(base / "runs"), samples=0)
    return {
        "run": train(tiny_recipe(steps=40), base / "run", progress=False).run_dir,
        "sg2": train(tiny_recipe(steps=20, generator={"name": "stylegan2", "latent_dim": 8, **TINY_SG2}), base / "sg2",
                     progress=False).run_dir,
        "cond": train(load_recipe(cond), base / "cond", progress=False).run_dir,
    }


@pytest.fixture
def run(trained, tmp_path):
    return copy_run(trained["run"], tmp_path / "run")


@pytest.fixture
def sg2_run(trained, tmp_path):
    return copy_run(trained["sg2"], tmp_path / "sg2")


@pytest.fixture
def cond_run(trained, tmp_path):
    return copy_run(trained["cond"], tmp_path / "cond")


def _torch_images(source, n=5, seed=0):
    G = ganzoo.load_generator(source)
    z, y = check_inputs(G, n, seed)
    with torch.no_grad():
        return (G(z) if y is None else G(z, y)).clamp(-1, 1), z, y


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt2"])
def test_graph_exports_equal_the_torch_generator_at_a_new_batch_size(run, cond_run, fmt):
    for source in (run, cond_run):
        done = export(source, fmt)
        assert done.path.is_file() and done.max_difference <= TOLERANCE and not done.noise_zeroed
        expected, z, y = _torch_images(source, 7, seed=3)  # neither the traced batch (2) nor the check's (5)
        if fmt == "onnx":
            import onnxruntime as ort

            session = ort.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
            assert [i.name for i in session.get_inputs()] == (["z"] if y is None else ["z", "labels"])
            feeds = {"z": z.numpy(), **({} if y is None else {"labels": y.numpy()})}
            got = torch.from_numpy(session.run(["images"], feeds)[0])
            if y is not None:  # a negative class fails as one past the last does; ONNX's lookup alone would wrap it round
                for bad in (-1, 99):
                    with pytest.raises(Exception, match="out of data bounds"):
                        session.run(["images"], {**feeds, "labels": np.full_like(feeds["labels"], bad)})
        elif fmt == "pt2":
            got = torch.export.load(str(done.path)).module()(*((z,) if y is None else (z, y)))
        else:
            got = torch.jit.load(str(done.path))(*((z,) if y is None else (z, y)))
        assert got.shape == expected.shape and (got - expected).abs().max() <= TOLERANCE


def test_a_noise_input_generator_exports_with_its_noise_at_zero(sg2_run):
    done = export(sg2_run, "onnx")
    assert done.noise_zeroed and done.max_difference <= TOLERANCE
    import onnxruntime as ort

    z, _ = check_inputs(ganzoo.load_generator(sg2_run), 3, seed=9)
    session = ort.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    a, b = session.run(["images"], {"z": z.numpy()})[0], session.run(["images"], {"z": z.numpy()})[0]
    assert (a == b).all()  # deterministic


def test_an_export_that_differs_is_refused_and_nothing_is_left(run, monkeypatch):
    import ganzoo.export as ex

    real = ex._run_exported
    monkeypatch.setattr(ex, "_run_exported", lambda *a: real(*a) + 1e-3)
    with pytest.raises(GanzooError, match="differs from the torch generator by 0.001"):
        export(run, "torchscript")
    assert not list((run / "export").iterdir())
    with pytest.raises(GanzooError, match="choose one of onnx, torchscript, pt2, folder"):
        export(run, "tflite")


def test_a_model_folder_loads_back_samples_the_same_and_carries_a_card_the_hub_reads(cond_run, run):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    metrics = {"fid": 201.5, "kid_mean": 0.21, "kid_std": 0.01, "precision": 0.3, "recall": 0.05,
               "protocol": {"library": "torch-fidelity 0.4.0", "n_generated": 1000, "n_real": 5000, "image_resolution": 16,
                            "seed": 0, "feature_network": {"name": "Inception-v3 FID network", "sha256": "ab" * 32,
                                                           "resize": "bilinear to 299x299"},
                            "reference": {"source": "/somewhere/private/colours"},
                            "evaluated": {"step": 3, "ema": False, "checkpoint_sha256": "0" * 64}}}
    (cond_run / "metrics.json").write_text(json.dumps(metrics))
    stale = export(cond_run, "folder", output=cond_run.parent / "stale-card").path  # scores of other weights: not on the card
    assert "Not evaluated" in (stale / "README.md").read_text() and "201.5" not in (stale / "README.md").read_text()
    metrics["protocol"]["evaluated"]["checkpoint_sha256"] = file_sha256(cond_run / "checkpoints" / "last.safetensors")
    (cond_run / "metrics.json").write_text(json.dumps(metrics))
    folder = export(cond_run, "folder").path
    assert is_model_folder(folder) and {p.name for p in folder.iterdir()} == {
        "model.safetensors", "config.json", "recipe.yaml", "README.md", "samples.png"}
    G, F = ganzoo.load_generator(cond_run), ganzoo.load_generator(folder)
    assert torch.equal(plain(generate(G, 12, labels="random")), plain(generate(F, 12, labels="random")))
    assert F.labels.attributes == G.labels.attributes and F.labels.classes == G.labels.classes
    config = json.loads((folder / "config.json").read_text())
    for published in ("config.json", "recipe.yaml", "README.md"):  # nothing in a model folder names a local folder
        text = (folder / published).read_text()
        assert str(cond_run.parent) not in text and "/tmp" not in text, published
    assert config["recipe"]["data"]["path"] == Path(ganzoo.load_recipe(cond_run / "recipe.yaml").data.params.path).name
    assert config["generator"]["name"] == "dcgan" and config["image"] == {"channels": 3, "resolution": 16}
    assert config["latent_dim"] == 8 and list(config["labels"]) == ["folder"]
    card = huggingface_hub.ModelCard.load(folder / "README.md")
    assert card.data.library_name == "ganzoo" and "gan" in card.data.tags
    results = {r.metric_type: r for r in card.data.eval_results}
    assert results["fid"].metric_value == 201.5 and results["fid"].metric_name == "FID@1000"
    assert set(results) == {"fid", "kid", "precision", "recall"}
    meta = card.data.to_dict()
    assert meta["license"] == "other" and meta["license_name"] and meta["license_link"].startswith("https://")
    index = meta["model-index"][0]
    assert index["name"] == "model" and index["results"][0]["dataset"]["args"] == {"n_generated": 1000, "n_real": 5000,
                                                                                    "resolution": 16}
    assert index["results"][0]["dataset"]["type"] != "images"  # a Hub dataset id or the data's own name, never the loader's
    text = (folder / "README.md").read_text()
    # the install line installs this project (the index's "ganzoo" is another one); the folder's download is said
    from ganzoo.version import INSTALL_COMMAND
    assert "\npip install ganzoo\n" not in text and INSTALL_COMMAND in text and "hf download" in text
    assert INSTALL_COMMAND.startswith("pip install ./ganzoo ")  # a local path: pip builds this project's pyproject there
    assert "on 1000 generated images against 5000 real images" in text and "torch-fidelity 0.4.0" in text
    assert "/somewhere/private" not in text and "![64 samples (seed 0)](samples.png)" in text
    assert "ganzoo sample" in text and "--label folder=" in text and "```yaml\nname: cond" in text
    unevaluated = export(run, "folder").path
    assert "Not evaluated" in (unevaluated / "README.md").read_text()
    assert not huggingface_hub.ModelCard.load(unevaluated / "README.md").data.eval_results
    res = runner.invoke(app, ["sample", str(folder), "-n", "4", "-o", str(folder.parent / "s"), "--label", "random"])
    assert res.exit_code == 0 and len(list((folder.parent / "s").glob("0*.png"))) == 4
    (folder / "config.json").write_text("{}")
    with pytest.raises(GanzooError, match="not a ganzoo model folder"):
        ganzoo.load_generator(folder)


def test_projection_finds_the_generators_own_image_again(run, sg2_run):
    G, D, _, _ = ganzoo.load_models(run)
    target = plain(generate(G, 1, seed=123))[0]
    p = project(G, target, critic=D, steps=150)
    assert p.space == "z" and p.start_distance > 0.015 and p.distance < 0.005  # RMS on [0, 1]
    assert torch.equal(p.image, plain(ganzoo.sampling.render(G, p.latent))[0]) or p.distance < 0.005
    pixels = project(G, target, features="pixels", steps=150)
    assert pixels.distance < 0.005 and pixels.losses[-1] < pixels.losses[0]
    G2, D2, _, _ = ganzoo.load_models(sg2_run)
    target = plain(generate(G2, 1, seed=7))[0]
    w = project(G2, target, critic=D2, steps=150, seed=7)
    assert w.space == "w" and w.latent.shape == (1, TINY_SG2["w_dim"]) and w.distance < w.start_distance / 4
    with pytest.raises(GanzooError, match="must be uint8 3x16x16"):
        project(G, torch.zeros(3, 8, 8, dtype=torch.uint8), features="pixels")
    with pytest.raises(GanzooError, match="needs the run's critic"):
        project(G, target)


def test_project_command_writes_latents_and_images_and_interpolate_walks_between_them(run, tmp_path):
    G = ganzoo.load_generator(run)
    for seed in (1, 2):
        write_png(plain(generate(G, 1, seed=seed))[0], tmp_path / f"face{seed}.png")
    res = runner.invoke(app, ["project", str(run), str(tmp_path / "face1.png"), str(tmp_path / "face2.png"), "--steps", "60"],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert re.search(r"face1: RMS distance 0\.\d+ -> 0\.00\d+ \(pixels on \[0, 1\]; z space, critic features, 60 steps\)", res.output)
    out = run / "projections"
    assert {p.name for p in out.iterdir()} == {f"face{i}{s}" for i in (1, 2) for s in (".latent.safetensors", ".png", ".side.png")}
    latent, space, labels = load_projection(out / "face1.latent.safetensors")
    assert space == "z" and latent.shape == (1, 8) and labels is None
    walk = walk_between(G, [out / "face1.latent.safetensors", out / "face2.latent.safetensors"], steps=4)
    assert walk.shape == (1, 4, 3, 16, 16)
    ends = plain(ganzoo.sampling.render(G, torch.cat([latent, load_projection(out / "face2.latent.safetensors")[0]])))
    assert torch.equal(walk[0, 0], ends[0]) and torch.equal(walk[0, -1], ends[1])
    res = runner.invoke(app, ["interpolate", str(run), "--between", str(out / "face1.latent.safetensors"),
                              "--between", str(out / "face2.latent.safetensors"), "-o", str(tmp_path / "walk.gif")])
    assert res.exit_code == 0 and (tmp_path / "walk.gif").is_file(), res.output
    again = runner.invoke(app, ["project", str(run), str(tmp_path / "face1.png"), "--steps", "1"])
    assert again.exit_code == 2 and "exists" in again.output and "--force" in again.output
    missing = runner.invoke(app, ["project", str(run), str(tmp_path / "nope.png")])
    assert missing.exit_code == 2 and "image not found" in missing.output


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs onnxruntime")
def test_export_command_prints_the_check_and_refuses_to_overwrite(run):
    res = runner.invoke(app, ["export", str(run), "-f", "onnx"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "max difference" in res.output and "limit 0.0001" in res.output, res.output
    again = runner.invoke(app, ["export", str(run), "-f", "onnx"])
    assert again.exit_code == 2 and "exists" in again.output
    folder = runner.invoke(app, ["export", str(run), "-f", "folder"], env={"COLUMNS": "200"})
    assert folder.exit_code == 0 and "README.md model card" in folder.output
    res = runner.invoke(app, ["project", str(run / "export" / "model"), str(run / "export" / "model" / "samples.png"),
                              "--features", "critic", "-o", str(run / "p")])
    assert res.exit_code == 2 and "model folder" in res.output and "--features pixels" in res.output


ARCHITECTURES = {
    "dcgan": {"base_channels": 8},
    "mlp": {"hidden": [16]},
    "upsample_conv": {"channels": 8},
    "resnet": {"base_channels": 8, "attention": [8]},
    "fastgan": {"base_channels": 8},
    "r3gan": {"base_channels": 8, "max_channels": 16, "blocks_per_stage": 1, "group_size": 8},
    "stylegan2": TINY_SG2,
}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_built_in_generator_exports_to_onnx_with_a_dynamic_batch(tiny, tmp_path, name):
    from ganzoo.export import _export_graph

    tiny["generator"] = {"name": name, "latent_dim": 8, **ARCHITECTURES[name]}
    if name == "fastgan":  # 32 px and up
        tiny["data"]["resolution"], tiny["critic"] = 32, {"name": "fastgan", "base_channels": 8}
    G, _ = ganzoo.build_models(load_recipe(tiny))
    done = _export_graph(G.eval(), "onnx", tmp_path / "g.onnx")
    assert done.max_difference <= TOLERANCE and done.check_batch == 5


def test_export_force_never_deletes_what_an_export_did_not_write(finished_run, tmp_path):
    import os

    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    run = copy_run(finished_run, tmp_path / "run")
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


def test_the_documented_numpy_snippet_reproduces_ganzoo_sample_exactly_and_reads_the_onnx_metadata(cond_run, tmp_path):
    """docs/export.md's snippet, run as written on ``ganzoo sample --seed 3 --save-latents``: every pixel equal."""
    np = pytest.importorskip("numpy")
    ort = pytest.importorskip("onnxruntime")
    from PIL import Image

    onnx_path = export(cond_run, "onnx", tmp_path / "generator.onnx").path
    res = runner.invoke(app, ["sample", str(cond_run), "-n", "12", "--seed", "3", "-o", str(tmp_path / "s"), "--label", "random",
                              "--save-latents"])
    assert res.exit_code == 0, res.output
    session = ort.InferenceSession(str(onnx_path))
    meta = session.get_modelmeta().custom_metadata_map
    G = ganzoo.load_generator(cond_run)
    assert int(meta["latent_dim"]) == G.latent_dim and json.loads(meta["image_shape"]) == [3, 16, 16]
    assert json.loads(meta["labels"]) == G.labels.to_dict() and meta["output_range"] == "[-1, 1]"
    assert "manual_seed(seed)" in meta["seed_convention"] and meta["ganzoo_version"] == ganzoo.__version__
    docs = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text()
    snippet = docs.split('z = np.load("s/latents.npy")')[1].split("```")[0]
    scope = {"np": np, "session": session}
    exec(compile('z = np.load(S / "latents.npy")' + snippet.replace('"s/labels.npy"', 'S / "labels.npy"'), "export.md", "exec"),
         dict(scope, S=tmp_path / "s"), scope)
    pixels = scope["pixels"]
    written = np.stack([np.asarray(Image.open(tmp_path / "s" / f"{i:05d}.png")).transpose(2, 0, 1) for i in range(12)])
    assert pixels.shape == written.shape and (pixels == written).all()


def test_latents_projected_into_another_run_are_refused_and_a_bomb_header_is_one_line(run, finished_run, tmp_path):
    import struct
    import zlib

    face = tmp_path / "face.png"
    write_png(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)), face)
    res = runner.invoke(app, ["project", str(finished_run), str(face), str(face), "--steps", "1", "-o", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    latents = [str(p) for p in sorted((tmp_path / "p").glob("*.latent.safetensors"))]
    res = runner.invoke(app, ["interpolate", str(run), "--between", latents[0], "--between", latents[1], "-o", str(tmp_path / "w.gif")])
    assert res.exit_code != 0 and "another run's generator" in res.output and not (tmp_path / "w.gif").exists(), res.output
    res = runner.invoke(app, ["interpolate", str(finished_run), "--between", latents[0], "--between", latents[1], "-o", str(tmp_path / "w.gif")])
    assert res.exit_code == 0, res.output

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bomb = tmp_path / "bomb.png"  # a valid PNG header that claims 100000 x 100000 pixels
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))
    res = runner.invoke(app, ["project", str(finished_run), str(bomb), "--steps", "1", "-o", str(tmp_path / "b")])
    assert res.exit_code != 0 and res.output.startswith("error: ") and "bomb.png" in res.output and "Traceback" not in res.output
