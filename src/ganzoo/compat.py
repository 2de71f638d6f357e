"""What keeps earlier plugins, recipes and checkpoints working, in one place, each piece with the version it can be
dropped in. Nothing else in ganzoo carries code for an earlier contract.

| piece | for | drop in |
|---|---|---|
| ``Architecture`` and ``architecture_builders`` | plugins that register a generator/critic family as one class through the ``register_architectures`` hook (its hookspec stays in ``hookspecs.py``, which pluggy needs) | 0.3.0 |
| ``LEGACY_HOOK`` | the name of that hook, for the registry | 0.3.0 |
| ``upgrade_recipe`` | recipes and checkpoints whose ``objective.n_critic`` is ``train.n_critic`` now | 0.3.0 |
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from .errors import GanzooError
from .interfaces import Critic, CriticBuilder, Generator, GeneratorBuilder, ImageShape, Params

# the earlier contract: a generator/critic family as one class, registered as a generator and a critic
LEGACY_HOOK = "register_architectures"


class Architecture:
    """The earlier contract for a generator/critic family (one class, two parameter sets), still accepted: ganzoo
    registers a plugin's ``Architecture`` as a ``GeneratorBuilder`` and a ``CriticBuilder`` of the same name.
    New code writes those two instead (docs/plugins.md, "Porting").

    An instance holds the params of both roles (``GeneratorParams``, ``CriticParams``; a role the recipe does
    not give this architecture is ``None``). ``initialize`` is the architecture's own weight initialisation,
    applied right after building (a recipe's ``init: dcgan`` or ``init: default`` overrides it).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    GeneratorParams: ClassVar[type[Params]] = Params
    CriticParams: ClassVar[type[Params]] = Params

    def __init__(self, generator: Params | None = None, critic: Params | None = None):
        self.generator_params = generator if generator is not None else type(self).GeneratorParams()
        self.critic_params = critic if critic is not None else type(self).CriticParams()

    # Both builders raise ``ValueError`` with a reason for an unsupported shape.
    def build_generator(self, shape: ImageShape) -> Generator:
        raise NotImplementedError

    def build_critic(self, shape: ImageShape) -> Critic:
        raise NotImplementedError

    def initialize(self, module: nn.Module) -> None:
        """Initialise a freshly built generator or critic; the default keeps PyTorch's own layer initialisation."""


def architecture_builders(arch: type) -> tuple[type, type]:
    """A ``GeneratorBuilder`` and a ``CriticBuilder`` class made from an ``Architecture`` class of the earlier
    contract: a plugin written against it keeps working unchanged."""

    def builder(base, role):
        def build(self, shape):
            return getattr(arch(**{role: self.params}), f"build_{role}")(shape)

        def initialize(self, module):
            arch(**{role: self.params}).initialize(module)

        return type(f"{arch.__name__}{role.title()}", (base,), {
            "name": arch.name, "description": getattr(arch, "description", ""), "__module__": arch.__module__,
            "Params": getattr(arch, f"{role.title()}Params"), "build": build, "initialize": initialize, "legacy": arch})

    return builder(GeneratorBuilder, "generator"), builder(CriticBuilder, "critic")


def upgrade_recipe(raw: dict, registry) -> None:
    """Recipes of the first version (and the checkpoints that hold them) keep their meaning: ``objective.n_critic``
    is ``train.n_critic`` now, the one place for it. Remove in 0.3.0 (recipes written by 0.1.0 then need that edit,
    which this error message names)."""
    objective, train = raw.get("objective"), raw.get("train")
    if not (isinstance(objective, dict) and "n_critic" in objective and isinstance(train, dict)):
        return
    try:
        params = registry.get("objective", objective.get("name")).cls.Params
    except GanzooError:
        return
    if "n_critic" in params.model_fields:
        return
    value = objective.pop("n_critic")
    if train.get("n_critic") not in (None, value):
        raise GanzooError(f"objective.n_critic ({value}) and train.n_critic ({train['n_critic']}) disagree: "
                          "keep train.n_critic, the one place for it")
    train["n_critic"] = value
