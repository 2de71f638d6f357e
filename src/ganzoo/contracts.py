"""Contract checks at the plugin boundary: what a component class must declare, and what its methods return.

A plugin that breaks the contract gets one line naming it (its distribution, plugin module and component)
and what was wrong, never a traceback from deep inside the loop. Class-level checks run when a plugin
registers a component; value checks run where ganzoo calls the component (building, loading, each loss).
"""

from __future__ import annotations

import inspect
import json

import torch
from pydantic import BaseModel

from .errors import GanzooError


class ContractError(GanzooError):
    """A plugin component that does not keep the interface it registered under."""


def who(component) -> str:
    """``objective 'lsgan' (plugin ganzoo_lsgan, ganzoo-lsgan 0.1.0)``; for an object made outside the registry (a
    notebook's own regularizer), its class and name."""
    if hasattr(component, "plugin") and hasattr(component, "package"):
        return f"{component.kind} '{component.name}' (plugin {component.plugin}, {component.package} {component.version})"
    name = getattr(component, "name", None)
    return f"{type(component).__name__}" + (f" '{name}'" if isinstance(name, str) else "")


# -- at registration -----------------------------------------------------------------------------------
# kind -> methods a component must define itself (the base class only raises NotImplementedError)
REQUIRED = {
    "generator": ("build",),
    "critic": ("build",),
    "architecture": ("build_generator", "build_critic"),
    "objective": ("critic_loss", "generator_loss"),
    "dataset": ("load",),
    "conditioning": ("wrap_generator", "wrap_critic"),
}
# kind -> method -> the call ganzoo makes (argument names), to catch an old or wrong signature early
CALLS = {
    "generator": {"build": ("shape",), "initialize": ("module",)},
    "critic": {"build": ("shape",), "initialize": ("module",)},
    "architecture": {"build_generator": ("shape",), "build_critic": ("shape",), "initialize": ("module",)},
    "objective": {"critic_loss": ("real_scores", "fake_scores"), "generator_loss": ("fake_scores", "real_scores")},
    "regularizer": {"setup": ("critic",), "augment": ("images",), "penalty": ("critic", "real", "fake"),
                    "after_critic_step": ("critic",), "observe": ("real_scores", "fake_scores"),
                    "generator_penalty": ("generator", "z", "fake"),
                    "score_penalty": ("critic", "real", "fake", "real_scores", "fake_scores")},
    "dataset": {"load": ("resolution", "channels", "report"), "fingerprint": (), "check": ()},
    "callback": {"on_start": ("run",), "on_step": ("run", "record"), "on_end": ("run",), "on_log": ("run", "line"),
                 "on_grid": ("run", "step", "images"), "on_eval": ("run", "result"), "close": ()},
    "conditioning": {"wrap_generator": ("generator", "labels"), "wrap_critic": ("critic", "labels"),
                     "generator_inputs": ("labels",), "critic_inputs": ("labels",)},
}
GONE = {  # members of the first contracts that now have one other home
    "objective": {"penalty": "a critic penalty is a regularizer now: return it from regularizers() "
                             "(e.g. [{'name': 'gradient_penalty', 'weight': 10}])",
                  "clip_value": "weight clipping is a regularizer now: return [{'name': 'weight_clip', 'clip': c}] "
                                "from regularizers()"},
}


