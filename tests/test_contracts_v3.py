"""The third round of the contracts: generators with noise inputs resume bit-exactly, the pre-flight check tolerates
a forward that cannot run on `meta`, observers log their own metrics and stop with a reason, generator-side
regularizers, w-space truncation, swapping a component on the command line, --debug."""

import json
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import ganzoo
from ganzoo import Callback, Generator, GeneratorBuilder, Params, Regularizer
from ganzoo.cli import app
from ganzoo.registry import Registry

from conftest import captured_log
from test_resume import assert_same_checkpoint


class NoisyGenerator(Generator):
    """A StyleGAN-like toy: a mapping network to w, per-pixel noise inputs from torch's global RNG, and w_avg."""

    def __init__(self, shape, own_rng: bool = False):
        super().__init__(shape)
        r, c = shape.resolution, shape.channels
        self.map = nn.Sequential(nn.Linear(shape.latent_dim, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16))
        self.to_img = nn.Linear(16, c * r * r)
        self.noise_weight = nn.Parameter(torch.full((1,), 0.5))
        self.register_buffer("w_avg", torch.zeros(16))
        self.own = torch.Generator().manual_seed(0) if own_rng else None

    def mapping(self, z):
        w = self.map(z)
        if self.training:
            self.w_avg.copy_(self.w_avg.lerp(w.detach().mean(0), 0.01))
        return w

    def synthesis(self, w):
        s = self.shape
        x = self.to_img(w).view(len(w), s.channels, s.resolution, s.resolution)
        noise = torch.randn(x.shape, generator=self.own, device=x.device) if self.own is not None else torch.randn_like(x)
        return torch.tanh(x + self.noise_weight * noise)

    def forward(self, z):
        return self.synthesis(self.mapping(z))


class NoisyParams(Params):
    own_rng: bool = False


class Noisy(GeneratorBuilder):
    name = "noisy"
    description = "a toy generator with noise inputs and a w-space"
    Params = NoisyParams

    def build(self, shape):
        return NoisyGenerator(shape, self.params.own_rng)


class PathLengthParams(Params):
    weight: float = 0.5


class PathLength(Regularizer):
    """A tiny generator-side penalty: the squared norm of d(images . noise)/dw, as path-length regularization does."""

    name = "toy_path_length"
    target = "generator"
    every = 2
    Params = PathLengthParams

    def generator_penalty(self, generator, z, fake):
        w = generator.mapping(z)
        images = generator.synthesis(w)
        (grad,) = torch.autograd.grad((images * torch.ones_like(images)).sum(), w, create_graph=True)
        return self.params.weight * self.every * grad.square().sum(1).mean()


class LogAndStop(Callback):
    name = "log_and_stop"

    def on_step(self, run, record):
        run.log({"my_metric": 10.0 * run.step})
        if run.step == 4:
            run.request_stop("end", "my_metric reached 40")


class Plugin:
    @staticmethod
    @ganzoo.hookimpl
    def register_generators(register):
        register(Noisy)

    @staticmethod
    @ganzoo.hookimpl
    def register_regularizers(register):
        register(PathLength)

    @staticmethod
    @ganzoo.hookimpl
    def register_callbacks(register):
        register(LogAndStop)


@pytest.fixture
def registry():
    reg = Registry().load_plugins()
    reg.add_plugin(Plugin, name="test_plugin", package="test-plugin")
    return reg


def test_a_noise_input_generator_resumes_bit_exactly(tiny, tmp_path, registry):
    tiny["generator"] = {"name": "noisy", "latent_dim": 8}
    tiny["ema"] = {"decay": 0.9}
    tiny["monitor"] = {"collapse": False}  # its diversity baseline is drawn from grids, which differ between the two
    tiny["output"].update(samples=0, grid_size=4)
    tiny["train"]["steps"] = 6
    straight = ganzoo.train(ganzoo.load_recipe(tiny, registry=registry), tmp_path / "straight", registry=registry, progress=False)
    # a first leg of 3 steps draws grids at other steps (its 25/50/75/100 %) than the 6-step run: the grids' noise
    # must not reach training's random stream
    tiny["train"]["steps"] = 3
    ganzoo.train(ganzoo.load_recipe(tiny, registry=registry), tmp_path / "legs", registry=registry, progress=False)
    resumed = ganzoo.resume(tmp_path / "legs", registry=registry, progress=False, overrides=["train.steps=6"])
    assert_same_checkpoint(straight.checkpoint, resumed.checkpoint)


