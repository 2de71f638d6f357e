import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.cli import app

OBJECTIVES = {
    "bce": {"name": "bce"},
    "bce_smooth": {"name": "bce_smooth", "real_label": [0.7, 1.12], "fake_label": [0.0, 0.3]},
    "wgan_clip": {"name": "wgan_clip", "n_critic": 2},
    "wgan_gp": {"name": "wgan_gp", "n_critic": 2},
}


def test_tiny_run_writes_checkpoint_samples_grid_and_recipe(tiny):
    result = train(load_recipe(tiny), progress=False)
    run = result.run_dir
    assert run == Path(tiny["output"]["dir"]) / "tiny"
    assert (run / "checkpoints" / "last.safetensors").is_file() and (run / "checkpoints" / "last.json").is_file()
    pngs = sorted((run / "samples").glob("[0-9]*.png"))
    assert len(pngs) == 10 and (run / "samples" / "grid.png").is_file()
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved["generator"]["base_channels"] == 8 and resolved["critic"]["norm"] == "batch"
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3]
    assert result.steps == 3 and result.images_per_second > 0
    # a second run of the same recipe never reuses the folder
    assert train(load_recipe(tiny), progress=False).run_dir != run


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_trains_and_changes_both_networks(tiny, name):
    tiny["objective"] = OBJECTIVES[name]
    tiny["output"]["samples"] = 0
    recipe = load_recipe(tiny)
    torch.manual_seed(tiny["seed"])
    G0, D0 = ganzoo.build_models(recipe)
    result = train(recipe, progress=False)
    G, D, _, ckpt = ganzoo.load_models(result.checkpoint)
    for before, after in ((G0, G), (D0, D)):  # parameters, not BatchNorm buffers (forward passes alone change those)
        changed = [not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters())]
        assert sum(changed) >= len(changed) // 2
    if name == "wgan_clip":
        assert all(p.abs().max() <= 0.01 + 1e-7 for p in D.parameters())
    n_critic = OBJECTIVES[name].get("n_critic", 1)
    assert ckpt.meta["step"] == 3 and ckpt.meta["batch_index"] == 3 * n_critic  # one fresh real batch per critic step
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())


def test_same_seed_same_weights(tiny):
    tiny["output"]["samples"] = 0
    a = ganzoo.load_checkpoint(train(load_recipe(tiny), progress=False).checkpoint)
    b = ganzoo.load_checkpoint(train(load_recipe(tiny), progress=False).checkpoint)
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


def test_optimizers_follow_the_recipe_or_the_objective_default(tiny):
    tiny["objective"] = {"name": "wgan_clip", "n_critic": 1}
    tiny["output"]["samples"] = 0
    ckpt = ganzoo.load_checkpoint(train(load_recipe(tiny), progress=False).checkpoint)
    group = ckpt.meta["optimizers"]["critic"]["param_groups"][0]
    assert group["lr"] == 5e-5 and "alpha" in group  # RMSprop, the objective's default
    tiny["optim"] = {"generator": {"name": "adam", "lr": 0.001, "betas": [0.0, 0.99]}}
    ckpt = ganzoo.load_checkpoint(train(load_recipe(tiny), progress=False).checkpoint)
    group = ckpt.meta["optimizers"]["generator"]["param_groups"][0]
    assert group["lr"] == 0.001 and group["betas"] == [0.0, 0.99]


def test_checkpoint_round_trip_restores_models_and_optimizers(tiny):
    tiny["output"]["samples"] = 0
    result = train(load_recipe(tiny), progress=False)
    G, D, recipe, ckpt = ganzoo.load_models(result.run_dir)  # a run directory works too
    assert ckpt.path == result.checkpoint and recipe.to_dict() == load_recipe(tiny).to_dict()
    opt = recipe.optim.generator or ganzoo.OptimizerSpec()
    from ganzoo.checkpoint import restore_optimizer

    o = opt.build(G.parameters())
    restore_optimizer(o, ckpt, "generator")
    assert int(o.state_dict()["state"][0]["step"]) == 3
    assert ckpt.meta["versions"]["torch"] == torch.__version__
    raw = Path(result.checkpoint).read_bytes()
    assert b"pickle" not in raw[:200] and raw[8:9] == b"{"  # safetensors: u64 header length, then JSON


