"""Build a recipe's generator and critic through the registry, and load them back."""

from __future__ import annotations

import torch
from torch import nn

from . import contracts, limits
from .checkpoint import Checkpoint, load_checkpoint, load_state, load_weights
from .errors import GanzooError
from .interfaces import Critic, Generator, ImageShape
from .labels import LabelSpace
from .registry import Registry, get_registry


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


def image_shape(recipe) -> ImageShape:
    return ImageShape(resolution=recipe.data.resolution, channels=recipe.data.channels, latent_dim=recipe.generator.latent_dim)


def build_objective(recipe, registry: Registry | None = None):
    """The recipe's objective, its losses checked on every call."""
    return (registry or get_registry()).get("objective", recipe.objective.name).create(recipe.objective.params)


def build_regularizers(recipe, registry: Registry | None = None, objective=None) -> list:
    """Every constraint on the critic, in order: those the objective's definition implies (WGAN-GP's gradient
    penalty, WGAN's weight clipping), then the recipe's ``regularizers:``."""
    registry = registry or get_registry()
    objective = objective or build_objective(recipe, registry)
    implied = contracts.check_json(registry.get("objective", recipe.objective.name), objective.regularizers(), "regularizers()")
    out = []
    for entry in implied:
        entry = dict(entry)
        out.append(registry.create("regularizer", entry.pop("name", None), entry))
    return out + [registry.get("regularizer", r.name).create(r.params) for r in recipe.regularizers]


def build_models(recipe, registry: Registry | None = None, regularizers: list | None = None,
                 labels: LabelSpace | None = None) -> tuple[Generator, Critic]:
    """The recipe's generator and critic, initialised as it says, the critic set up by its regularizers; for a
    conditional recipe, wrapped by its conditioning for the ``labels`` (the data's ``LabelSpace``)."""
    registry = registry or get_registry()
    shape = image_shape(recipe)
    cond, cond_component = None, None
    if recipe.condition is not None:
        if labels is None:
            raise GanzooError(f"{recipe.name} is conditional (data.labels {recipe.data.labels}): building it needs the labels' "
                              "classes (from the data, or from a checkpoint)")
        cond_component = registry.get("conditioning", recipe.condition.name)
        cond = cond_component.create(recipe.condition.params)
    nets = []
    for role, expected in (("generator", Generator), ("critic", Critic)):
        section = getattr(recipe, role)
        component = registry.get("architecture", section.name)
        arch = component.create(**{role: section.params})
        role_shape = shape
        if cond is not None:
            with contracts.calling(cond_component, f"{role}_inputs"):
                extra = int(getattr(cond, f"{role}_inputs")(labels))
            role_shape = shape.model_copy(update={"latent_dim": shape.latent_dim + extra} if role == "generator"
                                          else {"channels": shape.channels + extra})
        with contracts.calling(component, f"build_{role}"):
            try:
                net = getattr(arch, f"build_{role}")(role_shape)
            except ValueError as exc:
                raise GanzooError(f"{role}: architecture '{section.name}' cannot be built for "
                                  f"{shape.channels}x{shape.resolution}x{shape.resolution}: {exc}") from None
        contracts.check_instance(component, net, expected, f"build_{role}")
        if section.init == "dcgan":
            dcgan_init(net)
        elif section.init == "architecture":
            with contracts.calling(component, "initialize"):
                arch.initialize(net)
        if cond is not None:
            with contracts.calling(cond_component, f"wrap_{role}"):
                try:
                    net = getattr(cond, f"wrap_{role}")(net, labels)
                except ValueError as exc:
                    raise GanzooError(f"condition '{recipe.condition.name}' with {role} '{section.name}': {exc}") from None
            contracts.check_instance(cond_component, net, expected, f"wrap_{role}")
        nets.append(net)
    g, d = nets
    for reg in build_regularizers(recipe, registry) if regularizers is None else regularizers:
        with contracts.calling(reg.component, "setup"):
            reg.setup(d)
    _check_fit(recipe, registry, g, d, shape)
    return g, d


def _check_fit(recipe, registry, g, d, shape) -> None:
    """Fail early, with a message naming the plugin, on a G/critic pair that does not fit together."""
    with torch.no_grad():
        g.eval(), d.eval()
        gen = registry.get("architecture", recipe.generator.name)
        y = () if recipe.condition is None else (torch.zeros(2, len(recipe.data.labels), dtype=torch.long),)
        with contracts.calling(gen, "the generator's forward"):
            x = g(torch.zeros(2, shape.latent_dim), *y)  # no random draw: the RNG stream of training starts as before
        want = (2, shape.channels, shape.resolution, shape.resolution)
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != want:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise contracts.ContractError(f"{contracts.who(gen)}: the generator produced {got}, expected {want}")
        crit = registry.get("architecture", recipe.critic.name)
        with contracts.calling(crit, "the critic's forward"):
            s = d(x, *y)
        if not isinstance(s, torch.Tensor) or tuple(s.shape) != (2,):
            got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise contracts.ContractError(f"{contracts.who(crit)}: the critic produced scores of shape {got}, expected (N,)")
        g.train(), d.train()


