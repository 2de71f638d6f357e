"""What can be checked of device selection and mixed precision without a GPU (bench/gpu_check.py does the rest on one)."""

import contextlib

import pytest
import torch

import ganzoo
from ganzoo.distributed import pick_device
from ganzoo.errors import GanzooError
from ganzoo.recipe import load_recipe
from ganzoo.train import LossScaling, train

from conftest import captured_log

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of a machine without CUDA")


@no_cuda
def test_device_auto_is_the_cpu_without_cuda_and_cuda_asked_for_is_a_clear_error():
    assert pick_device("auto") == torch.device("cpu") and pick_device("cpu") == torch.device("cpu")
    with pytest.raises(GanzooError, match="train.device is 'cuda' but no CUDA device is available"):
        pick_device("cuda")
    with pytest.raises(GanzooError, match="unknown device 'gpu'"):
        pick_device("gpu")


def test_a_recipe_names_only_known_devices_and_precisions(tiny):
    with pytest.raises(GanzooError, match=r"train.device"):
        load_recipe(tiny, ["train.device=gpu"])
    with pytest.raises(GanzooError, match=r"train.precision"):
        load_recipe(tiny, ["train.precision=fp8"])
    assert load_recipe(tiny, ["train.precision=fp16"]).train.precision == "fp16"


@no_cuda
def test_a_cuda_recipe_on_a_cpu_machine_stops_before_making_a_run_folder(tiny, tmp_path):
    with pytest.raises(GanzooError, match="no CUDA device is available"):
        train(load_recipe(tiny, ["train.device=cuda"]), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@no_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_a_cpu_trains_in_fp32_and_says_so(tiny, tmp_path, monkeypatch, precision):
    opened = []
    real_autocast = torch.autocast

    def spy(*args, **kwargs):
        opened.append((args, kwargs))
        return real_autocast(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy)
    with captured_log() as messages:
        result = train(load_recipe(tiny, [f"train.precision={precision}"]), tmp_path / "amp", progress=False)
    warning = [m for m in messages if m.startswith("warning: train.precision")]
    assert warning == [f"warning: train.precision {precision} is mixed precision for CUDA: on the cpu this run trains in fp32 "
                       "(autocast off; low-precision matmuls are far slower than fp32 on most CPUs)"]
    assert opened == []  # no autocast region at all: fp32 throughout
    assert "grad_scalers" not in ganzoo.load_checkpoint(result.checkpoint).meta  # no fp16 loss scaling on a CPU
    # the same weights as the fp32 run of the same recipe: the precision setting changed nothing on the CPU
    fp32 = train(load_recipe(tiny), tmp_path / "fp32", progress=False)
    a, b = ganzoo.load_checkpoint(result.checkpoint), ganzoo.load_checkpoint(fp32.checkpoint)
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors if k.startswith(("generator.", "critic.")))


def test_the_loss_scalers_step_the_optimizers_and_resume_exactly(tiny, tmp_path):
    """fp16's path through the loop (scaled backward, scaler steps, scaler state in checkpoints), on the CPU in fp32:
    the same weights as without scaling (a power-of-two scale is exact), and 2 + 2 resumed steps equal 4 straight."""
    tiny["train"]["steps"] = 4
    plain = train(load_recipe(tiny), tmp_path / "plain", progress=False)
    straight = train(load_recipe(tiny), tmp_path / "straight", progress=False, callbacks=[LossScaling("cpu")])
    half = train(load_recipe(tiny, ["train.steps=2"]), tmp_path / "resumed", progress=False, callbacks=[LossScaling("cpu")])
    saved = ganzoo.load_checkpoint(half.checkpoint).meta["grad_scalers"]
    assert saved["critic"]["_growth_tracker"] == 2 and saved["generator"]["scale"] == 65536.0
    resumed = train(load_recipe(tiny), tmp_path / "resumed", resume=tmp_path / "resumed", progress=False,
                    callbacks=[LossScaling("cpu")])
    assert resumed.steps == 4
    final = {name: ganzoo.load_checkpoint(r.checkpoint) for name, r in (("plain", plain), ("straight", straight), ("resumed", resumed))}
    assert final["resumed"].meta["grad_scalers"]["critic"]["_growth_tracker"] == 4  # restored, then counted on
    keys = [k for k in final["plain"].tensors if k.startswith(("generator.", "critic."))]
    assert keys
    for k in keys:
        assert torch.equal(final["straight"].tensors[k], final["resumed"].tensors[k]), k
        assert torch.equal(final["plain"].tensors[k], final["straight"].tensors[k]), k


def test_loss_scaling_is_added_only_for_fp16_on_cuda(tiny, tmp_path):
    from ganzoo.train import observers_for

    seen = []

    class Look(ganzoo.Callback):
        def on_start(self, run):
            seen.append([type(o).__name__ for o in observers_for(run, ganzoo.get_registry(), False)])

    with contextlib.suppress(GanzooError):
        train(load_recipe(tiny, ["train.precision=fp16", "train.steps=1"]), tmp_path / "r", progress=False, callbacks=[Look()])
    assert seen and ("LossScaling" in seen[0]) == torch.cuda.is_available()


@no_cuda
def test_the_gpu_check_says_in_one_line_that_there_is_no_gpu_and_fails():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device here") and "nothing checked" in lines[0]


def test_the_gpu_check_runs_its_steps_on_the_cpu_as_a_self_test(tmp_path, tiny):
    """--device cpu: the same speed and resume steps on a tiny recipe (a test of the script, not of a GPU)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    tiny["data"]["size"] = 32
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny))
    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(script), "--device", "cpu", "--recipe", str(recipe), "--batch-size", "4", "--steps", "3",
                           "--warmup", "1", "--resume-steps", "1", "--modes", "fp32", "fp16+cl", "--no-torchrun", "--out", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["mode"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"fp32", "fp16+cl"}
    for r in rows.values():
        assert r["img_per_s"] > 0 and r["timed_steps"] == 2 and r["resume_exact"] and r["straight_runs_identical"]
    assert "| fp32 |" in proc.stdout and "| fp16+cl |" in proc.stdout
