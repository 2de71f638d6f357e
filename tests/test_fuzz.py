"""Fuzzing the recipe loader and --set with Hypothesis: any input gives a Recipe or one GanzooError, never
another exception. Fixed budgets keep the whole file well under 30 s."""

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ganzoo
from conftest import TINY
from ganzoo import GanzooError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                derandomize=True)

# what YAML can say: scalars of every type, and nesting
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=20), st.sampled_from(["dcgan", "bce", "toyfaces", "images", "wgan_gp", "r1", "mlflow"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
KEYS = ["name", "seed", "data", "generator", "critic", "objective", "regularizers", "callbacks", "optim", "ema", "train",
        "output", "eval", "monitor", "expected_time"]


def loads_or_refuses(source, overrides=None):
    try:
        recipe = ganzoo.load_recipe(source, overrides)
    except GanzooError as exc:
        assert str(exc).strip(), "an error must say something"
        return None
    assert isinstance(recipe, ganzoo.Recipe)
    recipe.to_yaml()  # a recipe that loads can also be written
    return recipe


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_bytes_as_a_recipe_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_bytes(data)
    loads_or_refuses(path)


@FUZZ
@given(text=st.lists(st.sampled_from(list("ab:-[]{}&*!|>'\"#, \n\t01.?%@`~") + ["name", "train", "steps", "&a", "*a", "!!", "\n  "]),
                     max_size=60).map("".join))
def test_any_yaml_like_text_as_a_recipe_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_text(text)
    loads_or_refuses(path)


@FUZZ
@given(section=st.sampled_from(KEYS), key=st.one_of(st.none(), st.text(max_size=12), st.sampled_from(
    ["name", "steps", "epochs", "batch_size", "resolution", "channels", "latent_dim", "init", "n_critic", "lr", "betas", "decay"])),
       value=values)
def test_a_recipe_with_any_value_anywhere(section, key, value):
    raw = copy.deepcopy(TINY)
    if key is None or not isinstance(raw.get(section), dict):
        raw[section] = value
    else:
        raw[section][key] = value
    loads_or_refuses(raw)


@FUZZ
@given(key=st.one_of(st.text(max_size=20), st.sampled_from(["train.steps", "train", "data.resolution", "regularizers.0.gamma",
                                                            "optim.critic.lr", "seed", "generator", "name", "ema.decay"])),
       value=st.one_of(st.text(max_size=30), values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())))
def test_any_set_override(key, value):
    loads_or_refuses(copy.deepcopy(TINY), [f"{key}={value}"])


@FUZZ
@given(item=st.text(max_size=40))
def test_any_set_text(item):
    loads_or_refuses(copy.deepcopy(TINY), [item])


def test_the_classes_the_fuzzer_stands_for():
    """The cases behind the strategies above, stated once by hand."""
    def error(text):
        try:
            ganzoo.load_recipe(yaml.safe_load(text) if not isinstance(text, dict) else text)
        except GanzooError as exc:
            return str(exc)
        raise AssertionError("loaded")

    tiny = copy.deepcopy(TINY)
    assert "expected an integer, not a boolean" in error(dict(tiny, train=dict(tiny["train"], steps=True)))
    merged = ganzoo.load_recipe(tiny, ["train={steps: 7}"])
    assert merged.train.steps == 7 and merged.train.batch_size == 8  # the section's other keys stay
