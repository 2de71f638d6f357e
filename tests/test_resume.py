import copy
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.cli import app

from conftest import copy_run, write_recipe

runner = CliRunner()


def assert_same_checkpoint(a, b):
    a, b = ganzoo.load_checkpoint(a), ganzoo.load_checkpoint(b)
    assert a.meta["step"] == b.meta["step"]
    weights = [k for k in a.tensors if not k.startswith("rng.")]
    assert set(a.tensors) == set(b.tensors) and len(weights) > 20
    different = [k for k in a.tensors if not torch.equal(a.tensors[k], b.tensors[k])]
    assert not different, f"differ after resume: {different[:5]}"
    for key in ("epoch", "batch_index", "rng", "monitor"):
        assert a.meta[key] == b.meta[key], key
    assert a.meta["optimizers"] == b.meta["optimizers"]


# monitor off: the 3-step first leg draws grids at steps 1 and 3 that the 7-step run does not, and with EMA the
# fixed-batch diversity is not monotone, so the monitor's best-diversity record would differ (weights do not)
FULL_KIT = {"objective": {"name": "hinge"}, "critic": {"name": "dcgan", "base_channels": 8, "norm": "none"}, "ema": {"decay": 0.9, "start": 1, "warmup": True},
            "regularizers": [{"name": "spectral_norm"}, {"name": "diffaugment"}, {"name": "r1", "every": 2}],
            "monitor": {"collapse": False}}


@pytest.mark.parametrize("extra", [{"objective": {"name": "wgan_gp", "n_critic": 2}}, {"objective": {"name": "bce_smooth"}}, FULL_KIT],
                         ids=["wgan_gp", "bce_smooth", "hinge+sn+diffaugment+r1+ema"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tiny, tmp_path, extra):
    tiny.update(copy.deepcopy(extra))
    tiny["data"]["augment"] = {"hflip": True, "brightness": 0.3}  # augmentation draws from the torch RNG too
    tiny["train"]["steps"] = 7  # 7 x n_critic batches of 8 from 64 images: crosses epoch boundaries
    tiny["output"]["samples"] = 0
    full = train(load_recipe(tiny), tmp_path / "full", progress=False)
    first = train(load_recipe(tiny, ["train.steps=3"]), tmp_path / "split", progress=False)
    resumed = train(load_recipe(tiny), tmp_path / "split", resume=first.run_dir, progress=False)
    assert resumed.steps == 7
    assert_same_checkpoint(full.checkpoint, resumed.checkpoint)
    steps = [yaml.safe_load(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 8))
    summary = yaml.safe_load((tmp_path / "split" / "run.json").read_text())  # speed and time both of every segment
    per_step = 8 * (2 if extra["objective"]["name"] == "wgan_gp" else 1)  # batch 8 x critic steps
    assert summary["images_per_second"] == pytest.approx(
        7 * per_step / (summary["seconds_total"] - summary["eval_seconds_total"]), rel=0.02, abs=0.06)
    assert summary["images_per_second_last_segment"] > 0


def test_sigint_checkpoints_then_resume_matches_uninterrupted(tiny, tmp_path):
    tiny["train"].update(steps=80, log_every=5)
    tiny["output"]["samples"] = 0
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny))
    env = dict(os.environ, COLUMNS="200")
    run = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "run", str(recipe), "--run-dir", str(run), "-q"],
                            stderr=subprocess.PIPE, text=True, env=env)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 60
    while not (metrics.exists() and metrics.stat().st_size > 0) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, stderr
    assert "stopped: interrupted at step" in stderr and "error:" not in stderr and f"ganzoo resume {run}" in stderr and "Traceback" not in stderr
    stopped_at = ganzoo.load_checkpoint(run).meta["step"]
    assert 0 < stopped_at < 80
    done = CliRunner().invoke(app, ["resume", str(run), "-q"], env={"COLUMNS": "200"})  # the command it advised
    assert done.exit_code == 0, done.output
    full = train(load_recipe(tiny), tmp_path / "full", progress=False)
    assert_same_checkpoint(full.checkpoint, run / "checkpoints" / "last.safetensors")