def test_sample_cli_writes_n_pngs_and_grid_matching_the_python_api(tiny, tmp_path):
    tiny["output"]["samples"] = 0
    result = train(load_recipe(tiny), progress=False)
    out = tmp_path / "samples"
    res = CliRunner().invoke(app, ["sample", str(result.checkpoint), "-n", "12", "-o", str(out), "--seed", "5", "--threshold", "0"])
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("[0-9]*.png"))
    assert len(files) == 12 and (out / "grid.png").is_file()
    from ganzoo.sampling import read_png

    expected = ganzoo.generate(ganzoo.load_generator(result.checkpoint), 12, seed=5)
    written = read_png(files[3])
    assert torch.equal(written, expected[3])


def test_cli_run_with_overrides_and_clean_errors(tiny, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny))
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(path), "--set", "train.steps=2", "--set", "output.samples=3", "-q"])
    assert res.exit_code == 0, res.output
    assert len(list((Path(tiny["output"]["dir"]) / "tiny" / "samples").glob("[0-9]*.png"))) == 3
    res = runner.invoke(app, ["run", str(path), "--set", "train.stpes=2"])
    assert res.exit_code == 2 and "train.stpes: unknown key (did you mean 'steps'?)" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["check", str(path), "--set", "objective.name=wgan_gp"])
    assert res.exit_code == 0 and "gp_weight: 10.0" in res.output


def test_bad_checkpoints_give_one_clear_message(tiny, tmp_path):
    tiny["output"]["samples"] = 0
    good = train(load_recipe(tiny), progress=False).checkpoint
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(Path(good).read_bytes()[:1000])
    notckpt = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(notckpt))
    text = tmp_path / "text.safetensors"
    text.write_text("hello")
    cases = {
        truncated: "not a readable safetensors checkpoint",
        notckpt: "not a ganzoo checkpoint",
        text: "not a readable safetensors checkpoint",
        tmp_path / "missing.safetensors": "checkpoint not found",
        tmp_path: "no checkpoints/last.safetensors",
    }
    runner = CliRunner()
    for path, message in cases.items():
        res = runner.invoke(app, ["sample", str(path), "-n", "2", "-o", str(tmp_path / "o")])
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, (path, res.output)


def test_checkpoint_of_another_architecture_names_the_mismatch(tiny):
    tiny["output"]["samples"] = 0
    ckpt = ganzoo.load_checkpoint(train(load_recipe(tiny), progress=False).checkpoint)
    ckpt.meta["recipe"]["generator"]["base_channels"] = 16  # the weights are for 8
    with pytest.raises(GanzooError, match=r"generator weight .* has shape .*, the architecture expects"):
        ganzoo.load_models(ckpt)
    ckpt.meta["recipe"]["generator"] = dict(ckpt.meta["recipe"]["generator"], name="upsample_conv", channels=16)
    for key in ("base_channels", "max_channels", "stem", "kernel_size"):
        ckpt.meta["recipe"]["generator"].pop(key)
    with pytest.raises(GanzooError, match="generator weights do not match the recipe's architecture"):
        ganzoo.load_models(ckpt)


