"""The component registry, fed by pluggy plugins.

ganzoo's built-in components are plugins like any other: the modules of the ``ganzoo_plugins`` package are
imported by name (so a built-in needs no installed metadata, and a new one appears without a reinstall),
then every module of the ``ganzoo`` entry-point group. Loading calls each plugin's ``register_*`` hooks
with a ``register`` callback and records, per component, the plugin that provided it and that plugin's
distribution and version. ``ganzoo list`` shows built-ins and third-party components the same way.

A plugin that cannot load, or registers a component that breaks its contract, is recorded in ``problems``
(warnings naming it); everything else still works. Two components of one kind and name: the first keeps the
name (a built-in always does, unless ``GANZOO_PREFER_PLUGINS`` names the other's package) and the other is
reachable as ``package:name``; a warning names both. ``GANZOO_DISABLE_PLUGINS=pkg1,pkg2`` turns installed
plugins off (by distribution or entry-point name).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import os
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from . import contracts, hookspecs
from .errors import GanzooError
from .compat import LEGACY_HOOK, Architecture, architecture_builders
from .interfaces import Callback, Conditioning, CriticBuilder, Dataset, GeneratorBuilder, Objective, Regularizer
from .version import __version__

ENTRY_POINT_GROUP = "ganzoo"
BUILTIN_PACKAGE = "ganzoo_plugins"
log = logging.getLogger("ganzoo")

# kind -> (hook name, base class)
KINDS: dict[str, tuple[str, type]] = {
    "generator": ("register_generators", GeneratorBuilder),
    "critic": ("register_critics", CriticBuilder),
    "objective": ("register_objectives", Objective),
    "regularizer": ("register_regularizers", Regularizer),
    "dataset": ("register_datasets", Dataset),
    "callback": ("register_callbacks", Callback),
    "conditioning": ("register_conditionings", Conditioning),
}
# where a recipe names a component of each kind
WHERE = {"generator": "generator:", "critic": "critic:", "objective": "objective:", "regularizer": "listed under regularizers:",
         "dataset": "data:", "callback": "listed under callbacks:", "conditioning": "condition:"}


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _names_in(variable: str) -> set[str]:
    return {_norm(n) for n in os.environ.get(variable, "").split(",") if n.strip()}


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

    @property
    def qualified_name(self) -> str:
        """``package:name``: the name that stays unique when two packages register the same one."""
        return f"{self.package}:{self.name}"

    def params_models(self) -> dict[str, type]:
        """The pydantic params model of this component, by kind."""
        return {self.kind: self.cls.Params}

    def create(self, params=None):
        """An instance, made with validated params (``Kind(params)``), behind ``contracts.Checked``: every call into
        it that raises is one line naming the plugin, and its results are checked where the contract says what
        they must be (losses, penalties, augmentations, built networks)."""
        with contracts.calling(self, "its constructor"):
            instance = self.cls(params)
        return contracts.Checked(self, instance)


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
    shadowed: dict[tuple[str, str], Component] = field(default_factory=dict)  # (kind, package:name) -> a clash's other component
    switched_off: list[str] = field(default_factory=list)  # plugins GANZOO_DISABLE_PLUGINS turned off
    pm: pluggy.PluginManager = field(default_factory=lambda: _new_plugin_manager())
    _packages: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin -> (distribution, version)

    @property
    def failures(self) -> list[PluginProblem]:  # the name of the first version
        return self.problems

    # -- loading ---------------------------------------------------------------
    def load_plugins(self) -> "Registry":
        """The built-in plugins, then every plugin of the ``ganzoo`` entry-point group."""
        package = importlib.import_module(BUILTIN_PACKAGE)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            name = f"{BUILTIN_PACKAGE}.{info.name}"  # its full module name: an entry point may be called r1 too
            if info.name.startswith("_") or self.pm.has_plugin(name):
                continue
            self._load(name, lambda n=name: importlib.import_module(n), "ganzoo", __version__)
        off = _names_in("GANZOO_DISABLE_PLUGINS")
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.dist is not None and ep.dist.name == "ganzoo":
                continue  # ganzoo's own entry points from an older install: the built-ins are loaded above
            dist = ep.dist.name if ep.dist else "?"
            if off & {_norm(ep.name), _norm(dist)}:
                self.switched_off.append(f"{ep.name} ({dist})")
                continue
            name = ep.name if not self.pm.has_plugin(ep.name) else f"{ep.name} ({dist})"
            if self.pm.has_plugin(name):
                continue
            self._load(name, ep.load, dist, ep.dist.version if ep.dist else "?")
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
        hooks = [(kind, hook_name, base) for kind, (hook_name, base) in KINDS.items()] + [("architecture", LEGACY_HOOK, Architecture)]
        for kind, hook_name, base in hooks:
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
        if kind == "architecture":  # the earlier contract: one class for both roles
            for role, derived in zip(("generator", "critic"), architecture_builders(cls)):
                self._add(Component(role, name, derived, plugin, package, version), strict)
            return
        self._add(Component(kind, name, cls, plugin, package, version), strict)

    def _add(self, new: Component, strict: bool) -> None:
        kind, name = new.kind, new.name
        if (kind, name) in self.disabled:
            return
        existing = self.components[kind].get(name)
        if existing is None:
            self.components[kind][name] = new
            return
        if existing.package == new.package:
            message = f"{kind} '{name}' is registered twice by {new.package} (plugins '{existing.plugin}' and '{new.plugin}')"
            if strict:
                raise GanzooError(message)
            self.problems.append(PluginProblem(new.plugin, message + "; the first is kept", new.package))
            return
        prefer = _names_in("GANZOO_PREFER_PLUGINS")
        keep, other = existing, new
        if _norm(new.package) in prefer and _norm(existing.package) not in prefer:
            keep, other = new, existing
        self.components[kind][name] = keep
        self.shadowed[(kind, other.qualified_name)] = other
        message = (f"{kind} '{name}' is registered by {existing.package} (plugin {existing.plugin}) and by {new.package} "
                   f"(plugin {new.plugin}): '{name}' is {keep.package}'s, the other is '{other.qualified_name}'"
                   + ("" if prefer else f" (GANZOO_PREFER_PLUGINS={other.package} gives it the name)"))
        self.problems.append(PluginProblem(new.plugin, message, new.package))
        if strict:  # a notebook's own plugin: say it now (installed plugins' problems are logged once, by get_registry)
            log.warning("%s", message)

    # -- lookup ----------------------------------------------------------------
    def get(self, kind: str, name: str) -> Component:
        try:
            if isinstance(name, str) and ":" in name:  # package:name
                package, _, short = name.partition(":")
                found = self.components[kind].get(short)
                if found is not None and found.package == package:
                    return found
                return self.shadowed[(kind, name)]
            return self.components[kind][name]
        except KeyError:
            if (kind, name) in self.disabled:
                raise GanzooError(f"{kind} '{name}' is unavailable: {self.disabled[(kind, name)]}") from None
            names = sorted(self.components[kind])
            elsewhere = [k for k, found in self.components.items() if k != kind and name in found]
            if elsewhere:  # the right name in the wrong place: say where it goes, not which name of this kind is near
                where = " or ".join(f"{k} ({WHERE.get(k, k)})" for k in elsewhere)
                raise GanzooError(f"'{name}' is a {where}, not {'an' if kind[0] in 'aeiou' else 'a'} {kind}; the {kind}s are: {', '.join(names) or 'none installed'}") from None
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
        """Every component, by kind then name (a clash's other component under its ``package:name``)."""
        shadowed = lambda kind: [c for (k, _), c in self.shadowed.items() if k == kind]  # noqa: E731
        return [c for kind in KINDS for c in sorted([*self.components[kind].values(), *shadowed(kind)], key=lambda c: c.name)]

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