def preflight(recipe, registry: Registry | None = None) -> dict:
    """What ``run`` would refuse before training, checked without training or decoding (``ganzoo check`` runs it):
    the data source is there, both networks build for the recipe's shape and fit together (built on PyTorch's
    ``meta`` device: no memory, no random draws), and they fit in memory. Returns the parameter counts."""
    registry = registry or get_registry()
    data = registry.get("dataset", recipe.data.name)
    with contracts.calling(data, "check"):
        data.create(recipe.data.params).check()
    labels = None
    if recipe.data.labels:  # the classes are known once the data is read: two stand in for each here
        labels = LabelSpace(tuple(recipe.data.labels), (("a", "b"),) * len(recipe.data.labels), ((1, 1),) * len(recipe.data.labels))
    with torch.device("meta"):
        g, d = build_models(recipe, registry, labels=labels)
    counts = {"generator": sum(p.numel() for p in g.parameters()), "critic": sum(p.numel() for p in d.parameters())}
    copies = 4 + (1 if recipe.ema.decay else 0)  # weights, gradients, two optimizer moments (+ the EMA of G)
    limits.require_memory(4 * copies * (counts["generator"] + counts["critic"]),
                          f"training {counts['generator']:,} generator and {counts['critic']:,} critic parameters",
                          "make the networks smaller (latent_dim, widths)")
    return counts


def forward_macs(recipe, registry: Registry | None = None) -> int:
    """Multiply-adds of one image through G and through the critic (one forward each), counted on the ``meta``
    device by torch's FLOP counter: no memory, no data, no random draws (``bench/threads.py`` records it per recipe)."""
    from torch.utils.flop_counter import FlopCounterMode

    registry = registry or get_registry()
    labels = None
    if recipe.data.labels:
        labels = LabelSpace(tuple(recipe.data.labels), (("a", "b"),) * len(recipe.data.labels), ((1, 1),) * len(recipe.data.labels))
    with torch.device("meta"):
        g, d = build_models(recipe, registry, labels=labels)
        z = torch.zeros(2, g.latent_dim)
        y = None if labels is None else torch.zeros(2, len(labels.attributes), dtype=torch.long)
        with FlopCounterMode(display=False) as counter:
            x = g(z) if y is None else g(z, y)
            d(x) if y is None else d(x, y)
    return counter.get_total_flops() // 4  # two images, two FLOPs per multiply-add


def make_ema(generator: Generator, decay: float, warmup: bool = False):
    """An exponential moving average of ``generator`` (weights and BatchNorm statistics); ``.module`` is a Generator.

    ``warmup``: the decay after n averaged steps is min(decay, (1 + n) / (10 + n)), so that the first weights
    (a random generator) leave the average within tens of steps rather than 1/(1 - decay). It depends on the
    averaged-step count alone, which checkpoints keep: resume stays exact.
    """
    from torch.optim.swa_utils import AveragedModel

    @torch.no_grad()
    def update(averages: list, current: list, n_averaged: torch.Tensor) -> None:
        d = decay
        if warmup:  # reads the count (a GPU sync on CUDA): only when asked for
            n = float(n_averaged)
            d = min(decay, (1 + n) / (10 + n))
        if torch.is_floating_point(averages[0]):
            torch._foreach_lerp_(averages, current, 1 - d)
        else:  # integer buffers (BatchNorm's batch counter)
            for a, c in zip(averages, current):
                a.copy_(a * d + c * (1 - d))

    return AveragedModel(generator, multi_avg_fn=update, use_buffers=True)


def has_ema(ckpt: Checkpoint) -> bool:
    """True when the checkpoint holds an EMA generator that has averaged at least one step."""
    n = ckpt.tensors.get("generator_ema.n_averaged")
    return n is not None and int(n) > 0


def load_models(checkpoint, device="cpu", registry: Registry | None = None, ema: bool = True):
    """``(generator, critic, recipe, checkpoint)`` from a checkpoint file or run directory.

    With ``ema`` (the default) the generator is the checkpoint's weight average when it has one.
    """
    from .recipe import load_recipe

    ckpt: Checkpoint = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    try:
        recipe = load_recipe(ckpt.recipe, registry=registry)
    except GanzooError as exc:
        raise GanzooError(f"{ckpt.path}: its recipe no longer validates here: {exc}") from None
    g, d = build_models(recipe, registry, labels=checkpoint_labels(ckpt))
    load_weights(ckpt, g, d)
    if ema and has_ema(ckpt):
        load_state(g, ckpt.state("generator_ema.module"), "EMA generator", ckpt.path)
    return g.to(device).eval(), d.to(device).eval(), recipe, ckpt


def checkpoint_labels(ckpt: Checkpoint) -> LabelSpace | None:
    """The label space a conditional checkpoint was trained on (None for an unconditional one)."""
    saved = ckpt.meta.get("labels")
    if not saved:
        return None
    try:
        return LabelSpace.from_dict(saved)
    except (KeyError, TypeError, AttributeError):
        raise GanzooError(f"{ckpt.path}: damaged label metadata") from None


def load_generator(checkpoint, device="cpu", registry: Registry | None = None, ema: bool = True) -> Generator:
    """The generator of a checkpoint (file or run directory), in eval mode; its EMA when it has one (and ``ema``)."""
    return load_models(checkpoint, device, registry, ema)[0]