def test_preflight_tolerates_a_forward_that_cannot_run_on_meta(tiny, tmp_path, registry):
    tiny["generator"] = {"name": "noisy", "latent_dim": 8, "own_rng": True}  # its own torch.Generator: not on meta
    tiny["train"]["steps"] = 1
    tiny["output"]["samples"] = 0
    recipe = ganzoo.load_recipe(tiny, registry=registry)
    counts = ganzoo.models.preflight(recipe, registry)
    assert counts["generator"] > 0
    assert ganzoo.train(recipe, tmp_path / "run", registry=registry, progress=False).steps == 1


def test_a_plugin_metric_and_a_stop_reason_reach_every_output(tiny, tmp_path, registry):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tiny["callbacks"] = [{"name": "log_and_stop"}]
    tiny["train"].update(steps=10, log_every=2)
    tiny["output"].update(samples=4, tensorboard=True)
    with captured_log() as log:
        result = ganzoo.train(ganzoo.load_recipe(tiny, registry=registry), tmp_path / "run", registry=registry, progress=False)
    run = result.run_dir
    assert result.steps == 4
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [x for x in lines if "my_metric" in x]
    assert [(x["step"], x["my_metric"]) for x in logged] == [(2, 20.0), (4, 40.0)]  # in the line of the step it was given
    events = EventAccumulator(str(run / "tb")).Reload()
    assert [e.value for e in events.Scalars("my_metric")] == [20.0, 40.0]
    assert any("stopped at step 4/10: my_metric reached 40" in m for m in log)
    summary = json.loads((run / "run.json").read_text())
    assert summary["stop"] == {"kind": "end", "reason": "my_metric reached 40", "step": 4}
    assert summary["final"]["my_metric"] == 40.0
    report = (run / "report.html").read_text()
    assert "my_metric reached 40" in report and "my_metric 40" in report


def test_events_reach_observers_in_order(tiny, tmp_path):
    seen = []

    class Watch(Callback):
        name = "watch"

        def on_step(self, run, record):
            seen.append(("step", run.step, sorted(record.values)))

        def on_log(self, run, line):
            seen.append(("log", line["step"]))

        def on_grid(self, run, step, images):
            seen.append(("grid", step, tuple(images.shape)))

        def on_end(self, run):
            seen.append(("end", run.step))

        def close(self):
            seen.append(("close",))

    tiny["train"].update(steps=2, log_every=2)
    tiny["output"].update(samples=0, grid_size=4)
    ganzoo.train(ganzoo.load_recipe(tiny), tmp_path / "run", progress=False, callbacks=[Watch()])
    assert ("step", 1, ["d_fake", "d_loss", "d_real", "g_loss", "penalty"]) in seen
    # grids at 0, 50 and 100 %: the grid observer comes before the callbacks, the metrics line after every on_step
    assert [s[:2] for s in seen] == [("grid", 0), ("grid", 1), ("step", 1), ("grid", 2), ("step", 2), ("log", 2), ("end", 2), ("close",)]


def test_a_generator_side_regularizer_is_applied_and_logged_under_its_name(tiny, tmp_path, registry):
    tiny["generator"] = {"name": "noisy", "latent_dim": 8}
    tiny["regularizers"] = [{"name": "toy_path_length", "weight": 0.5}, {"name": "r1", "every": 1, "gamma": 0.1}]
    tiny["train"].update(steps=4, log_every=1)
    tiny["output"]["samples"] = 0
    result = ganzoo.train(ganzoo.load_recipe(tiny, registry=registry), tmp_path / "a", registry=registry, progress=False)
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines() if "d_loss" in x]
    assert [x["step"] for x in lines if x.get("penalty/toy_path_length", 0) > 0] == [2, 4]  # every: 2
    assert all(x["penalty/r1"] > 0 and math.isclose(x["penalty"], x["penalty/r1"], rel_tol=1e-6) for x in lines)
    tiny["regularizers"] = [{"name": "toy_path_length", "weight": 0.0}, {"name": "r1", "every": 1, "gamma": 0.1}]
    other = ganzoo.train(ganzoo.load_recipe(tiny, registry=registry), tmp_path / "b", registry=registry, progress=False)
    a, b = ganzoo.load_checkpoint(result.checkpoint), ganzoo.load_checkpoint(other.checkpoint)
    assert not torch.equal(a.tensors["generator.map.0.weight"], b.tensors["generator.map.0.weight"])  # it reached G's step


def test_w_space_truncation_pulls_samples_toward_the_average(registry):
    shape = ganzoo.ImageShape(resolution=8, channels=1, latent_dim=8)
    torch.manual_seed(0)
    G = NoisyGenerator(shape).eval()
    G.w_avg.copy_(torch.randn(16))
    with torch.no_grad():
        G.noise_weight.zero_()
        center = ganzoo.sampling.to_uint8(G.synthesis(G.w_avg[None])).float()
    spread = {}
    for psi in (None, 0.5, 0.0):
        images = ganzoo.generate(G, 16, seed=3, truncation=psi).as_subclass(torch.Tensor).float()
        spread[psi] = (images - center).abs().mean().item()
    assert spread[0.0] <= 0.5 and spread[0.5] < spread[None]  # psi 0: the average image itself
    again = ganzoo.generate(G, 16, seed=3, truncation=0.5)
    assert torch.equal(again, ganzoo.generate(G, 16, seed=3, truncation=0.5))


