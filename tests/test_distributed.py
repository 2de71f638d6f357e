import json
import os
import subprocess
import sys

import pytest
import torch.distributed as dist
import yaml

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")


def test_two_cpu_processes_with_gloo_train_identical_weights_and_write_once(tiny, tmp_path):
    tiny["objective"] = {"name": "wgan_gp", "n_critic": 2}  # the gradient penalty under DDP
    tiny["train"].update(steps=4, log_every=2, batch_size=4)
    tiny["output"].update(samples=4, grid_every=2)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny))
    run = tmp_path / "runs" / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganzoo", "run", str(recipe), "--run-dir", str(run), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "run.json").read_text())
    assert summary["world_size"] == 2
    ranks = summary["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["steps"] == 4 for r in ranks)  # both ranks trained
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]  # DDP kept them identical
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp"]  # one set of outputs
    steps = [json.loads(s)["step"] for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]  # written once, by rank 0
    assert len(list((run / "samples").glob("[0-9]*.png"))) == 4
    assert len(list((run / "checkpoints").glob("*.safetensors"))) == 1


def test_resume_across_a_change_of_world_size(tiny, tmp_path):
    tiny["train"].update(steps=3, batch_size=4, log_every=1)
    tiny["output"]["samples"] = 0
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ganzoo"]
    one = [sys.executable, "-m", "ganzoo"]
    run = tmp_path / "run"
    # 1 process -> 2 processes -> 1 process
    for launcher, steps, before in ((one, 3, None), (ddp, 5, 1), (one, 7, 2)):
        args = ["run", str(recipe), "-q", "--set", f"train.steps={steps}"]
        args += ["--run-dir", str(run)] if before is None else ["--resume", str(run)]
        done = subprocess.run(launcher + args, capture_output=True, text=True, env=env, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        if before is not None:
            assert f"resuming a {before}-process run on" in done.stderr and "data order" in done.stderr
        summary = json.loads((run / "run.json").read_text())
        assert summary["steps"] == steps
