import json
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

from conftest import registry_with

ROOT = Path(__file__).resolve().parents[1]

README = (ROOT / "README.md").read_text()


def test_builtins_are_loaded_by_import_path_and_listed_like_third_party_ones():
    import pkgutil

    import ganzoo_plugins

    reg = Registry().load_plugins()
    builtin = [c for c in reg.all() if c.package == "ganzoo"]
    modules = {m.name for m in pkgutil.iter_modules(ganzoo_plugins.__path__)}
    assert {c.plugin for c in builtin} == {f"ganzoo_plugins.{m}" for m in modules}  # every module of plugins/ registers something
    assert all(c.version == ganzoo.__version__ for c in builtin)
    kinds = {}
    for c in builtin:
        kinds.setdefault(c.kind, set()).add(c.name)
    # families: each in a module of its own name, a critic with a generator of the same name (a generator or a critic
    # may come alone, for any partner: StyleGAN2's generator, the projected critic); no list to update when one is added
    families = {c.name: c.plugin for c in builtin if c.kind in ("generator", "critic")}
    assert all(plugin == f"ganzoo_plugins.{name}" for name, plugin in families.items())
    assert len(kinds["critic"] & kinds["generator"]) >= 6
    assert all(name in README for name in kinds["generator"] | kinds["critic"])  # the README's list of what is built in names every family
    assert kinds["objective"] == {"bce", "bce_smooth", "hinge", "ragan", "rpgan", "wgan_clip", "wgan_gp"}
    assert kinds["regularizer"] == {"spectral_norm", "r1", "diffaugment", "gradient_penalty", "weight_clip", "ada", "path_length",
                                   "lecam", "bcr", "mode_seeking"}
    assert kinds["conditioning"] == {"concat", "projection", "acgan"}
    assert {"images", "mnist", "fashion_mnist", "toyfaces"} <= kinds["dataset"]
    assert "mlflow" in kinds["callback"]
    assert reg.problems == []


def test_a_new_builtin_module_appears_without_a_reinstall(tmp_path, monkeypatch):
    import ganzoo_plugins

    (tmp_path / "extra_loss.py").write_text(textwrap.dedent("""
        import ganzoo
        from ganzoo_plugins.hinge import Hinge

        class Extra(Hinge):
            name = "extra_hinge"

        @ganzoo.hookimpl
        def register_objectives(register):
            register(Extra)
    """))
    monkeypatch.setattr(ganzoo_plugins, "__path__", [*ganzoo_plugins.__path__, str(tmp_path)])
    c = Registry().load_plugins().get("objective", "extra_hinge")
    assert (c.plugin, c.package, c.version) == ("ganzoo_plugins.extra_loss", "ganzoo", ganzoo.__version__)


