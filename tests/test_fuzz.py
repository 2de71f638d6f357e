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


# -- numbers at the edges of what a backend holds, in every numeric field -----------------------------------------------
def _numeric_keys() -> list[str]:
    from ganzoo.recipe import flat_keys

    rich = copy.deepcopy(TINY)
    rich.update(objective={"name": "wgan_gp"}, regularizers=[{"name": "r1"}, {"name": "diffaugment"}],
                ema={"decay": 0.999}, optim={"generator": {"name": "adam", "lr": 2e-4}, "critic": {"name": "adam", "lr": 2e-4}})
    flat = flat_keys(ganzoo.load_recipe(rich).to_dict())
    return sorted(k for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)), rich


NUMERIC_KEYS, RICH = _numeric_keys()
EDGES = ["0", "-0.0", "-1", "1e-320", "1e-45", "3.4e38", "3.5e38", "1e39", "-1e39", "1e308", "1e309", ".inf", "-.inf", ".nan",
         str(2**31), str(2**32), str(2**63 - 1), str(2**63), str(10**30), "-" + str(10**30), "010", "0o17", "0x1F", "1_000",
         "1:30", "+.5", "1e3", "1.0e+3", "'7'", "true", "null", "[1, 2]"]


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@FUZZ
@given(key=st.sampled_from(NUMERIC_KEYS), value=st.one_of(st.sampled_from(EDGES), st.floats().map(repr), st.integers().map(str)))
def test_any_number_in_any_numeric_field_loads_within_what_a_backend_holds_or_is_refused(key, value):
    import math

    recipe = loads_or_refuses(copy.deepcopy(RICH), [f"{key}={value}"])
    if recipe is None:
        return
    for number in _numbers(recipe.to_dict()):
        assert math.isfinite(number) and abs(number) <= 3.4028234663852886e38, (key, value, number)
        if isinstance(number, int):
            assert abs(number) < 2**63, (key, value, number)
    for role in ("generator", "critic"):
        spec = getattr(recipe.optim, role)
        if spec is not None:
            import torch

            spec.build([torch.nn.Parameter(torch.zeros(2))])  # an optimizer the recipe names can be built with its numbers


# -- paths: any text where a path goes ----------------------------------------------------------------------------------
paths = st.one_of(st.text(max_size=24), st.sampled_from(["~", "~/", "~nosuchuser", "~nosuchuser/x", "~root/x", "", " ", ".",
                                                         "..", "/", "//", "a\x00b", "~~", "$HOME/x", "%USERPROFILE%", "-x",
                                                         "--force", "faces.zip/", "C:\\data", "\\\\server\\share"]))


@FUZZ
@given(path=paths)
def test_any_text_as_a_data_path_is_checked_or_refused_with_one_line(path):
    from ganzoo.models import preflight

    raw = copy.deepcopy(TINY)
    raw["data"] = {"name": "images", "path": path, "resolution": 16}
    recipe = loads_or_refuses(raw)
    if recipe is None:
        return
    try:
        preflight(recipe)
    except GanzooError as exc:
        assert str(exc).strip() and "\n" not in str(exc)


@FUZZ
@given(path=paths)
def test_any_text_as_a_path_option_is_a_path_or_one_clear_refusal(path):
    import typer

    from ganzoo.cli.common import path_arg as _path
    from ganzoo.fileio import expand

    try:
        assert isinstance(_path(path), type(expand(".")))
    except typer.BadParameter as exc:
        assert str(exc).strip()
    except GanzooError as exc:
        assert str(exc).strip()
