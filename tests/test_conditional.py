"""Conditional generation: labels from folders, a CSV and MNIST; every conditioning component; sampling by label;
the label classifier; exact resume; and the bad inputs of labelled data."""

import copy
import csv
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.cli import app
from ganzoo.data import load_data

from conftest import MNIST_ROOT, needs_mnist, tiny_feature_network
from test_evaluate import no_network  # noqa: F401 (a fixture)
from test_resume import assert_same_checkpoint

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def _image(colour, rng, size=12):
    return np.clip(np.array(colour)[None, None] + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def folders(tmp_path):
    """Three class sub-folders of 12 noisy single-colour images, and one unlabelled image at the top."""
    return colour_folders(tmp_path)


def colour_folders(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "colours"
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(_image(colour, rng)).save(root / name / f"{i}.png")
    Image.fromarray(_image((128, 128, 128), rng)).save(root / "loose.png")
    return root


def _tagged_zip(path, rows, images=None, header=("file", "hair", "eyes"), extra_files=()):
    """A zip of faces/N.png (colour = hair) and a tags.csv with ``rows``."""
    rng = np.random.default_rng(1)
    text = io.StringIO()
    w = csv.writer(text)
    if header:
        w.writerow(header)
    w.writerows(rows)
    with zipfile.ZipFile(path, "w") as zf:
        for name, hair in images if images is not None else [(r[0], r[1]) for r in rows]:
            buf = io.BytesIO()
            Image.fromarray(_image(COLOURS.get(hair, (128, 128, 128)), rng)).save(buf, "PNG")
            zf.writestr(name, buf.getvalue())
        zf.writestr("tags.csv", text.getvalue())
        for name, data in extra_files:
            zf.writestr(name, data)
    return path


def _rows(n=24):
    hairs, eyes = list(COLOURS), ["amber", "grey"]
    return [(f"faces/{i}.png", hairs[i % 3], eyes[(i // 3) % 2]) for i in range(n)]


def recipe(data, condition="projection", **extra):
    r = {"name": "cond", "seed": 1, "data": {"resolution": 16, "channels": 3, **data},
         "condition": {"name": condition} if isinstance(condition, str) else condition,
         "generator": {"name": "dcgan", "latent_dim": 8, "base_channels": 8},
         "critic": {"name": "dcgan", "base_channels": 8},
         "objective": {"name": "bce"},
         "train": {"batch_size": 8, "steps": 3, "log_every": 1, "threads": 1},
         "output": {"samples": 6, "tensorboard": False}}
    for key, value in extra.items():
        r[key] = {**r.get(key, {}), **value} if isinstance(value, dict) and isinstance(r.get(key), dict) else value
    return r


# -- labels in the data ------------------------------------------------------------------------------
def test_labels_from_class_folders_skip_and_count_unlabelled_images(folders):
    section = load_recipe(recipe({"name": "images", "path": str(folders), "labels": ["folder"]})).data
    data = load_data(section)
    assert data.labels.attributes == ("folder",) and data.labels.classes == (("blue", "green", "red"),)
    assert data.labels.counts == ((12, 12, 12),)
    assert len(data.images) == len(data.codes) == 36
    assert data.report.skipped["no folder label"] == 1  # loose.png
    # the codes follow the images: every "red" image is red
    red = data.images[data.codes[:, 0] == 2].float().mean((0, 2, 3))
    assert red[0] > 150 and red[1] < 80 and red[2] < 80
    again = load_data(section)  # from the cache: the same labels
    assert torch.equal(again.codes, data.codes) and again.labels == data.labels


def test_labels_from_a_csv_with_two_attributes_in_a_zip(tmp_path):
    rows = _rows(24)
    path = _tagged_zip(tmp_path / "tagged.zip", rows[:20], images=[(r[0], r[1]) for r in rows])  # 4 images have no row
    data = load_data(load_recipe(recipe({"name": "images", "path": str(path), "labels_file": "tags.csv", "labels": ["hair", "eyes"]})).data)
    assert data.labels.attributes == ("hair", "eyes")
    assert data.labels.classes == (("blue", "green", "red"), ("amber", "grey"))
    assert len(data.images) == 20 and data.report.skipped["no hair/eyes label"] == 4
    assert sum(data.labels.counts[0]) == 20
    unconditional = load_data(load_recipe(recipe({"name": "images", "path": str(path), "labels_file": "tags.csv"}, condition=None)).data)
    assert len(unconditional.images) == 24 and unconditional.codes is None  # unconditional: every image is used


@needs_mnist
def test_mnist_gives_its_digit_labels():
    section = load_recipe(recipe({"name": "mnist", "root": str(MNIST_ROOT), "split": "test", "resolution": 28, "channels": 1,
                                  "labels": ["digit"]})).data
    data = load_data(section)
    assert data.labels.classes == (tuple(str(i) for i in range(10)),)
    assert len(data.images) == 10000 and sum(data.labels.counts[0]) == 10000
    assert data.labels.counts[0][1] == 1135  # the test split's count of ones


def test_data_inspect_shows_label_columns_classes_and_counts(tmp_path):
    path = _tagged_zip(tmp_path / "tagged.zip", _rows(12))
    r = tmp_path / "r.yaml"
    import yaml

    r.write_text(yaml.safe_dump(recipe({"name": "images", "path": str(path), "labels_file": "tags.csv", "labels": ["hair"]})))
    res = CliRunner().invoke(app, ["data", "inspect", str(r), "--grid", str(tmp_path / "g.png")])
    assert res.exit_code == 0, res.output
    assert "label hair (conditions the model)" in res.output and "blue 4" in res.output and "label eyes" in res.output


# -- every conditioning component ---------------------------------------------------------------------
CASES = [(c, "dcgan") for c in ("concat", "projection", "acgan")] + [
    ({"name": "concat", "embedding": 4, "mismatch": 0.5}, "mlp"), ({"name": "projection", "generator": "concat"}, "mlp"),
    ({"name": "acgan", "on_fake": False}, "upsample_conv"), ("projection", "upsample_conv"), ("concat", "upsample_conv")]


@pytest.mark.parametrize("condition, arch", CASES, ids=[f"{c if isinstance(c, str) else c['name'] + '*'}-{a}" for c, a in CASES])
def test_every_conditioning_trains_with_every_builtin_architecture(folders, tmp_path, condition, arch):
    r = recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, condition)
    r["generator"] = {"name": arch, "latent_dim": 8, **({"base_channels": 8} if arch == "dcgan" else {"hidden": [16, 32]} if arch == "mlp" else {"channels": 16})}
    r["critic"] = {"name": arch, **({"base_channels": 8} if arch == "dcgan" else {"hidden": [16]} if arch == "mlp" else {"widths": [8, 16]})}
    r["output"]["dir"] = str(tmp_path / "runs")
    result = train(load_recipe(r), progress=False)
    assert result.steps == 3
    G = ganzoo.load_generator(result.run_dir)
    images = ganzoo.generate(G, 4, labels={"folder": "red"})
    assert images.shape == (4, 3, 16, 16)
    if "acgan" in str(condition):
        import json

        lines = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert all("aux" in line and "aux_g" in line for line in lines if "d_loss" in line)


@pytest.mark.parametrize("objective", ["wgan_gp", "ragan", "hinge"])
def test_conditioning_combines_with_penalties_and_relativistic_losses(folders, tmp_path, objective):
    r = recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, {"name": "projection", "mismatch": 0.3},
               objective={"name": objective}, regularizers=[{"name": "r1", "every": 1}, {"name": "diffaugment"}])
    r["output"]["dir"] = str(tmp_path / "runs")
    r["train"]["n_critic"] = 2
    result = train(load_recipe(r), progress=False)
    assert result.steps == 3 and all(np.isfinite(v) for k, v in result.metrics.items() if isinstance(v, float))


def test_conditional_batchnorm_starts_as_the_plain_generator(folders):
    """At initialisation the per-class scale and shift are zero: every label gives the same image."""
    r = load_recipe(recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, "projection"))
    space = ganzoo.LabelSpace(("folder",), (("a", "b", "c"),), ((1, 1, 1),))
    G, _ = ganzoo.build_models(r, labels=space)
    G.eval()
    z = torch.randn(3, 8)
    a, b = G(z, torch.zeros(3, 1, dtype=torch.long)), G(z, torch.full((3, 1), 2, dtype=torch.long))
    assert torch.equal(a, b)
    cbn = [m for m in G.modules() if type(m).__name__ == "ConditionalBatchNorm"]
    assert len(cbn) >= 2
    with torch.no_grad():
        cbn[0].gamma[0].weight[2] += 1.0
    assert not torch.equal(G(z, torch.zeros(3, 1, dtype=torch.long)), G(z, torch.full((3, 1), 2, dtype=torch.long)))


def test_resume_of_a_conditional_run_is_bit_identical(folders, tmp_path):
    r = recipe({"name": "images", "path": str(folders), "labels": ["folder"], "augment": {"hflip": True}},
               {"name": "acgan", "mismatch": 0.5}, ema={"decay": 0.9}, monitor={"collapse": False})
    r["train"]["steps"] = 7
    r["output"]["samples"] = 0
    full = train(load_recipe(r), tmp_path / "full", progress=False)
    first = train(load_recipe(r, ["train.steps=3"]), tmp_path / "split", progress=False)
    resumed = train(load_recipe(r), tmp_path / "split", resume=first.run_dir, progress=False)
    assert_same_checkpoint(full.checkpoint, resumed.checkpoint)
    assert ganzoo.load_checkpoint(full.checkpoint).meta["labels"]["folder"]["classes"] == ["blue", "green", "red"]


# -- sampling by label ----------------------------------------------------------------------------------
@pytest.fixture
def cond_run(folders, tmp_path):
    r = recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, "concat")
    r["output"]["dir"] = str(tmp_path / "runs")
    return train(load_recipe(r), progress=False).run_dir


def test_sampling_by_label_grids_and_walks(cond_run, tmp_path):
    G = ganzoo.load_generator(cond_run)
    same = ganzoo.generate(G, 5, seed=3, labels=["folder=blue"])
    assert torch.equal(same, ganzoo.generate(G, 5, seed=3, labels={"folder": "blue"}))
    assert not torch.equal(same, ganzoo.generate(G, 5, seed=3, labels={"folder": "red"}))  # the label changes the image
    grid, classes = ganzoo.class_grid(G, "folder", columns=4, seed=0)
    assert classes == ["blue", "green", "red"] and grid.shape == (12, 3, 16, 16)
    from ganzoo.sampling import interpolate

    walk = interpolate(G, points=3, steps=4, labels=["folder=green"])
    assert walk.shape == (2, 4, 3, 16, 16)
    # the training grids have one row per class
    assert (cond_run / "grids" / "step_0000003.png").is_file()


def test_cli_sample_and_grid_by_label(cond_run, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["sample", str(cond_run), "-n", "6", "-o", str(tmp_path / "blue"), "--label", "folder=blue"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "blue").glob("0*.png"))) == 6
    res = runner.invoke(app, ["grid", str(cond_run), "--by", "folder", "--columns", "3", "-o", str(tmp_path / "g.png")])
    assert res.exit_code == 0, res.output
    width, height = Image.open(tmp_path / "g.png").size
    assert height == 3 * (64 + 2) + 2 and width > height + 20  # 3 rows of 3 at 16 px enlarged 4x, a margin naming each row
    res = runner.invoke(app, ["sample", str(cond_run), "-n", "4", "-o", str(tmp_path / "x"), "--label", "folder=purple"])
    assert res.exit_code == 2 and "unknown value 'purple' for label 'folder'; valid values: blue, green, red" in res.output
    assert not (tmp_path / "x").exists()
    res = runner.invoke(app, ["sample", str(cond_run), "-n", "4", "-o", str(tmp_path / "y")])
    assert res.exit_code == 2 and "conditional on folder" in res.output and "--label folder=blue" in res.output
    assert "Traceback" not in res.output


def test_an_unconditional_checkpoint_refuses_labels(tiny, tmp_path):
    run = train(load_recipe(tiny), progress=False).run_dir
    res = CliRunner().invoke(app, ["sample", str(run), "-n", "4", "-o", str(tmp_path / "s"), "--label", "digit=3"])
    assert res.exit_code == 2 and "unconditional" in res.output and "Traceback" not in res.output
    with pytest.raises(GanzooError, match="per-class grid needs a conditional generator"):
        ganzoo.class_grid(ganzoo.load_generator(run))


# -- the label classifier ---------------------------------------------------------------------------------
def test_label_classifier_is_accurate_cached_and_scores_a_generator(folders, cond_run):
    from ganzoo.classifier import classifier_for, label_accuracy

    section = load_recipe(recipe({"name": "images", "path": str(folders), "labels": ["folder"]})).data
    model, info, test_images, test_codes, space = classifier_for(section, epochs=40)
    assert info["n_train"] + info["n_test"] == 36 and info["test_accuracy"]["folder"]["accuracy"] == 1.0
    again = classifier_for(section, epochs=40)
    assert again[1]["sha256"] == info["sha256"] and "cache" in again[1]  # read back, not trained again
    G = ganzoo.load_generator(cond_run)
    acc = label_accuracy(G, n=30, seed=0, classifier=(model, info, test_images, test_codes, space))
    assert 0 <= acc["generated"]["folder"]["accuracy"] <= 1 and acc["n_generated"] == 30
    assert acc["classifier"]["sha256"] == info["sha256"] and "held out" in acc["classifier"]["split"]


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, message", [
    ("missing", "data.labels_file tags.csv (in {path}): not in the zip"),
    ("ragged", "line 3: 2 field(s), the header has 3"),
    ("ghost", "1 row(s) name files that are not images in {path} (e.g. faces/99.png)"),
    ("empty column", "column 'eyes' is empty"),
    ("no file column", "no column 'file' (its header: name, hair, eyes)"),
    ("no rows", "a header but no rows"),
    ("conflict", "faces/0.png is listed again with other labels"),
    ("absent label", "data.labels: 'mood' not in dataset 'images'"),
    ("one class", "label 'hair' has only one class"),
])
def test_bad_labels_files_are_one_clear_message(tmp_path, case, message):
    rows = _rows(6)
    path = tmp_path / "t.zip"
    wanted = ["hair"]
    if case == "missing":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("faces/0.png", b"x")
    elif case == "ragged":
        _tagged_zip(path, [rows[0], rows[1][:2], *rows[2:]])
    elif case == "ghost":
        _tagged_zip(path, rows + [("faces/99.png", "red", "grey")], images=[(r[0], r[1]) for r in rows])
    elif case == "empty column":
        _tagged_zip(path, [(f, h, "") for f, h, _ in rows])
    elif case == "no file column":
        _tagged_zip(path, rows, header=("name", "hair", "eyes"))
    elif case == "no rows":
        _tagged_zip(path, [], images=[(r[0], r[1]) for r in rows])
    elif case == "conflict":
        _tagged_zip(path, rows + [("faces/0.png", "blue", "grey")], images=[(r[0], r[1]) for r in rows])
    elif case == "absent label":
        _tagged_zip(path, rows)
        wanted = ["mood"]
    elif case == "one class":
        _tagged_zip(path, [(f, "red", e) for f, _, e in rows])
    r = recipe({"name": "images", "path": str(path), "labels_file": "tags.csv", "labels": wanted})
    r["output"]["dir"] = str(tmp_path / "runs")
    with pytest.raises(GanzooError) as err:
        train(load_recipe(r), progress=False)
    assert message.format(path=path) in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.safetensors"))  # nothing trained