def test_ganzoo_list_shows_components_and_show_gives_params():
    runner = CliRunner()
    res = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in ("mlp", "upsample_conv", "dcgan", "bce", "bce_smooth", "hinge", "wgan_clip", "wgan_gp", "spectral_norm", "r1", "diffaugment"):
        assert f" {name} " in res.output
    res = runner.invoke(app, ["show", "wgan_gp"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "gp_weight" in res.output and "10.0" in res.output
    res = runner.invoke(app, ["show", "ada"], env={"COLUMNS": "250"})  # plugin text is printed as written, not as markup
    assert "E[sign D(real)]" in res.output and "list[color | translation | cutout]" in res.output
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


def test_two_plugins_registering_one_name_is_a_warning_naming_both():
    from conftest import captured_log

    bce = ganzoo.get_registry().get("objective", "bce").cls

    class Again:
        @staticmethod
        @ganzoo.hookimpl
        def register_objectives(register):
            register(bce)

    reg = Registry()
    reg.add_plugin(Again, name="first", package="pkg-one")
    with captured_log() as log:
        reg.add_plugin(type("Again2", (Again,), {}), name="second", package="pkg-two")
    assert "objective 'bce' is registered by pkg-one (plugin first) and by pkg-two (plugin second)" in " ".join(log)
    assert reg.get("objective", "bce").package == "pkg-one" and reg.get("objective", "pkg-two:bce").plugin == "second"


def test_registering_something_that_is_not_a_component_is_an_error():
    class Wrong:
        @staticmethod
        @ganzoo.hookimpl
        def register_objectives(register):
            register(object)

    with pytest.raises(GanzooError, match="not a subclass of ganzoo.Objective"):
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


def install_examples(names: list[str], tmp_path) -> dict:
    """pip-install examples/NAME... into a folder of their own; the environment that sees them."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), *(str(ROOT / "examples" / n) for n in names)], check=True, capture_output=True)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]), COLUMNS="200")


def test_the_example_plugins_install_list_and_a_recipe_names_both(tmp_path, tiny):
    """The objective example (lsgan) and the observer example (csvlog), installed as a user would, in one run."""
    env = install_examples(["ganzoo-lsgan", "ganzoo-csvlog"], tmp_path)
    listed = subprocess.run([sys.executable, "-m", "ganzoo", "list", "-v"], env=env, capture_output=True, text=True, check=True)
    row = next(line for line in listed.stdout.splitlines() if " lsgan " in line)
    assert "ganzoo-lsgan" in row and "0.1.0" in row
    lines = subprocess.run([sys.executable, "-m", "ganzoo", "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert "lsgan (ganzoo-lsgan)" in lines.split("objectives")[1].split("regularizers")[0]
    tiny["objective"] = {"name": "lsgan", "real_target": 1.0}
    tiny["callbacks"] = [{"name": "csvlog", "columns": ["step", "d_loss", "g_loss"]}]
    tiny["train"].update(steps=4, log_every=2)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny))
    run = subprocess.run([sys.executable, "-m", "ganzoo", "run", str(recipe), "-q"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = Path(tiny["output"]["dir"]) / "tiny"
    assert (out / "checkpoints" / "last.safetensors").is_file()
    rows = (out / "losses.csv").read_text().splitlines()
    assert rows[0] == "step,d_loss,g_loss" and [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert float(rows[2].split(",")[1]) == pytest.approx(logged[-1]["d_loss"])
    assert yaml.safe_load((out / "recipe.yaml").read_text())["objective"]["name"] == "lsgan"  # trained with the plugin's loss


def test_a_removed_run_attribute_says_what_replaced_it():
    from ganzoo.observers import Run

    with pytest.raises(AttributeError, match=r"run.extra was removed: the last in-training evaluation is run.eval"):
        Run.__new__(Run).extra
    with pytest.raises(AttributeError, match=r"^'Run' object has no attribute 'nothing'$"):
        Run.__new__(Run).nothing


def test_a_recipe_for_a_plugin_whose_name_a_built_in_took_is_told_which_to_name(tiny):
    from pydantic import Field

    class OwnParams(ganzoo.Params):
        strength: float = Field(1.0)

    class Own(ganzoo.Regularizer):
        name = "bcr"  # as a third-party plugin named it before the built-in existed
        Params = OwnParams

    reg = registry_with(package="my-pkg", register_regularizers=[Own])
    tiny["regularizers"] = [{"name": "bcr", "strength": 2.0}]
    with pytest.raises(GanzooError, match=r"'bcr' is ganzoo's regularizer here; 'my-pkg:bcr' also has that name: name it so"):
        ganzoo.load_recipe(tiny, registry=reg)
    tiny["regularizers"] = [{"name": "my-pkg:bcr", "strength": 2.0}]
    assert ganzoo.load_recipe(tiny, registry=reg).regularizers[0].params.strength == 2.0


def test_a_run_made_with_a_preferred_plugin_is_not_resumed_with_another_component(tiny, tmp_path, monkeypatch):
    class MyHinge(ganzoo.Objective):
        name = "hinge"  # the built-in's name: GANZOO_PREFER_PLUGINS decides which one "hinge" is

        def critic_loss(self, real_scores, fake_scores):
            return (1 - real_scores).clamp(min=0).mean() + (1 + fake_scores).clamp(min=0).mean() * 0.5

        def generator_loss(self, fake_scores, real_scores=None):
            return -fake_scores.mean()

    def registry():
        return registry_with(package="my-pkg", register_objectives=[MyHinge])

    tiny["objective"] = {"name": "hinge"}
    tiny["train"]["steps"] = 2
    monkeypatch.setenv("GANZOO_PREFER_PLUGINS", "my-pkg")
    preferred = registry()
    run = ganzoo.train(ganzoo.load_recipe(tiny, registry=preferred), tmp_path / "run", registry=preferred, progress=False)
    meta = ganzoo.load_checkpoint(run.checkpoint).meta
    assert meta["components"]["objective"]["name"] == "my-pkg:hinge" and meta["components"]["generator"]["name"] == "ganzoo:dcgan"
    monkeypatch.delenv("GANZOO_PREFER_PLUGINS")
    plain = registry()
    with pytest.raises(GanzooError, match=r"objective 'hinge' was my-pkg:hinge when this run started and is ganzoo:hinge now; "
                                          r"resuming would train another component. Resume with GANZOO_PREFER_PLUGINS=my-pkg"):
        ganzoo.train(ganzoo.load_recipe(tiny, ["train.steps=4"], registry=plain), tmp_path / "run", resume=tmp_path / "run",
                     registry=plain, progress=False)
    monkeypatch.setenv("GANZOO_PREFER_PLUGINS", "my-pkg")
    again = registry()
    assert ganzoo.train(ganzoo.load_recipe(tiny, ["train.steps=4"], registry=again), tmp_path / "run", resume=tmp_path / "run",
                        registry=again, progress=False).steps == 4
