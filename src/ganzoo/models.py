"""Build a recipe's generator, critic, objective and regularizers through the registry (loading them back: ``ganzoo.trained``)."""

from __future__ import annotations

import logging

import torch
from torch import nn

from . import contracts, limits, rng
from .errors import GanzooError
from .interfaces import Critic, Generator, ImageShape
from .labels import LabelSpace
from .registry import Registry, get_registry

log = logging.getLogger("ganzoo")


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.'s init: conv/linear weights N(0, 0.02), norm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def pyramid(resolution: int) -> tuple[int, int]:
    """(start size, number of x2 stages) with start * 2**stages == resolution and start >= 3: the resolution
    ladder a convolutional generator climbs and a critic descends. 64 -> (4, 4), 32 -> (4, 3), 28 -> (7, 2),
    96 -> (6, 4), 128 -> (4, 5)."""
    start, stages = resolution, 0
    while start % 2 == 0 and start // 2 >= 4:
        start, stages = start // 2, stages + 1
    return start, stages


def image_shape(recipe) -> ImageShape:
    return ImageShape(resolution=recipe.data.resolution, channels=recipe.data.channels, latent_dim=recipe.generator.latent_dim)


def build_objective(recipe, registry: Registry | None = None):
    """The recipe's objective, its losses checked on every call."""
    return (registry or get_registry()).get("objective", recipe.objective.name).create(recipe.objective.params)


def implied_regularizers(recipe, registry: Registry | None = None, objective=None) -> list[tuple[str, dict]]:
    """``(whose, entry)`` for each regularizer a component's definition implies, as recipe entries: the objective's
    (WGAN-GP's gradient penalty, WGAN's weight clipping), then the critic's (Projected GAN's DiffAugment)."""
    registry = registry or get_registry()
    objective = objective or build_objective(recipe, registry)
    critic = registry.get("critic", recipe.critic.name)
    return [(f"objective '{recipe.objective.name}'", e) for e in
            contracts.check_json(registry.get("objective", recipe.objective.name), objective.regularizers(), "regularizers()")] + \
        [(f"critic '{recipe.critic.name}'", e) for e in
         contracts.check_json(critic, getattr(critic.create(recipe.critic.params), "regularizers", list)(), "regularizers()")]


def build_regularizers(recipe, registry: Registry | None = None, objective=None) -> list:
    """Every regularizer of the run, in order: those the objective's and the critic's definitions imply
    (``implied_regularizers``), then the recipe's ``regularizers:``. One the recipe also lists by name replaces the
    implied one (the recipe's parameters win: one penalty, never two), with a warning."""
    registry = registry or get_registry()
    listed = {r.name for r in recipe.regularizers}
    out = []
    for whose, entry in implied_regularizers(recipe, registry, objective):
        entry = dict(entry)
        name = entry.pop("name", None)
        if name in listed:
            log.warning(f"regularizers: '{name}' is part of {whose} and listed in the recipe: "
                        "the recipe's entry is the one applied")
            continue
        out.append(registry.create("regularizer", name, entry))
    out += [registry.get("regularizer", r.name).create(r.params) for r in recipe.regularizers]
    for reg in out:
        need = getattr(reg, "min_batch", 1)
        if recipe.train.batch_size < need:
            raise GanzooError(f"regularizers: '{reg.name}' needs at least {need} images per step to act, but train.batch_size is "
                              f"{recipe.train.batch_size}: it would train without the term; raise train.batch_size or drop it")
    return out