def test_recipe_labels_and_condition_must_go_together(folders):
    with pytest.raises(GanzooError, match=r"condition: data.labels \['folder'\] conditions the model: name how"):
        load_recipe(recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, condition=None))
    with pytest.raises(GanzooError, match="data.labels: condition is set, but no label attribute is named"):
        load_recipe(recipe({"name": "images", "path": str(folders)}, "concat"))
    with pytest.raises(GanzooError, match="condition.name: unknown conditioning 'projektion'.*did you mean 'projection'"):
        load_recipe(recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, "projektion"))


def test_labels_that_change_on_resume_are_refused(folders, tmp_path):
    r = recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, "concat")
    first = train(load_recipe(r), tmp_path / "run", progress=False)
    rng = np.random.default_rng(5)
    (folders / "purple").mkdir()
    for i in range(4):
        Image.fromarray(_image((150, 0, 150), rng)).save(folders / "purple" / f"{i}.png")
    with pytest.raises(GanzooError, match=r"the labels differ from those the model was trained on \(folder: classes added \['purple'\]\)"):
        ganzoo.resume(first.run_dir, overrides=["train.steps=6"], progress=False)
    assert ganzoo.load_checkpoint(first.checkpoint).meta["step"] == 3  # the checkpoint is untouched