def class_problems(kind: str, cls: type, base: type) -> list[str]:
    """What is wrong with a registered component class (empty when nothing)."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return [f"registered {cls!r}, which is not a subclass of ganzoo.{base.__name__}"]
    problems = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{cls.__name__} has no name (a class attribute: the key recipes use)")
    if not isinstance(getattr(cls, "description", ""), str):
        problems.append(f"{cls.__name__}.description must be a string")
    for attr in ("GeneratorParams", "CriticParams") if kind == "architecture" else ("Params",):
        model = getattr(cls, attr, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            problems.append(f"{cls.__name__}.{attr} must be a pydantic model (a subclass of ganzoo.Params), got {model!r}")
        elif model.model_config.get("extra") != "forbid":  # a plain BaseModel would drop a misspelt recipe key silently
            problems.append(f"{cls.__name__}.{attr} must derive from ganzoo.Params (or forbid extra keys), so that a misspelt "
                            f"recipe key is an error, not silently ignored; {model.__name__} derives from {model.__mro__[1].__name__}")
    for method in REQUIRED.get(kind, ()):
        if getattr(cls, method, None) is getattr(base, method, None):
            problems.append(f"{cls.__name__} does not implement {method}()")
    for method, args in CALLS.get(kind, {}).items():
        problem = _signature_problem(cls, method, args)
        if problem:
            problems.append(problem)
    for member, advice in GONE.get(kind, {}).items():
        if member in vars(cls) or any(member in vars(k) for k in cls.__mro__[1:] if k is not base and issubclass(k, base)):
            problems.append(f"{cls.__name__}.{member}: {advice}")
    if kind == "objective" and not isinstance(getattr(cls, "n_critic", 1), int):
        problems.append(f"{cls.__name__}.n_critic must be an int class attribute (the default of the recipe's train.n_critic)")
    if kind == "regularizer" and isinstance(getattr(cls, "every", 1), int) and getattr(cls, "every") < 1:
        problems.append(f"{cls.__name__}.every must be >= 1")
    if kind == "regularizer" and getattr(cls, "target", "critic") not in ("critic", "generator"):
        problems.append(f"{cls.__name__}.target must be 'critic' or 'generator', got {getattr(cls, 'target')!r}")
    elif kind == "regularizer":  # a penalty method the loop never calls for this target is a silent no-op
        target, own = cls.target, {m for m in ("penalty", "generator_penalty") if getattr(cls, m) is not getattr(base, m)}
        wrong = own - {"penalty" if target == "critic" else "generator_penalty"}
        if wrong and not own - wrong:
            problems.append(f"{cls.__name__} defines {', '.join(sorted(wrong))}() but its target is '{target}', for which the loop "
                            f"calls {'penalty' if target == 'critic' else 'generator_penalty'}(): set target = "
                            f"'{'generator' if target == 'critic' else 'critic'}' or rename the method")
    return problems


def _signature_problem(cls: type, method: str, args: tuple) -> str | None:
    fn = inspect.getattr_static(cls, method, None)
    if fn is None:
        return None
    if isinstance(fn, (classmethod, staticmethod)):
        return (f"{cls.__name__}.{method} is a {type(fn).__name__}; it must be an instance method "
                f"{method}(self, {', '.join(args)}) (ganzoo makes an instance with the params first)")
    try:
        inspect.signature(fn).bind(None, *args)
    except TypeError:
        return f"{cls.__name__}.{method}{inspect.signature(fn)} cannot be called as {method}(self, {', '.join(args)})"
    except ValueError:  # no signature (a builtin): nothing to check
        return None
    return None


# -- where ganzoo calls a component ---------------------------------------------------------------------
def calling(component, what: str):
    """Context for a call into plugin code: any exception becomes one line naming the component."""
    return _Calling(component, what)


class _Calling:
    def __init__(self, component, what):
        self.component, self.what = component, what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, (GanzooError, KeyboardInterrupt)) or not isinstance(exc, Exception):
            return False
        raise ContractError(f"{who(self.component)}: {self.what} raised {type(exc).__name__}: {exc}") from exc


def check_instance(component, value, expected: type, what: str):
    if not isinstance(value, expected):
        got = "None" if value is None else type(value).__name__
        raise ContractError(f"{who(component)}: {what} returned {got}, expected a ganzoo.{expected.__name__}")
    return value


def check_scalar(component, value, what: str, needs_grad: bool):
    """A loss or penalty: a floating scalar tensor that carries a gradient when its inputs do."""
    if not isinstance(value, torch.Tensor):
        got = "None" if value is None else f"a {type(value).__name__}"
        raise ContractError(f"{who(component)}: {what} returned {got}; it must return a scalar tensor")
    if value.dim() != 0:
        raise ContractError(f"{who(component)}: {what} returned a tensor of shape {tuple(value.shape)}; "
                            "it must return a scalar (shape (), e.g. .mean())")
    if not value.is_floating_point():
        raise ContractError(f"{who(component)}: {what} returned a {value.dtype} tensor; it must be floating point")
    if needs_grad and not value.requires_grad:
        raise ContractError(f"{who(component)}: {what} returned a tensor with no gradient (detached, .item() or "
                            "computed under no_grad); the loss must stay differentiable in the scores")
    return value


def check_json(component, value, what: str):
    try:
        json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ContractError(f"{who(component)}: {what} returned data that is not JSON ({exc}); "
                            "return dicts, lists, strings and numbers") from None
    return value


def _scalar_result(what: str, grad_from):
    """A result check: a differentiable scalar when ``grad_from(args)`` says its inputs carry a gradient."""
    def check(component, value, args):
        needs = torch.is_grad_enabled() and grad_from(args)
        return check_scalar(component, value, what, needs)
    return check


def _same_shape(component, value, args):
    images = args[0]
    if not isinstance(value, torch.Tensor) or value.shape != images.shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ContractError(f"{who(component)}: augment returned {got} for a batch of {tuple(images.shape)}; "
                            "it must return a tensor of the same shape")
    return value


def _optional_scalar(what: str):
    def check(component, value, args):
        return None if value is None else check_scalar(component, value, what, torch.is_grad_enabled())
    return check


def _network(expected: str):
    def check(component, value, args):
        from . import interfaces

        return check_instance(component, value, getattr(interfaces, expected), "build")
    return check


# kind -> method -> check(component, result, args): what ganzoo checks of a result where it calls the method
RESULTS = {
    "objective": {"critic_loss": _scalar_result("critic_loss", lambda a: a[0].requires_grad),
                  "generator_loss": _scalar_result("generator_loss", lambda a: a[0].requires_grad)},
    "regularizer": {"augment": _same_shape, "penalty": _optional_scalar("penalty"),
                    "generator_penalty": _optional_scalar("generator_penalty"),
                    "score_penalty": _optional_scalar("score_penalty")},
    "generator": {"build": _network("Generator")},
    "critic": {"build": _network("Critic")},
}


# methods whose ValueError is a reason for the caller to word (an unsupported shape, a critic projection cannot wrap)
REASONS = ("build", "wrap_generator", "wrap_critic")


class Checked:
    """A component instance as ganzoo uses it: every method named in its kind's contract (``CALLS``) runs inside
    ``calling`` (an exception is one line naming the plugin) and its result is checked where ``RESULTS`` says
    what it must be; every other attribute is the instance's own. The one wrapper for every kind: a few
    attribute reads per call, no device synchronisation. The methods in ``REASONS`` keep their ``ValueError``
    (an unsupported shape) for the caller to word."""

    def __init__(self, component, inner):
        object.__setattr__(self, "component", component)
        object.__setattr__(self, "inner", inner)
        if component.kind == "regularizer":
            every = getattr(inner, "every", 1)
            if not isinstance(every, int) or isinstance(every, bool) or every < 1:
                raise ContractError(f"{who(component)}: every is {every!r}; it must be an int >= 1")

    def __getattr__(self, name):
        value = getattr(self.inner, name)
        methods = CALLS.get(self.component.kind, {})
        if name not in methods or not callable(value):
            return value
        check = RESULTS.get(self.component.kind, {}).get(name)
        component = self.component

        def call(*args, **kwargs):
            try:
                with calling(component, name):
                    result = value(*args, **kwargs)
            except ContractError as exc:
                if name in REASONS and isinstance(exc.__cause__, ValueError):
                    raise exc.__cause__ from None
                raise
            return result if check is None else check(component, result, args)
        call.__name__ = name
        return call

    def __setattr__(self, name, value):
        setattr(self.inner, name, value)

    def __repr__(self) -> str:
        return f"Checked({self.inner!r})"