CHILD = """
import sys, torch
from ganzoo.checkpoint import save_checkpoint
g = torch.nn.Linear(1000, 2000); d = torch.nn.Linear(10, 1)
i = 0
while True:
    with torch.no_grad():
        g.weight.fill_(i)
    save_checkpoint(sys.argv[1], generator=g, critic=d, meta={"recipe": {}, "step": i})
    print(i, flush=True)
    i += 1
"""


def test_kill_9_during_checkpoint_writes_never_leaves_a_broken_checkpoint(tmp_path):
    path = tmp_path / "ckpt" / "last.safetensors"
    rnd = random.Random(0)
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(path)], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one checkpoint written
        time.sleep(rnd.uniform(0.0, 0.3))
        proc.kill()
        proc.wait()
        ckpt = ganzoo.load_checkpoint(path)  # must always load, whatever the moment of the kill
        step = ckpt.meta["step"]
        assert torch.all(ckpt.tensors["generator.weight"] == step)
        assert len(list(path.parent.glob(".*.tmp"))) <= 2  # at most the writes in flight; older ones are cleaned


def test_run_folder_is_never_overwritten_without_force(tiny, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny))
    runner = CliRunner()
    run = tmp_path / "run"
    assert runner.invoke(app, ["run", str(path), "--run-dir", str(run), "-q"]).exit_code == 0
    before = (run / "checkpoints" / "last.safetensors").read_bytes()
    res = runner.invoke(app, ["run", str(path), "--run-dir", str(run), "-q"])
    assert res.exit_code == 2 and "exists and is not empty" in res.output and "--force" in res.output
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == before
    res = runner.invoke(app, ["run", str(path), "--run-dir", str(run), "--force", "-q", "--set", "seed=5"])
    assert res.exit_code == 0 and (run / "checkpoints" / "last.safetensors").read_bytes() != before


def test_resume_errors_are_clear(tiny, tmp_path):
    tiny["output"]["samples"] = 0
    done = train(load_recipe(tiny), tmp_path / "run", progress=False)
    with pytest.raises(GanzooError, match="is at step 3, the recipe's length is 3: nothing to resume"):
        ganzoo.resume(done.run_dir, progress=False)
    other = copy.deepcopy(tiny)
    other["generator"]["base_channels"] = 16
    other["train"]["steps"] = 5
    with pytest.raises(GanzooError, match="generator weight .* has shape"):
        train(load_recipe(other), done.run_dir, resume=done.run_dir, progress=False)
    tiny["train"]["steps"] = 5
    tiny["optim"] = {"critic": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}
    with pytest.raises(GanzooError, match="critic optimizer state does not match"):
        train(load_recipe(tiny), done.run_dir, resume=done.run_dir, progress=False)


def test_keep_every_keeps_numbered_checkpoints_beside_last(tiny, tmp_path):
    tiny["train"].update(steps=5, keep_every=2)
    tiny["output"]["samples"] = 0
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    names = sorted(p.name for p in (run / "checkpoints").glob("*.safetensors"))
    assert names == ["last.safetensors", "step_0000002.safetensors", "step_0000004.safetensors"]
    assert ganzoo.load_checkpoint(run / "checkpoints" / "step_0000004.safetensors").meta["step"] == 4


