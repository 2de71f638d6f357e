"""The component registry, fed by pluggy plugins.

Every plugin, built-in or third-party, is a module exposed through the
``ganzoo`` entry-point group. Loading calls each plugin's ``register_*``
hooks with a ``register`` callback and records, per component, the plugin
that provided it and that plugin's distribution version.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from . import hookspecs
from .errors import GanzooError
from .interfaces import Architecture, Dataset, Objective, Regularizer

ENTRY_POINT_GROUP = "ganzoo"

# kind -> (hook name, base class)
KINDS: dict[str, tuple[str, type]] = {
    "architecture": ("register_architectures", Architecture),
    "objective": ("register_objectives", Objective),
    "regularizer": ("register_regularizers", Regularizer),
    "dataset": ("register_datasets", Dataset),
}


@dataclass(frozen=True)
class Component:
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


@dataclass
class PluginFailure:
    plugin: str
    error: str


@dataclass
class Registry:
    """Components by kind and name, plus the plugins that could not load."""

    components: dict[str, dict[str, Component]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failures: list[PluginFailure] = field(default_factory=list)
    pm: pluggy.PluginManager = field(default_factory=lambda: _new_plugin_manager())
    _packages: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin -> (distribution, version)

    # -- loading ---------------------------------------------------------------
    def load_entry_points(self) -> "Registry":
        """Import every plugin of the ``ganzoo`` entry-point group.

        A plugin that fails to import is recorded in ``failures`` (and shown
        by ``ganzoo list``); all other plugins still load.
        """
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if self.pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break the rest
                self.failures.append(PluginFailure(ep.name, f"{type(exc).__name__}: {exc}"))
                continue
            dist = ep.dist
            self.add_plugin(module, name=ep.name, package=dist.name if dist else "?", version=dist.version if dist else "?")
        return self

    def add_plugin(self, plugin, name: str, package: str = "(local)", version: str = "?") -> None:
        """Register one plugin object (module or class) and collect its components."""
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            raise GanzooError(f"plugin '{name}': {exc}") from None
        self._packages[name] = (package, version)
        for kind, (hook_name, base) in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name == name:
                    impl.function(register=functools.partial(self._register, kind, base, name))

    def _register(self, kind: str, base: type, plugin: str, cls: type) -> None:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise GanzooError(f"plugin '{plugin}' registered {cls!r} as a {kind}, but it is not a subclass of {base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise GanzooError(f"plugin '{plugin}' registered a {kind} without a name")
        existing = self.components[kind].get(name)
        if existing is not None:
            raise GanzooError(
                f"{kind} '{name}' is registered twice: by plugin '{existing.plugin}' ({existing.package}) "
                f"and by plugin '{plugin}' ({self._packages[plugin][0]})"
            )
        self.components[kind][name] = Component(kind, name, cls, plugin, *self._packages[plugin])

    # -- lookup ----------------------------------------------------------------
    def get(self, kind: str, name: str) -> Component:
        try:
            return self.components[kind][name]
        except KeyError:
            names = sorted(self.components[kind])
            raise GanzooError(f"unknown {kind} '{name}'{did_you_mean(name, names)}; available: {', '.join(names)}") from None

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
    """The registry of every installed plugin, loaded once per process."""
    return Registry().load_entry_points()
