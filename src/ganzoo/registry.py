"""The component registry, fed by pluggy plugins.

ganzoo's built-in components are plugins like any other: the modules of the ``ganzoo_plugins`` package are
imported by name (so a built-in needs no installed metadata, and a new one appears without a reinstall),
then every module of the ``ganzoo`` entry-point group. Loading calls each plugin's ``register_*`` hooks
with a ``register`` callback and records, per component, the plugin that provided it and that plugin's
distribution and version. ``ganzoo list`` shows built-ins and third-party components the same way.

A plugin that cannot load, registers a component that breaks its contract, or registers a name another
plugin also registers, is recorded in ``problems`` (warnings naming it); everything else still works.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from . import contracts, hookspecs
from .errors import GanzooError
from .interfaces import Architecture, Callback, Conditioning, Dataset, Objective, Regularizer

ENTRY_POINT_GROUP = "ganzoo"
BUILTIN_PACKAGE = "ganzoo_plugins"
log = logging.getLogger("ganzoo")

# kind -> (hook name, base class)
KINDS: dict[str, tuple[str, type]] = {
    "architecture": ("register_architectures", Architecture),
    "objective": ("register_objectives", Objective),
    "regularizer": ("register_regularizers", Regularizer),
    "dataset": ("register_datasets", Dataset),
    "callback": ("register_callbacks", Callback),
    "conditioning": ("register_conditionings", Conditioning),
}


@dataclass(frozen=True)
class Component:
    """One registered component: its class and where it came from."""

    kind: str
    name: str
    cls: type
    plugin: str
    package: str
    version: str

    @property
    def description(self) -> str:
        return getattr(self.cls, "description", "")

    def params_models(self) -> dict[str, type]:
        """The pydantic params models of this component, by role."""
        if self.kind == "architecture":
            return {"generator": self.cls.GeneratorParams, "critic": self.cls.CriticParams}
        return {self.kind: self.cls.Params}

    def create(self, *args, **kwargs):
        """An instance, made with validated params (``Kind(params)``; architectures ``Kind(generator=, critic=)``);
        what the plugin's constructor raises is one line naming it. Objectives and regularizers come back with
        their results checked on every call, callbacks with their exceptions naming the plugin."""
        with contracts.calling(self, "its constructor"):
            instance = self.cls(*args, **kwargs)
        if self.kind == "objective":
            return contracts.CheckedObjective(self, instance)
        if self.kind == "regularizer":
            return contracts.CheckedRegularizer(self, instance)
        if self.kind == "callback":
            for method in ("on_start", "on_step", "on_end"):
                setattr(instance, method, contracts.guarded(self, getattr(instance, method)))
        return instance


@dataclass
class PluginProblem:
    plugin: str
    error: str
    package: str = "?"

    def __str__(self) -> str:
        return f"plugin {self.plugin} ({self.package}): {self.error}"


@dataclass
class Registry:
    """Components by kind and name, plus what went wrong while loading plugins."""

    components: dict[str, dict[str, Component]] = field(default_factory=lambda: {k: {} for k in KINDS})
    problems: list[PluginProblem] = field(default_factory=list)
    disabled: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> why it is unavailable
    pm: pluggy.PluginManager = field(default_factory=lambda: _new_plugin_manager())
    _packages: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin -> (distribution, version)

    @property
    def failures(self) -> list[PluginProblem]:  # the name of the first version
        return self.problems

    # -- loading ---------------------------------------------------------------
    def load_plugins(self) -> "Registry":
        """The built-in plugins, then every plugin of the ``ganzoo`` entry-point group."""
        from . import __version__

        package = importlib.import_module(BUILTIN_PACKAGE)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.name.startswith("_") or self.pm.has_plugin(info.name):
                continue
            self._load(info.name, lambda n=info.name: importlib.import_module(f"{BUILTIN_PACKAGE}.{n}"), "ganzoo", __version__)
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if self.pm.has_plugin(ep.name) or (ep.dist is not None and ep.dist.name == "ganzoo"):
                continue  # ganzoo's own entry points from an older install: the built-ins are loaded above
            self._load(ep.name, ep.load, ep.dist.name if ep.dist else "?", ep.dist.version if ep.dist else "?")
        return self

    load_entry_points = load_plugins  # the name of the first version

    def _load(self, name: str, load, package: str, version: str) -> None:
        try:
            module = load()
        except Exception as exc:  # a broken third-party plugin must not break the rest
            self.problems.append(PluginProblem(name, f"failed to load, its components are unavailable: "
                                                     f"{type(exc).__name__}: {exc}", package))
            return
        self.add_plugin(module, name=name, package=package, version=version, strict=False)

    def add_plugin(self, plugin, name: str, package: str = "(local)", version: str = "?", strict: bool = True) -> None:
        """Register one plugin object (module or class) and collect its components.

        ``strict`` (the default, for a notebook's own plugin): any problem is a ``GanzooError``. Otherwise
        (installed plugins) problems are recorded and the offending components left out.
        """
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            self._problem(name, package, f"{exc}", strict)
            return
        self._packages[name] = (package, version)
        count = 0
        for kind, (hook_name, base) in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != name:
                    continue
                try:
                    impl.function(register=functools.partial(self._register, kind, base, name, strict))
                except GanzooError:
                    raise
                except Exception as exc:
                    self._problem(name, package, f"{hook_name} raised {type(exc).__name__}: {exc}", strict)
                count += 1
        if count == 0:
            message = ("registers no components: no function marked @ganzoo.hookimpl named one of "
                       + ", ".join(h for h, _ in KINDS.values()))
            self.problems.append(PluginProblem(name, message, package))
            if strict:
                log.warning("plugin %s (%s) %s", name, package, message)

    def _problem(self, plugin: str, package: str, message: str, strict: bool) -> None:
        if strict:
            raise GanzooError(f"plugin '{plugin}' ({package}): {message}")
        self.problems.append(PluginProblem(plugin, message, package))

    def _register(self, kind: str, base: type, plugin: str, strict: bool, cls: type) -> None:
        package, version = self._packages[plugin]
        problems = contracts.class_problems(kind, cls, base)
        name = getattr(cls, "name", None)
        if problems:
            label = f"{kind} '{name}'" if isinstance(name, str) and name else f"a{'n' * (kind[0] in 'aeiou')} {kind}"
            self._problem(plugin, package, f"{label} breaks the {kind} contract and is left out: " + "; ".join(problems), strict)
            if isinstance(name, str) and name:
                self.disabled.setdefault((kind, name), f"plugin {plugin} ({package}) registered it, but: " + "; ".join(problems))
            return
        if (kind, name) in self.disabled:
            return
        existing = self.components[kind].get(name)
        if existing is not None:
            message = (f"{kind} '{name}' is registered twice: by plugin '{existing.plugin}' ({existing.package}) "
                       f"and by plugin '{plugin}' ({package})")
            if strict:
                raise GanzooError(message)
            del self.components[kind][name]
            self.disabled[(kind, name)] = message + "; both are disabled until one is uninstalled"
            self.problems.append(PluginProblem(plugin, message + f"; '{name}' is disabled until one is uninstalled", package))
            return
        self.components[kind][name] = Component(kind, name, cls, plugin, package, version)

    # -- lookup ----------------------------------------------------------------
    def get(self, kind: str, name: str) -> Component:
        try:
            return self.components[kind][name]
        except KeyError:
            if (kind, name) in self.disabled:
                raise GanzooError(f"{kind} '{name}' is unavailable: {self.disabled[(kind, name)]}") from None
            names = sorted(self.components[kind])
            raise GanzooError(f"unknown {kind} '{name}'{did_you_mean(name, names)}; available: {', '.join(names)}") from None

    def create(self, kind: str, name: str, params: dict | None = None):
        """An instance of a component from plain params (validated against its ``Params``)."""
        from pydantic import ValidationError

        component = self.get(kind, name)
        try:
            validated = component.cls.Params.model_validate(params or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise GanzooError(f"{kind} '{name}': {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        return component.create(validated)

    def all(self) -> list[Component]:
        return [c for kind in KINDS for c in sorted(self.components[kind].values(), key=lambda c: c.name)]

    def find(self, name: str) -> list[Component]:
        return [c for c in self.all() if c.name == name]


def _new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@functools.lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The registry of the built-in and every installed plugin, loaded once per process; what went wrong
    while loading is logged as warnings."""
    registry = Registry().load_plugins()
    for problem in registry.problems:
        log.warning("%s", problem)
    return registry