def test_divergence_stops_naming_loss_and_first_bad_step_and_keeps_the_checkpoint(tiny, monkeypatch):
    tiny["train"].update(steps=12, log_every=5, checkpoint_every=2)
    tiny["output"]["samples"] = 0
    bce = ganzoo.get_registry().get("objective", "bce").cls
    original = bce.generator_loss
    calls = []

    def explode_at_step_4(self, scores, real_scores):
        calls.append(1)
        loss = original(self, scores, real_scores)
        return loss * float("nan") if len(calls) >= 4 else loss

    monkeypatch.setattr(bce, "generator_loss", explode_at_step_4)
    with pytest.raises(GanzooError, match=r"training diverged: (the generator weights are not finite at step 4|g_loss is nan \(first non-finite loss at step 4\))"):
        train(load_recipe(tiny), tmp := Path(tiny["output"]["dir"]) / "nan", progress=False)
    ckpt = ganzoo.load_checkpoint(tmp)
    assert ckpt.meta["step"] == 2 and all(torch.isfinite(v).all() for k, v in ckpt.tensors.items() if v.is_floating_point())


def test_a_failing_checkpoint_write_stops_cleanly_and_keeps_the_previous_one(tiny, monkeypatch):
    import errno
    import os as _os

    tiny["output"]["samples"] = 0
    run = train(load_recipe(tiny), progress=False)
    before = run.checkpoint.read_bytes()

    real_fsync, calls = _os.fsync, []

    def no_space(fd):  # the resumed run's recipe.yaml is written (the first fsync), then the disk is full
        calls.append(fd)
        if len(calls) == 1:
            return real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_os, "fsync", no_space)
    with pytest.raises(GanzooError, match="could not write checkpoint .*last.safetensors: No space left on device"):
        train(load_recipe(tiny, ["train.steps=4"]), run.run_dir, resume=run.run_dir, progress=False)
    assert run.checkpoint.read_bytes() == before
    assert not [p for p in run.checkpoint.parent.iterdir() if p.name.endswith(".tmp")]


def test_batch_larger_than_dataset_is_a_clear_error(tiny):
    tiny["train"]["batch_size"] = 1000
    with pytest.raises(GanzooError, match="batch_size 1000 is larger than the dataset"):
        train(load_recipe(tiny), progress=False)


def test_bf16_autocast_option_trains(tiny):
    tiny["train"].update(precision="bf16", steps=2)
    tiny["objective"] = {"name": "wgan_gp", "n_critic": 1}
    tiny["output"]["samples"] = 0
    result = train(load_recipe(tiny), progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())


def test_time_limit_ends_the_run_early_with_every_output(tiny, tmp_path):
    tiny["train"].update(steps=100000, time_limit=0.02)  # 1.2 s of a run that would take minutes
    tiny["output"]["samples"] = 3
    result = train(load_recipe(tiny), tmp_path / "run", progress=False)
    assert 1 <= result.steps < 100000
    ckpt = ganzoo.load_checkpoint(result.checkpoint)
    assert ckpt.meta["step"] == result.steps
    summary = json.loads((result.run_dir / "run.json").read_text())
    assert summary["steps"] == result.steps and summary["planned_steps"] == 100000
    assert (result.run_dir / "grids" / f"step_{result.steps:07d}.png").is_file()
    assert len(list((result.run_dir / "samples").glob("*.png"))) == 4  # 3 + grid
    resumed = train(load_recipe(tiny, ["train.steps=" + str(result.steps + 2), "train.time_limit=null"]), result.run_dir,
                    resume=result.run_dir, progress=False)
    assert resumed.steps == result.steps + 2


def test_set_reaches_into_lists(tiny):
    tiny["regularizers"] = [{"name": "r1"}]
    recipe = load_recipe(tiny, ["regularizers.0.gamma=10"])
    assert recipe.regularizers[0].params.gamma == 10
    with pytest.raises(GanzooError, match=r"'regularizers.3': the list has 1 entries"):
        load_recipe(tiny, ["regularizers.3.gamma=10"])


def test_a_recipes_thread_count_holds_for_its_run_only(tiny):
    torch.set_num_threads(2)
    seen = []

    class Watch(ganzoo.Callback):
        def on_step(self, run, record):
            seen.append(torch.get_num_threads())

    train(load_recipe(tiny), progress=False, callbacks=[Watch()])  # tiny asks for train.threads: 1
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2  # a notebook's later work keeps its own
