import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, Registry
from ganzoo.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_builtins_come_through_the_entry_point_group():
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group="ganzoo")}
    reg = Registry().load_entry_points()
    for c in reg.all():
        if c.package == "ganzoo":  # a built-in is an ordinary entry point of ganzoo's own distribution
            assert eps[c.plugin].dist.name == "ganzoo"
    kinds = {}
    for c in reg.all():
        if c.package == "ganzoo":
            kinds.setdefault(c.kind, set()).add(c.name)
    assert kinds["architecture"] == {"mlp", "upsample_conv", "dcgan"}
    assert kinds["objective"] == {"bce", "bce_smooth", "hinge", "wgan_clip", "wgan_gp"}
    assert kinds["regularizer"] == {"spectral_norm", "r1", "diffaugment"}
    assert {"images", "mnist", "fashion_mnist", "toyfaces"} <= kinds["dataset"]


def test_ganzoo_list_shows_components_and_show_gives_params():
    runner = CliRunner()
    res = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in ("mlp", "upsample_conv", "dcgan", "bce", "bce_smooth", "hinge", "wgan_clip", "wgan_gp", "spectral_norm", "r1", "diffaugment"):
        assert f" {name} " in res.output
    res = runner.invoke(app, ["show", "wgan_gp"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "gp_weight" in res.output and "10.0" in res.output
    res = runner.invoke(app, ["list", "--verbose"], env={"COLUMNS": "200"})
    assert "base_channels" in res.output and "real_label" in res.output
    res = runner.invoke(app, ["show", "wgan_pg"])
    assert res.exit_code == 2 and "did you mean 'wgan_gp'" in res.output


class Misspelled:
    @staticmethod
    @ganzoo.hookimpl
    def register_objective(register):  # missing "s": must not be silently ignored
        pass


def test_misspelled_hook_is_an_error():
    with pytest.raises(GanzooError, match="plugin 'typo'.*register_objective"):
        Registry().add_plugin(Misspelled, name="typo")


def test_two_plugins_registering_one_name_is_an_error_naming_both():
    bce = ganzoo.get_registry().get("objective", "bce").cls

    class Again:
        @staticmethod
        @ganzoo.hookimpl
        def register_objectives(register):
            register(bce)

    reg = Registry()
    reg.add_plugin(Again, name="first", package="pkg-one")
    with pytest.raises(GanzooError, match=r"objective 'bce' is registered twice: by plugin 'first' \(pkg-one\) and by plugin 'second' \(pkg-two\)"):
        reg.add_plugin(type("Again2", (Again,), {}), name="second", package="pkg-two")


def test_registering_something_that_is_not_a_component_is_an_error():
    class Wrong:
        @staticmethod
        @ganzoo.hookimpl
        def register_objectives(register):
            register(object)

    with pytest.raises(GanzooError, match="not a subclass of Objective"):
        Registry().add_plugin(Wrong, name="wrong")


def _fake_distribution(where: Path, dist: str, module: str, source: str) -> None:
    (where / f"{module}.py").write_text(textwrap.dedent(source))
    info = where / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{module} = {module}\n")


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_still_work(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "broken-plugin", "broken_plugin", "import not_a_real_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry().load_entry_points()
    assert [f.plugin for f in reg.failures] == ["broken_plugin"]
    assert "No module named 'not_a_real_module_xyz'" in reg.failures[0].error
    assert reg.get("objective", "wgan_gp").name == "wgan_gp"


def tiny_recipe_file(path: Path, tiny: dict, **objective) -> Path:
    tiny = dict(tiny, objective=objective or tiny["objective"])
    path.write_text(yaml.safe_dump(tiny))
    return path


def test_example_lsgan_plugin_installs_lists_and_trains(tmp_path, tiny):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT / "plugins" / "ganzoo-lsgan")], check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]), COLUMNS="200")
    listed = subprocess.run([sys.executable, "-m", "ganzoo", "list"], env=env, capture_output=True, text=True, check=True)
    row = next(line for line in listed.stdout.splitlines() if " lsgan " in line)
    assert "objective" in row and "ganzoo-lsgan" in row and "0.1.0" in row
    recipe = tiny_recipe_file(tmp_path / "r.yaml", tiny, name="lsgan", real_target=1.0)
    run = subprocess.run([sys.executable, "-m", "ganzoo", "run", str(recipe), "-q"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (Path(tiny["output"]["dir"]) / "tiny" / "checkpoints" / "last.safetensors").is_file()