def build_models(recipe, registry: Registry | None = None, regularizers: list | None = None,
                 labels: LabelSpace | None = None, check: bool = True) -> tuple[Generator, Critic]:
    """The recipe's generator and critic, initialised as it says, each set up by the regularizers that act on it;
    for a conditional recipe, wrapped by its conditioning for the ``labels`` (the data's ``LabelSpace``).
    ``check``: run both once on a tiny batch to fail early on a pair that does not fit together."""
    registry = registry or get_registry()
    shape = image_shape(recipe)
    cond = None
    if recipe.condition is not None:
        if labels is None:
            raise GanzooError(f"{recipe.name} is conditional (data.labels {recipe.data.labels}): building it needs the labels' "
                              "classes (from the data, or from a checkpoint)")
        cond = registry.get("conditioning", recipe.condition.name).create(recipe.condition.params)
    nets = {}
    for role, expected in (("generator", Generator), ("critic", Critic)):
        section = getattr(recipe, role)
        builder = registry.get(role, section.name).create(section.params)
        role_shape = shape
        if cond is not None:
            extra = int(getattr(cond, f"{role}_inputs")(labels))
            role_shape = shape.model_copy(update={"latent_dim": shape.latent_dim + extra} if role == "generator"
                                          else {"channels": shape.channels + extra})
        try:
            net = builder.build(role_shape)
        except ValueError as exc:
            raise GanzooError(f"{role} '{section.name}' cannot be built for "
                              f"{shape.channels}x{shape.resolution}x{shape.resolution}: {exc}") from None
        if not isinstance(getattr(net, "__dict__", {}).get("shape"), ImageShape):  # Generator/Critic.__init__ sets it
            raise contracts.ContractError(f"{contracts.who(registry.get(role, section.name))}: the {role} it built "
                                          f"({type(net).__name__}) has no shape: its __init__ must call super().__init__(shape)")
        if section.init == "dcgan":
            dcgan_init(net)
        elif section.init == "architecture":
            builder.initialize(net)
        if cond is not None:
            try:
                net = getattr(cond, f"wrap_{role}")(net, labels)
            except ValueError as exc:
                raise GanzooError(f"condition '{recipe.condition.name}' with {role} '{section.name}': {exc}") from None
            contracts.check_instance(cond.component, net, expected, f"wrap_{role}")
        nets[role] = net
    g, d = nets["generator"], nets["critic"]
    regularizers = build_regularizers(recipe, registry) if regularizers is None else regularizers
    for reg in regularizers:
        with contracts.calling(getattr(reg, "component", reg), "setup"):  # a notebook's own regularizer too
            reg.setup(g if getattr(reg, "target", "critic") == "generator" else d)
    if check:
        _check_fit(recipe, registry, g, d, shape)
    return g, d


def _check_fit(recipe, registry, g, d, shape) -> None:
    """Fail early, with a message naming the plugin, on a G/critic pair that does not fit together. Runs on a fork
    of the RNG: a generator's noise inputs leave training's random stream as it was."""
    with torch.no_grad(), rng.isolated():
        g.eval(), d.eval()
        gen = registry.get("generator", recipe.generator.name)
        y = () if recipe.condition is None else (torch.zeros(2, len(recipe.data.labels), dtype=torch.long),)
        with contracts.calling(gen, "the generator's forward"):
            x = g(torch.zeros(2, shape.latent_dim), *y)
        want = (2, shape.channels, shape.resolution, shape.resolution)
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != want:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise contracts.ContractError(f"{contracts.who(gen)}: the generator produced {got}, expected {want}")
        crit = registry.get("critic", recipe.critic.name)
        with contracts.calling(crit, "the critic's forward"):
            s = d(x, *y)
        if not isinstance(s, torch.Tensor) or tuple(s.shape) != (2,):
            got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise contracts.ContractError(f"{contracts.who(crit)}: the critic produced scores of shape {got}, expected (N,)")
        g.train(), d.train()


def _stand_in_labels(recipe) -> LabelSpace | None:
    """Before the data is read, the classes are unknown: two stand in for each attribute."""
    if not recipe.data.labels:
        return None
    n = len(recipe.data.labels)
    return LabelSpace(tuple(recipe.data.labels), (("a", "b"),) * n, ((1, 1),) * n)


