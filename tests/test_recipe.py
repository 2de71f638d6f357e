import copy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe
from ganzoo.cli import app
from ganzoo.yamlio import load

from conftest import TINY, registry_with, write_faces

runner = CliRunner()

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("**/*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_validates_and_round_trips(path):
    r = load_recipe(path)
    again = load_recipe(yaml.safe_load(r.to_yaml()))
    assert again.to_dict() == r.to_dict()


def test_resolved_recipe_fills_every_default(tiny):
    d = load_recipe(tiny).to_dict()
    assert d["critic"]["norm"] == "batch" and d["critic"]["init"] == "architecture"
    assert d["generator"]["max_channels"] == 1024
    assert d["data"]["seed"] == 0 and d["train"]["n_critic"] == 1  # the objective's default, written out
    assert load_recipe(dict(tiny, objective={"name": "wgan_gp"})).train.n_critic == 5


def test_first_version_recipes_keep_their_meaning(tiny):
    """objective.n_critic (recipes and checkpoints of the first version) is train.n_critic now; init: dcgan stays."""
    old = dict(tiny, objective={"name": "wgan_clip", "clip": 0.02, "n_critic": 3})
    old["critic"] = dict(tiny["critic"], init="dcgan")
    r = load_recipe(old)
    assert r.train.n_critic == 3 and r.objective.params.clip == 0.02 and r.critic.init == "dcgan"
    assert "n_critic" not in r.to_dict()["objective"]
    clash = dict(old, train=dict(tiny["train"], n_critic=2))
    assert "objective.n_critic (3) and train.n_critic (2) disagree" in error(clash)


def error(recipe, overrides=None) -> str:
    with pytest.raises(GanzooError) as info:
        load_recipe(recipe, overrides)
    return str(info.value)


def test_unknown_top_level_key_suggests(tiny):
    tiny["sed"] = 3
    assert "sed: unknown key (did you mean 'seed'?)" in error(tiny)


def test_unknown_core_key_in_section_suggests(tiny):
    tiny["train"]["batchsize"] = 3
    assert "train.batchsize: unknown key (did you mean 'batch_size'?)" in error(tiny)


def test_unknown_component_param_suggests(tiny):
    tiny["generator"]["base_chanels"] = 3
    assert "generator.base_chanels: unknown key (did you mean 'base_channels'?)" in error(tiny)
    tiny["generator"].pop("base_chanels")
    tiny["objective"] = {"name": "wgan_gp", "gp_wieght": 5}
    assert "objective.gp_wieght: unknown key (did you mean 'gp_weight'?)" in error(tiny)


def test_core_key_misspelled_in_component_section_suggests(tiny):
    tiny["generator"]["latnt_dim"] = 3
    assert "generator.latnt_dim: unknown key (did you mean 'latent_dim'?)" in error(tiny)


def test_wrong_types_and_values_name_the_key(tiny):
    tiny["train"]["batch_size"] = "many"
    assert "train.batch_size: Input should be a valid integer" in error(tiny)
    tiny["train"]["batch_size"] = 0
    assert "train.batch_size: Input should be greater than or equal to 1 (got 0)" in error(tiny)
    tiny["train"]["batch_size"] = 8
    tiny["critic"]["norm"] = "layer"
    assert "critic.norm: Input should be 'batch' or 'none'" in error(tiny)
    tiny["critic"]["norm"] = "none"
    tiny["optim"] = {"critic": {"name": "adamm"}}
    assert "optim.critic.name: Input should be" in error(tiny)


def test_unknown_component_suggests_and_lists(tiny):
    tiny["objective"]["name"] = "wgan-gp"
    msg = error(tiny)
    assert "objective.name: unknown objective 'wgan-gp' (did you mean 'wgan_gp'?)" in msg
    assert "available: bce, bce_smooth, hinge, ragan, rpgan, wgan_clip, wgan_gp" in msg


def test_several_problems_are_listed_together(tiny):
    tiny["sed"] = 1
    tiny["train"]["stesp"] = 1
    msg = error(tiny)
    assert msg.startswith("recipe: 2 problems") and "sed:" in msg and "train.stesp:" in msg


def test_training_length_is_required_once(tiny):
    tiny["train"].pop("steps")
    assert "give train.steps or train.epochs" in error(tiny)
    tiny["train"].update(steps=3, epochs=1)
    assert "not both" in error(tiny)


def test_overrides(tiny):
    r = load_recipe(tiny, ["train.steps=7", "objective.name=wgan_gp", "objective.gp_weight=2.5", "data.size=32"])
    assert r.train.steps == 7 and r.objective.params.gp_weight == 2.5 and r.data.params.size == 32
    assert "objective.gp_weight: Input should be greater than or equal to 0" in error(tiny, ["objective.name=wgan_gp", "objective.gp_weight=-1"])
    assert "expected KEY=VALUE" in error(tiny, ["train.steps"])
    assert "'seed' is not a section" in error(tiny, ["seed.x=1"])


def test_override_into_a_null_section(tiny):
    tiny["optim"] = {"generator": None, "critic": None}
    r = load_recipe(tiny, ["optim.critic.lr=0.001"])
    assert r.optim.critic.lr == 0.001 and r.optim.critic.name == "adam"


def test_file_errors(tmp_path):
    assert "recipe file not found" in error(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: {steps: 3\n")
    assert "not valid YAML at line" in error(bad)
    bad.write_text("- a\n- b\n")
    assert "must be a YAML mapping" in error(bad)


def test_yaml_tags_cannot_construct_objects(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    assert "not valid YAML" in error(evil)


def test_numbers_are_read_as_yaml_1_2_no_octal_no_sexagesimal(tmp_path):
    assert load("a: 010\nb: 0123\nc: 1:30\nd: 1e-4\ne: 0o17\nf: 0x1f\ng: .inf\nh: -2.5", "x") == \
        {"a": 10, "b": 123, "c": "1:30", "d": 1e-4, "e": 15, "f": 31, "g": float("inf"), "h": -2.5}
    text = (f"name: octal\nseed: 0123\ndata: {{name: toyfaces, size: 64, resolution: 16}}\n"
            "generator: {name: dcgan, latent_dim: 8, base_channels: 8}\ncritic: {name: dcgan, base_channels: 8}\n"
            "objective: {name: bce}\ntrain: {batch_size: 010, steps: 3, threads: 1}\noptim: {generator: {name: adam, lr: 2e-4}}\n")
    (tmp_path / "r.yaml").write_text(text)
    r = load_recipe(tmp_path / "r.yaml")
    assert r.seed == 123 and r.train.batch_size == 10 and r.optim.generator.lr == 2e-4
    r = load_recipe(tmp_path / "r.yaml", ["train.steps=010"])
    assert r.train.steps == 10
    with pytest.raises(GanzooError, match="train.steps"):
        load_recipe(tmp_path / "r.yaml", ["train.steps=1:30"])  # text, not ninety


def test_numbers_a_backend_cannot_hold_are_refused_naming_the_key(tmp_path, tiny):
    import yaml

    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny))
    for override, words in (("optim.generator.lr=1e39", "beyond what float32 holds"), ("optim.critic.lr=.inf", "finite"),
                            ("optim.generator.lr=.nan", "finite"), ("seed=99999999999999999999999", "seed"),
                            ("train.steps=100000000000000000000", "train.steps")):
        with pytest.raises(GanzooError, match=words):
            load_recipe(tmp_path / "r.yaml", [override])
    with pytest.raises(GanzooError, match="generator.lr.*float32"):
        load_recipe(tmp_path / "r.yaml", ["optim.generator.lr=3.5e38"])
    assert load_recipe(tmp_path / "r.yaml", ["optim.generator.lr=3e38"]).optim.generator.lr == 3e38


def test_a_component_named_in_the_wrong_section_is_told_where_it_goes(tmp_path, tiny):
    import yaml

    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny))
    with pytest.raises(GanzooError, match=r"'diffaugment' is a regularizer \(listed under regularizers:\), not a callback"):
        load_recipe(tmp_path / "r.yaml", ["callbacks=[{name: diffaugment}]"])
    with pytest.raises(GanzooError, match=r"'r1' is a regularizer .*not an objective"):
        load_recipe(tmp_path / "r.yaml", ["objective.name=r1"])
    with pytest.raises(GanzooError, match=r"regularizers.0: give a mapping such as \{name: r1\}"):
        load_recipe(tmp_path / "r.yaml", ["regularizers=[r1]"])