def test_projection_needs_a_critic_with_features_and_cbn_a_generator_with_batchnorm(folders):
    r = recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, "projection")
    r["generator"] = {"name": "mlp", "latent_dim": 8, "hidden": [16], "batchnorm": False}
    with pytest.raises(GanzooError, match="has no BatchNorm layers to make conditional; set condition.generator: concat"):
        ganzoo.train(load_recipe(r), progress=False)

    from torch import nn

    class Plain(ganzoo.Architecture):  # a third-party critic that does not split into features() and score()
        name = "plain"

        def build_generator(self, shape):
            raise ValueError("critic only")

        def build_critic(self, shape):
            class C(ganzoo.Critic):
                def __init__(self):
                    super().__init__(shape)
                    self.net = nn.Sequential(nn.Flatten(), nn.Linear(shape.channels * shape.resolution**2, 1))

                def forward(self, x):
                    return self.net(x).view(-1)
            return C()

    class Plugin:
        @staticmethod
        @ganzoo.hookimpl
        def register_architectures(register):
            register(Plain)

    registry = ganzoo.Registry().load_plugins()
    registry.add_plugin(Plugin, name="plain")
    r = recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, "acgan")
    r["critic"] = {"name": "plain"}
    with pytest.raises(GanzooError, match="condition acgan needs a critic that splits into features\\(\\) and score\\(\\)"):
        ganzoo.build_models(load_recipe(r, registry=registry), registry, labels=ganzoo.LabelSpace(("folder",), (("a", "b"),), ((1, 1),)))
    r["condition"] = {"name": "concat"}  # input concatenation needs nothing of the critic
    g, d = ganzoo.build_models(load_recipe(r, registry=registry), registry, labels=ganzoo.LabelSpace(("folder",), (("a", "b"),), ((1, 1),)))
    assert d(torch.zeros(2, 3, 16, 16), torch.zeros(2, 1, dtype=torch.long)).shape == (2,)


def test_eval_of_a_conditional_run_reports_label_accuracy_and_fid_per_class(cond_run, no_network, tmp_path):
    import json

    weights = tiny_feature_network(tmp_path, 16)  # what is scored per class is the point here, not the network
    res = CliRunner().invoke(app, ["eval", str(cond_run), "-n", "8", "--no-prc", "--per-class", "folder", "--n-per-class", "3",
                                   "--weights", weights],
                             env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "label accuracy: folder" in res.output and "the classifier on held-out real images" in res.output
    metrics = json.loads((cond_run / "metrics.json").read_text())
    acc = metrics["label_accuracy"]
    assert acc["n_generated"] == 8 and len(acc["classifier"]["sha256"]) == 64 and acc["classifier"]["n_test"] == 4
    assert set(metrics["per_class"]["classes"]) == {"blue", "green", "red"}
    assert all(v["n_real"] == 12 and v["fid"] > 0 for v in metrics["per_class"]["classes"].values())
    last = json.loads((cond_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["eval"]["label_acc_folder"] == acc["generated"]["folder"]["accuracy"]
