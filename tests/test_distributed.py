import json
import os
import subprocess
import sys

import pytest
import torch.distributed as dist
import yaml
from typer.testing import CliRunner

import ganzoo
from ganzoo.cli import app

from conftest import captured_log

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")


def test_gloo_processes_train_identical_weights_write_once_and_resume_across_a_change_of_world_size(tiny, tmp_path):
    """1 process -> 2 processes (DDP over gloo, with the gradient penalty) -> 1 process, resumed each time."""
    tiny["objective"] = {"name": "wgan_gp", "n_critic": 2}  # the gradient penalty under DDP
    tiny["train"].update(steps=2, batch_size=4, log_every=2)
    tiny["output"].update(samples=4, grid_every=2)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ganzoo"]
    run = tmp_path / "runs" / "ddp"
    ganzoo.train(ganzoo.load_recipe(recipe), run, progress=False)  # 1 process (in this one)
    done = subprocess.run(ddp + ["run", str(recipe), "-q", "--set", "train.steps=6", "--resume", str(run)],
                          capture_output=True, text=True, env=env, timeout=240)  # -> 2 processes
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming a 1-process run on" in done.stderr and "data order" in done.stderr
    summary = json.loads((run / "run.json").read_text())
    assert summary["steps"] == 6 and summary["world_size"] == 2
    ranks = summary["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["steps"] == 4 for r in ranks)  # both ranks trained this segment
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]  # DDP kept them identical
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp"]  # one set of outputs
    steps_logged = [json.loads(s)["step"] for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == [2, 4, 6]  # written once, by rank 0
    assert len(list((run / "samples").glob("[0-9]*.png"))) == 4
    assert len(list((run / "checkpoints").glob("*.safetensors"))) == 1
    with captured_log() as log:  # -> 1 process again (in this one)
        res = CliRunner().invoke(app, ["resume", str(run), "-q", "--set", "train.steps=8"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    said = " ".join(log)
    assert "resuming a 2-process run on" in said and "data order" in said, log
    assert json.loads((run / "run.json").read_text())["steps"] == 8
