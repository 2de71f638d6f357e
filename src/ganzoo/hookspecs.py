"""The hooks a ganzoo plugin can implement.

A plugin is a module (or package) exposed through the ``ganzoo`` entry-point
group. It implements one or more of these hooks with ``@ganzoo.hookimpl``
and calls ``register`` once per component it provides::

    import ganzoo

    @ganzoo.hookimpl
    def register_objectives(register):
        register(MyLoss)

Built-in components are plugins of exactly this kind (the modules of
``ganzoo_plugins``, loaded by import path).
"""

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


@hookspec
def register_generators(register):
    """Register ``ganzoo.GeneratorBuilder`` subclasses (``Kind(params).build(shape)`` -> a ``ganzoo.Generator``)."""


@hookspec
def register_critics(register):
    """Register ``ganzoo.CriticBuilder`` subclasses (``Kind(params).build(shape)`` -> a ``ganzoo.Critic``)."""


@hookspec
def register_architectures(register):
    """The earlier contract: register ``ganzoo.Architecture`` subclasses (a generator and critic family in one
    class). Each is registered as a generator and a critic of its name; new plugins use the two hooks above."""


@hookspec
def register_objectives(register):
    """Register ``ganzoo.Objective`` subclasses (a pair of losses)."""


@hookspec
def register_regularizers(register):
    """Register ``ganzoo.Regularizer`` subclasses (critic constraints: spectral norm, R1, DiffAugment)."""


@hookspec
def register_datasets(register):
    """Register ``ganzoo.Dataset`` subclasses (a source of training images)."""


@hookspec
def register_callbacks(register):
    """Register ``ganzoo.Callback`` subclasses (observers of a run that a recipe names under ``callbacks:``)."""


@hookspec
def register_conditionings(register):
    """Register ``ganzoo.Conditioning`` subclasses (how labels condition a generator and a critic)."""
