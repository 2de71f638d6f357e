"""Observers: the Python API's own callbacks, stop requests, and the MLflow logger."""

import json
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo import Callback, GanzooError, load_recipe, train


class Recorder(Callback):
    name = "recorder"

    def __init__(self, stop_at=None, kind="end"):
        super().__init__()
        self.calls, self.logged, self.stop_at, self.kind = [], [], stop_at, kind

    def on_start(self, run):
        self.calls.append(("start", run.start, run.total))

    def on_step(self, run, record):
        assert isinstance(record.d_loss, torch.Tensor) and record.d_loss.dim() == 0 and record.step == run.step
        self.calls.append(("step", run.step))
        if run.logged:
            self.logged.append(run.logged["step"])
        if run.step == self.stop_at:
            run.request_stop(self.kind, "the recorder had enough")

    def on_end(self, run):
        self.calls.append(("end", run.step))


def test_python_callbacks_see_every_step_and_the_logged_lines(tiny):
    tiny["train"].update(steps=5, log_every=2)
    rec = Recorder()
    result = train(load_recipe(tiny), progress=False, callbacks=[rec])
    assert rec.calls == [("start", 0, 5), *[("step", s) for s in range(1, 6)], ("end", 5)]
    assert rec.logged == [2, 4, 5] and result.metrics["step"] == 5


def test_a_callback_can_end_a_run_early_with_all_final_outputs(tiny):
    tiny["train"]["steps"] = 6
    result = train(load_recipe(tiny), progress=False, callbacks=[Recorder(stop_at=3)])
    assert result.steps == 3 and ganzoo.load_checkpoint(result.run_dir).meta["step"] == 3
    assert json.loads((result.run_dir / "run.json").read_text())["steps"] == 3
    assert (result.run_dir / "samples" / "00009.png").is_file() and (result.run_dir / "grids" / "step_0000003.png").is_file()


def test_a_callback_error_stop_writes_the_checkpoint_and_raises(tiny):
    tiny["train"]["steps"] = 6
    with pytest.raises(GanzooError, match=r"the recorder had enough; checkpoint of step 2 at .*last.safetensors"):
        train(load_recipe(tiny), Path(tiny["output"]["dir"]) / "r", progress=False, callbacks=[Recorder(stop_at=2, kind="error")])
    assert ganzoo.load_checkpoint(Path(tiny["output"]["dir"]) / "r").meta["step"] == 2


def test_mlflow_logs_params_metrics_and_artifacts_and_a_resume_continues_the_same_run(tiny, tmp_path):
    pytest.importorskip("mlflow", reason='mlflow is not installed (pip install -e ".[mlflow]" in the checkout)')
    from mlflow.tracking import MlflowClient

    tiny["train"].update(steps=4, log_every=2)
    tiny["callbacks"] = [{"name": "mlflow", "experiment": "test"}]
    run_dir = Path(tiny["output"]["dir"]) / "ml"
    train(load_recipe(tiny), run_dir, progress=False)
    client = MlflowClient(tracking_uri=f"sqlite:///{Path(tiny['output']['dir']).resolve() / 'mlflow.db'}")
    (mlrun,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert mlrun.info.status == "FINISHED" and mlrun.data.params["train.steps"] == "4"
    assert [m.step for m in client.get_metric_history(mlrun.info.run_id, "d_loss")] == [2, 4]
    artifacts = {a.path for a in client.list_artifacts(mlrun.info.run_id)}
    assert {"report.html", "curves.png", "grids", "samples"} <= artifacts
    # lengthen the finished run: the same MLflow run goes on
    longer = load_recipe(ganzoo.load_checkpoint(run_dir).recipe, ["train.steps=6"])
    train(longer, run_dir, resume=run_dir, progress=False)
    (again,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert again.info.run_id == mlrun.info.run_id and again.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(mlrun.info.run_id, "d_loss")] == [2, 4, 6]


def test_ragan_trains_on_toyfaces_and_resumes_bit_exactly(tiny, tmp_path):
    tiny["objective"] = {"name": "ragan"}
    tiny["train"]["steps"] = 4
    recipe = load_recipe(tiny)
    whole = train(recipe, tmp_path / "whole", progress=False)
    half = load_recipe(tiny, ["train.steps=2"])
    train(half, tmp_path / "split", progress=False)
    split = train(recipe, tmp_path / "split", resume=tmp_path / "split", progress=False)
    a, b = ganzoo.load_checkpoint(whole.checkpoint).tensors, ganzoo.load_checkpoint(split.checkpoint).tensors
    for key in ("generator", "critic"):
        names = [k for k in a if k.startswith(key + ".")]
        assert names and all(torch.equal(a[k], b[k]) for k in names)


def test_run_log_cannot_overwrite_a_value_ganzoo_logs_itself(tiny, tmp_path):
    from ganzoo.observers import Run

    class Logs(ganzoo.Callback):
        def on_step(self, run, record):
            run.log({"g_loss": 0.0})

    with pytest.raises(ValueError, match=r"'g_loss' is a value ganzoo logs itself.*'my/g_loss'"):
        ganzoo.train(ganzoo.load_recipe(tiny), tmp_path / "run", progress=False, callbacks=[Logs()])
    for key in ("d_loss", "penalty/r1", "lr_g"):
        with pytest.raises(ValueError, match="a value ganzoo logs itself"):
            Run.log(Run.__new__(Run), {key: 1.0})


def test_run_log_in_on_log_is_refused_and_values_given_in_on_end_are_kept(tiny, tmp_path):
    class LateLog(ganzoo.Callback):
        def on_log(self, run, line):
            run.log({"too_late": 1.0})

    with pytest.raises(ValueError, match=r"run.log\('too_late'\) in on_log: this step's line is already written"):
        ganzoo.train(ganzoo.load_recipe(tiny), tmp_path / "a", progress=False, callbacks=[LateLog()])

    class FinalLog(ganzoo.Callback):
        def on_end(self, run):
            run.log({"final_score": 42.0})

    ganzoo.train(ganzoo.load_recipe(tiny), tmp_path / "b", progress=False, callbacks=[FinalLog()])
    lines = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1] == {"step": 3, "final_score": 42.0}  # before, the value was lost