def preflight(recipe, registry: Registry | None = None) -> dict:
    """What ``run`` would refuse before training, checked without training or decoding (``ganzoo check`` runs it):
    the data source is there, both networks build for the recipe's shape and fit together, and they fit in memory.
    Both are built on PyTorch's ``meta`` device (no memory, no random draws); a network whose forward cannot run
    there (one that draws noise from its own ``torch.Generator``) is checked by its parameter count alone, and
    its forward once it is built for real. Returns the parameter counts."""
    registry = registry or get_registry()
    component = registry.get("dataset", recipe.data.name)
    with contracts.calling(component, "check"):
        component.create(recipe.data.params).check()
    for section in recipe.callbacks:  # a callback's missing package stops here, not after the data is decoded
        component = registry.get("callback", section.name)
        with contracts.calling(component, "check"):
            check = getattr(component.create(section.params), "check", None)
            if check is not None:
                check()
    labels = _stand_in_labels(recipe)
    with torch.device("meta"):
        g, d = build_models(recipe, registry, labels=labels, check=False)
        try:
            _check_fit(recipe, registry, g, d, image_shape(recipe))
        except contracts.ContractError as exc:
            if "meta" not in str(exc).lower():
                raise
            log.debug(f"pre-flight: the forward pass cannot run on the meta device ({exc}); checked when built")
    counts = {"generator": sum(p.numel() for p in g.parameters()), "critic": sum(p.numel() for p in d.parameters())}
    copies = 4 + (1 if recipe.ema.enabled else 0)  # weights, gradients, two optimizer moments (+ the EMA of G)
    limits.require_memory(4 * copies * (counts["generator"] + counts["critic"]),
                          f"training {counts['generator']:,} generator and {counts['critic']:,} critic parameters",
                          "make the networks smaller (latent_dim, widths)")
    return counts


def forward_macs(recipe, registry: Registry | None = None) -> int:
    """Multiply-adds of one image through G and through the critic (one forward each), counted on the ``meta``
    device by torch's FLOP counter: no memory, no data, no random draws (``bench/threads.py`` records it per recipe)."""
    from torch.utils.flop_counter import FlopCounterMode

    registry = registry or get_registry()
    labels = _stand_in_labels(recipe)
    with torch.device("meta"), rng.isolated():
        g, d = build_models(recipe, registry, labels=labels)
        z = torch.zeros(2, g.latent_dim)
        y = None if labels is None else torch.zeros(2, len(labels.attributes), dtype=torch.long)
        with FlopCounterMode(display=False) as counter:
            x = g(z) if y is None else g(z, y)
            d(x) if y is None else d(x, y)
    return counter.get_total_flops() // 4  # two images, two FLOPs per multiply-add


def make_ema(generator: Generator, decay: float, warmup: bool = False):
    """An exponential moving average of ``generator`` (weights and BatchNorm statistics); ``.module`` is a Generator.

    ``decay`` is an attribute of the average that a schedule may change between steps (``ema.half_life``).
    ``warmup``: the decay after n averaged steps is min(decay, (1 + n) / (10 + n)), so that the first weights
    (a random generator) leave the average within tens of steps rather than 1/(1 - decay). It depends on the
    averaged-step count alone, which checkpoints keep: resume stays exact.
    """
    from torch.optim.swa_utils import AveragedModel

    @torch.no_grad()
    def update(averages: list, current: list, n_averaged: torch.Tensor) -> None:
        d = ema.decay
        if warmup:  # reads the count (a GPU sync on CUDA): only when asked for
            n = float(n_averaged)
            d = min(d, (1 + n) / (10 + n))
        if torch.is_floating_point(averages[0]):
            torch._foreach_lerp_(averages, current, 1 - d)
        else:  # integer buffers (BatchNorm's batch counter)
            for a, c in zip(averages, current):
                a.copy_(a * d + c * (1 - d))

    ema = AveragedModel(generator, multi_avg_fn=update, use_buffers=True)
    ema.decay = decay
    return ema
