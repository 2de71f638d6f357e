"""MLflow tracking (optional extra ``ganzoo[mlflow]``): the recipe as params, every logged step and in-training
evaluation as metrics, and the grids, curves, samples grid and report as artifacts.

The default store is local: ``OUTPUT_DIR/mlflow.db`` (SQLite, MLflow's recommended local backend since its
file store went into maintenance) with artifacts under ``OUTPUT_DIR/mlartifacts``; see it with
``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``. A resumed run keeps logging into the same MLflow run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import Field

import ganzoo
from ganzoo import Callback, GanzooError, Params
from ganzoo.recipe import flat_keys


MISSING = "callbacks: mlflow needs MLflow: pip install 'ganzoo[mlflow]' (or pip install mlflow)"


class MLflowParams(Params):
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; default: sqlite:///OUTPUT_DIR/mlflow.db")
    experiment: str = Field("ganzoo", description="experiment name (created if missing)")
    run_name: str | None = Field(None, description="MLflow run name; default: the run folder's name")
    artifacts: bool = Field(True, description="log grids, curves, samples grid and report.html at the end")


class MLflowLogger(Callback):
    name = "mlflow"
    description = "MLflow tracking: recipe as params, losses and evaluations as metrics, images as artifacts"
    Params = MLflowParams
    state_key = "mlflow"

    def __init__(self, params=None):
        super().__init__(params)
        self.run_id = self.client = self.run = None
        self.finished = False

    def state(self) -> dict:
        return {"run_id": self.run_id}

    def load_state(self, state: dict) -> None:
        self.run_id = state.get("run_id")

    def check(self) -> None:
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:
            raise GanzooError(MISSING)

    def on_start(self, run) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise GanzooError(MISSING) from None
        self.run = run
        out = Path(run.recipe.output.dir).resolve()
        uri = self.params.tracking_uri or f"sqlite:///{out / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(self.params.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
            self.params.experiment, artifact_location=(out / "mlartifacts").as_uri() if not self.params.tracking_uri else None)
        if self.run_id is None:  # a new run (a resumed one continues the MLflow run its checkpoint names)
            mlrun = self.client.create_run(experiment_id, run_name=self.params.run_name or run.run_dir.name,
                                           tags={"ganzoo.run_dir": str(run.run_dir.resolve()), "ganzoo.version": ganzoo.__version__})
            self.run_id = mlrun.info.run_id
            from mlflow.entities import Param

            flat = flat_keys(run.recipe.to_dict())  # MLflow params are flat strings
            params = [Param(k, (json.dumps(v) if isinstance(v, (list, tuple)) else str(v))[:6000]) for k, v in flat.items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        else:
            self.client.update_run(self.run_id, status="RUNNING")

    def on_log(self, run, line) -> None:  # every metrics line: losses, speed, evaluations, what callbacks gave run.log
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, run.step) for k, v in line.items() if k != "step"]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_end(self, run) -> None:
        self.finished = True  # the artifacts go up in close(), once the samples and the report are written
        if run.stop is not None:
            self.client.set_tag(self.run_id, "ganzoo.stop_reason", run.stop.reason)

    def close(self) -> None:
        if self.client is None or self.run_id is None:
            return
        if not self.finished:  # interrupted or stopped: resumable, not finished
            self.client.set_terminated(self.run_id, status="KILLED")
            return
        run_dir = self.run.run_dir
        if self.params.artifacts:
            for path in [*sorted((run_dir / "grids").glob("*.png")), run_dir / "curves.png", run_dir / "samples" / "grid.png",
                         run_dir / "report.html"]:
                if path.is_file():
                    self.client.log_artifact(self.run_id, str(path), artifact_path=path.parent.name if path.parent != run_dir else None)
        self.client.set_terminated(self.run_id, status="FINISHED")


@ganzoo.hookimpl
def register_callbacks(register):
    register(MLflowLogger)