def test_set_swaps_a_component_with_its_own_defaults_and_null_removes_a_key(tiny, tmp_path):
    import yaml

    tiny["objective"] = {"name": "bce_smooth", "real_label": [0.8, 1.0]}
    tiny["ema"] = {"decay": 0.99}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny))
    r = ganzoo.load_recipe(path, ["objective=hinge"])
    assert r.to_dict()["objective"] == {"name": "hinge"}
    r = ganzoo.load_recipe(path, ["objective.name=bce"])
    assert r.to_dict()["objective"]["name"] == "bce"
    r = ganzoo.load_recipe(path, ["generator={name: resnet, base_channels: 8}"])
    assert r.generator.latent_dim == 8 and r.to_dict()["generator"]["base_channels"] == 8  # core keys stay
    r = ganzoo.load_recipe(path, ["objective.real_label=null", "ema.decay=null", "eval.n_real=null"])
    assert r.to_dict()["objective"]["real_label"] == [0.7, 1.12] and r.ema.decay is None and r.eval.n_real is None
    r = ganzoo.load_recipe(path, ["objective={fake_label: [0.0, 0.2]}"])  # the same component: a merge
    assert r.to_dict()["objective"]["real_label"] == [0.8, 1.0] and r.to_dict()["objective"]["fake_label"] == [0.0, 0.2]


def test_debug_shows_a_plugins_traceback(tiny, tmp_path, monkeypatch):
    import yaml

    class Boom(Callback):
        name = "boom"

        def on_start(self, run):
            raise ZeroDivisionError("plugin bug")

    class P:
        @staticmethod
        @ganzoo.hookimpl
        def register_callbacks(register):
            register(Boom)

    reg = Registry().load_plugins()
    reg.add_plugin(P, name="boom_plugin", package="boom-pkg")
    import importlib

    for module in ("ganzoo.registry", "ganzoo.recipe", "ganzoo.train", "ganzoo.models"):
        monkeypatch.setattr(importlib.import_module(module), "get_registry", lambda: reg)
    tiny["callbacks"] = [{"name": "boom"}]
    tiny["output"]["samples"] = 0
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny))
    res = CliRunner().invoke(app, ["run", str(path), "-q"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "Traceback" not in res.output and "on_start raised ZeroDivisionError" in res.output
    assert "(its traceback: ganzoo --debug COMMAND ...)" in res.output  # where --debug goes, said where it is needed
    res = CliRunner().invoke(app, ["--debug", "run", str(path), "-q", "--run-dir", str(tmp_path / "r2")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "Traceback" in res.output and "ZeroDivisionError: plugin bug" in res.output


def test_an_architecture_of_the_earlier_contract_still_trains_and_a_notebook_regularizer_needs_no_registry(tiny, tmp_path):
    from ganzoo_plugins.dcgan import DCGANCritic, DCGANCriticParams, DCGANGenerator, DCGANGeneratorParams

    class Old(ganzoo.Architecture):  # one class for both roles, as plugins were written before
        name = "old_family"
        GeneratorParams, CriticParams = DCGANGeneratorParams, DCGANCriticParams

        def build_generator(self, shape):
            return DCGANGenerator(self.generator_params, shape)

        def build_critic(self, shape):
            return DCGANCritic(self.critic_params, shape)

    class P:
        @staticmethod
        @ganzoo.hookimpl
        def register_architectures(register):
            register(Old)

    reg = Registry().load_plugins()
    reg.add_plugin(P, name="old_plugin", package="old-pkg")
    assert reg.get("generator", "old_family").cls.legacy is Old and reg.get("critic", "old_family").cls.legacy is Old
    tiny["generator"] = {"name": "old_family", "latent_dim": 8, "base_channels": 8}
    tiny["critic"] = {"name": "old_family", "base_channels": 4}
    tiny["train"]["steps"] = 2
    tiny["output"]["samples"] = 0
    recipe = ganzoo.load_recipe(tiny, registry=reg)
    result = ganzoo.train(recipe, tmp_path / "run", registry=reg, progress=False)
    assert result.steps == 2 and ganzoo.load_generator(result.run_dir, registry=reg).shape.resolution == 16

    class Plain(Regularizer):  # made in a notebook, never registered
        name = "plain"

        def setup(self, critic):
            critic.seen = True

    _, D = ganzoo.build_models(recipe, reg, regularizers=[Plain()])
    assert D.seen