def test_check_refuses_what_run_would_refuse_after_decoding(tmp_path, tiny, monkeypatch):
    import importlib.util

    import yaml

    write_faces(tmp_path / "faces", 3)
    (tmp_path / "faces" / "tags.csv").write_text("file,hair\n0.png,red\n1.png,blue\n7.png,red\n")
    tiny["data"] = {"name": "images", "path": str(tmp_path / "faces"), "labels_file": "tags.csv", "resolution": 16}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny))
    for command in ("check", "run"):
        res = runner.invoke(app, [command, str(tmp_path / "r.yaml")], env={"COLUMNS": "200"})
        assert res.exit_code == 2 and "7.png" in res.output and "not images" in res.output, res.output
    tiny["data"] = copy.deepcopy(TINY["data"])
    tiny["callbacks"] = [{"name": "mlflow"}]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    res = runner.invoke(app, ["check", str(tmp_path / "r.yaml")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "pip install" in res.output and "mlflow" in res.output, res.output


# -- --set KEY=null on a component's parameter -------------------------------------------------------------------------
class _ClipParams(ganzoo.Params):
    clip: float | None = 0.01  # None: no clipping
    margin: float = 1.0


class _ClipObjective(ganzoo.Objective):
    name = "clip_test"
    Params = _ClipParams

    def critic_loss(self, real_scores, fake_scores):
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores, real_scores=None):
        return -fake_scores.mean()


def test_null_on_a_components_parameter_sets_null_where_it_may_be_and_the_default_elsewhere(tiny):
    reg = registry_with(package="clip-plugin", register_objectives=[_ClipObjective])
    tiny["objective"] = {"name": "clip_test", "clip": 0.05, "margin": 2.0}
    assert load_recipe(tiny, registry=reg).objective.params.clip == 0.05
    r = load_recipe(tiny, ["objective.clip=null"], registry=reg)
    assert r.objective.params.clip is None  # not the default 0.01, and not the recipe's 0.05
    r = load_recipe(tiny, ["objective.margin=null"], registry=reg)
    assert r.objective.params.margin == 1.0  # a parameter that cannot be null: removed, its default applies
    tiny["regularizers"] = [{"name": "r1", "gamma": 10.0}]
    assert load_recipe(tiny, ["regularizers.0.gamma=null"], registry=reg).regularizers[0].params.gamma is None
    assert load_recipe(tiny, ["objective.clip=null"], registry=reg).to_dict()["objective"]["clip"] is None  # kept as resolved
