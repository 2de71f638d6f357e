"""Schedules over images seen: a recipe's ``schedules:`` ramp a hyper-parameter between two values.

    schedules:
      - {key: optim.generator.lr, values: [2.0e-4, 5.0e-5], over: 2000000, shape: cosine}
      - {key: regularizers.r1.gamma, values: [0.5, 0.05], over: 2000000}
      - {key: ema.half_life, values: [0, 500000], over: 2000000}

A value depends only on the number of real images the critic has seen before the step (``after`` images at the
first value, then a linear or cosine ramp over ``over`` images, then the last value), so a resumed run applies
exactly the values of an uninterrupted one. What can be ramped:

* ``optim.generator.*`` / ``optim.critic.*``: ``lr``, ``betas.0``, ``betas.1``, ``weight_decay``, ``momentum``,
* ``ema.decay`` or ``ema.half_life`` (images; whichever the recipe's ``ema`` uses),
* ``objective.PARAM`` and ``regularizers.NAME.PARAM`` (or ``regularizers.INDEX.PARAM``, an index into the
  recipe's list): any number parameter of that component, which reads it from ``self.params`` on each call.

The values in use are logged under ``schedule/KEY`` (metrics.jsonl, TensorBoard, MLflow, the report).
"""

from __future__ import annotations

import math

from pydantic import ValidationError

from . import models
from .interfaces import Callback

OPTIM_PARAMS = ("lr", "betas.0", "betas.1", "weight_decay", "momentum")


def value_at(schedule, images: float) -> float:
    """The schedule's value after ``images`` real images."""
    a, b = schedule.values
    t = min(max((images - schedule.after) / schedule.over, 0.0), 1.0)
    if schedule.shape == "cosine":
        t = (1 - math.cos(math.pi * t)) / 2
    return a + (b - a) * t


def ema_decay(half_life: float, images_per_step: int) -> float:
    """The per-step decay of an average whose weight halves every ``half_life`` images (0: no averaging yet)."""
    return 0.5 ** (images_per_step / half_life) if half_life > 0 else 0.0


def problems(recipe, registry) -> list[str]:
    """What is wrong with a recipe's schedules, each with its key path (an unknown target, a value its target refuses)."""
    out, seen = [], set()
    for i, s in enumerate(recipe.schedules):
        where = f"schedules.{i}"
        if s.key in seen:
            out.append(f"{where}.key: {s.key} is scheduled twice (one schedule per key)")
        seen.add(s.key)
        try:
            check = _target(recipe, registry, s.key)
        except KeyError as exc:
            out.append(f"{where}.key: {exc.args[0]}")
            continue
        for j, v in enumerate(s.values):
            problem = check(v)
            if problem:
                out.append(f"{where}.values.{j}: {problem} (got {v!r})")
    return out


def _target(recipe, registry, key: str):
    """A check of one value for ``key`` (None when fine); KeyError with a reason for a key nothing answers to."""
    head, _, rest = key.partition(".")
    if head == "optim":
        role, _, param = rest.partition(".")
        if role not in ("generator", "critic") or param not in OPTIM_PARAMS:
            raise KeyError(f"'{key}': an optimizer schedule is optim.generator.P or optim.critic.P with P one of "
                           f"{', '.join(OPTIM_PARAMS)}")
        spec = getattr(recipe.optim, role) or registry.get("objective", recipe.objective.name).cls.default_optimizer
        if param.startswith("betas") and spec.name not in ("adam", "adamw"):
            raise KeyError(f"'{key}': the {role} optimizer is {spec.name}, which has no betas")
        if param == "momentum" and spec.name not in ("rmsprop", "sgd"):
            raise KeyError(f"'{key}': the {role} optimizer is {spec.name}, which has no momentum")
        if param == "lr":
            return lambda v: None if v > 0 else "a learning rate must be > 0"
        if param.startswith("betas"):
            return lambda v: None if 0 <= v < 1 else "a beta must be in [0, 1)"
        return lambda v: None if v >= 0 else "must be >= 0"
    if head == "ema":
        if rest not in ("decay", "half_life"):
            raise KeyError(f"'{key}': an EMA schedule is ema.decay or ema.half_life")
        if getattr(recipe.ema, rest) is None:
            raise KeyError(f"'{key}': the recipe's ema.{rest} is not set (the schedule ramps the one the recipe uses)")
        if rest == "decay":
            return lambda v: None if 0 <= v < 1 else "a decay must be in [0, 1)"
        return lambda v: None if v >= 0 else "a half-life must be >= 0 images"
    if head == "objective":
        return _param_check(key, registry.get("objective", recipe.objective.name).cls.Params, recipe.objective.params, rest)
    if head == "regularizers":
        which, _, param = rest.partition(".")
        section = _regularizer_section(recipe, registry, which, key)
        return _param_check(key, registry.get("regularizer", section[0]).cls.Params, section[1], param)
    raise KeyError(f"'{key}': schedules ramp optim.*, ema.*, objective.* or regularizers.* values")