def test_resume_from_an_older_checkpoint_drops_later_metrics(tiny, tmp_path):
    tiny["train"].update(steps=6, log_every=1, keep_every=3)
    tiny["output"]["samples"] = 0
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 7, "d_lo')  # a half-written line, as after a crash
    older = ganzoo.load_checkpoint(run / "checkpoints" / "step_0000003.safetensors")
    train(load_recipe(tiny), run, resume=older, progress=False)
    steps = [yaml.safe_load(s)["step"] for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert_same_checkpoint(run / "checkpoints" / "last.safetensors", train(load_recipe(tiny), tmp_path / "full", progress=False).checkpoint)


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


def test_a_checkpoint_with_non_finite_weights_is_not_resumed(finished_run, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    run = copy_run(finished_run, tmp_path / "run")
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
    res = runner.invoke(app, ["run", write_recipe(tmp_path, tiny), "--run-dir", str(tmp_path / "run"), "-q"], env={"COLUMNS": "200"})
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



def test_compare_checkpoints_tells_identical_runs_from_different_ones(tmp_path, tiny):
    tiny["train"]["steps"] = 2
    a = ganzoo.train(ganzoo.load_recipe(tiny), tmp_path / "a", progress=False)
    b = ganzoo.train(ganzoo.load_recipe(tiny), tmp_path / "b", progress=False)
    c = ganzoo.train(ganzoo.load_recipe(tiny, ["seed=2"]), tmp_path / "c", progress=False)
    same = ganzoo.compare_checkpoints(a.run_dir, b.checkpoint)
    assert same["same"] and not same["differ"] and not same["only_a"] and not same["only_b"]
    assert (tmp_path / "a" / "checkpoints" / "last.safetensors").read_bytes() != b.checkpoint.read_bytes()  # digests differ
    other = ganzoo.compare_checkpoints(a.run_dir, c.run_dir)
    assert other["differ"] and all(isinstance(v, float) and v > 0 for v in other["differ"].values())
    everything = ganzoo.compare_checkpoints(a.run_dir, b.run_dir, prefixes=())
    assert any(n.startswith("optim.") for n in everything["same"])


@pytest.mark.parametrize("signum", [signal.SIGHUP])  # SIGTERM: the same handler (stopping.STOP_SIGNALS)
def test_a_closed_terminal_or_a_kill_ends_the_run_with_a_checkpoint_as_ctrl_c_does(tiny, tmp_path, signum):
    tiny["train"].update(steps=300, log_every=5, checkpoint_every=None)
    tiny["output"]["samples"] = 0
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "run", str(recipe), "--run-dir", str(run), "-q"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, COLUMNS="200"))
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 60
    while not (metrics.exists() and metrics.stat().st_size > 0) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert "Traceback" not in stderr and "stopped: interrupted at step" in stderr, stderr
    assert 0 < ganzoo.load_checkpoint(run).meta["step"] < 300  # the steps since the start are kept, not lost


def test_threads_may_change_on_resume_and_a_busy_machine_is_said(tiny, tmp_path, monkeypatch):
    import importlib

    from conftest import captured_log

    busy_machine_note = importlib.import_module("ganzoo.train").busy_machine_note

    tiny["train"].update(steps=2)
    tiny["output"]["samples"] = 0
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    done = ganzoo.resume(run, progress=False, overrides=["train.steps=3", "train.threads=2"])  # threads change no number
    assert done.steps == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (7.5, 7.0, 6.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    with captured_log() as messages:
        busy_machine_note()
    assert any("the machine is busy (load 7.5 on 4 cores)" in m and "train.threads=1" in m for m in messages), messages


def test_a_misspelt_resume_key_gets_its_did_you_mean(tiny, tmp_path):
    tiny["train"].update(steps=2)
    tiny["output"]["samples"] = 0
    run = train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir
    with pytest.raises(ganzoo.GanzooError, match="did you mean 'threads'"):
        ganzoo.resume(run, progress=False, overrides=["train.treads=1"])


def test_sigterm_during_sample_says_what_was_written(tmp_path):
    from conftest import TINY

    r = dict(TINY, output={"samples": 0, "tensorboard": False, "dir": str(tmp_path)})
    run = train(load_recipe(r), tmp_path / "run", progress=False).run_dir
    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "sample", str(run), "-n", "200000", "-o", str(tmp_path / "s")],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, COLUMNS="200"))
    deadline = time.time() + 60
    while not (tmp_path / "s").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr and ("stopped: interrupted" in stderr or "aborted" in stderr), stderr