def _regularizer_section(recipe, registry, which: str, key: str):
    """``(name, params)`` of the regularizer ``which`` names: an index into the recipe's list, or a name among the
    recipe's and those the objective and the critic imply (wgan_gp's gradient_penalty)."""
    if which.isdigit():
        if int(which) >= len(recipe.regularizers):
            raise KeyError(f"'{key}': the recipe lists {len(recipe.regularizers)} regularizers")
        r = recipe.regularizers[int(which)]
        return r.name, r.params
    listed = [(r.name, r.params) for r in recipe.regularizers if r.name == which]
    entries = [e for _, e in models.implied_regularizers(recipe, registry)]
    implied = [(e["name"], registry.get("regularizer", e["name"]).cls.Params.model_validate({k: v for k, v in e.items() if k != "name"}))
               for e in entries if e.get("name") == which and which not in {r.name for r in recipe.regularizers}]
    found = listed + implied
    if len(found) != 1:
        names = [r.name for r in recipe.regularizers] + [e.get("name") for e in entries]
        why = "is listed more than once: use its index, regularizers.N.PARAM" if found else \
            f"is not one of the run's regularizers ({', '.join(map(str, names)) or 'none'})"
        raise KeyError(f"'{key}': '{which}' {why}")
    return found[0]


def _param_check(key: str, model, params, param: str):
    field = model.model_fields.get(param)
    if field is None or field.annotation not in (float, int, float | None, int | None):
        numbers = [n for n, f in model.model_fields.items() if f.annotation in (float, int, float | None, int | None)]
        raise KeyError(f"'{key}': '{param}' is not a number parameter of it (those are: {', '.join(numbers) or 'none'})")

    def check(value):
        try:
            model.model_validate({**params.model_dump(), param: int(value) if field.annotation in (int, int | None) else value})
        except ValidationError as exc:
            return exc.errors()[0]["msg"]
        return None
    return check


class Schedules(Callback):
    """Sets every scheduled value before each step (from the images seen), and logs the values a step used."""

    name = "schedules"

    def __init__(self, schedules):
        self.schedules = list(schedules)
        self.setters = []

    def on_start(self, run) -> None:
        self.setters = [(s, self._setter(run, s.key)) for s in self.schedules]
        self._apply(run, run.start)

    def on_step(self, run, record) -> None:
        run.log({f"schedule/{s.key}": value_at(s, (run.step - 1) * run.images_per_step) for s in self.schedules})

    def after_step(self, run) -> None:  # after the step's metrics line (its lr_g is the step's): the next step's values
        self._apply(run, run.step)

    def _apply(self, run, done_steps: int) -> None:
        images = done_steps * run.images_per_step
        for s, setter in self.setters:
            setter(value_at(s, images))

    @staticmethod
    def _setter(run, key: str):
        head, _, rest = key.partition(".")
        if head == "optim":
            role, _, param = rest.partition(".")
            opt = run.opt_g if role == "generator" else run.opt_d

            def set_optim(value):
                for group in opt.param_groups:
                    if param.startswith("betas"):
                        betas = list(group["betas"])
                        betas[int(param[-1])] = value
                        group["betas"] = tuple(betas)
                    else:
                        group[param] = value
            return set_optim
        if head == "ema":
            if rest == "half_life":
                return lambda value: setattr(run.ema, "decay", ema_decay(value, run.images_per_step))
            return lambda value: setattr(run.ema, "decay", value)
        if head == "objective":
            return _params_setter(run.objective, rest)
        which, _, param = rest.partition(".")
        if which.isdigit():  # the recipe's list follows the objective's own regularizers
            reg = run.regularizers[len(run.regularizers) - len(run.recipe.regularizers) + int(which)]
        else:
            reg = next(r for r in run.regularizers if getattr(r, "name", None) == which)
        return _params_setter(reg, param)


def _params_setter(component, param: str):
    integer = component.Params.model_fields[param].annotation in (int, int | None)

    def set_param(value):
        component.params = component.params.model_copy(update={param: round(value) if integer else value})
    return set_param
