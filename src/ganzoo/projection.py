"""Projection: the latent vector whose image best reproduces a given image.

Gradient descent (Adam) on the generator's input with the generator frozen. The input is w, one per image, for a
generator with a w-space (StyleGAN-style; it starts at the tracked average w, as StyleGAN2's projector does) and
z otherwise (it starts at the best of a few draws from the prior, and a small penalty keeps it where the prior
puts its mass). The distance is the mean squared pixel difference plus, by default, a distance between the
critic's feature maps of the two images (``features="critic"``: every convolution's output, each normalised to
unit mean square, which weighs edges and texture that pixels alone blur away), or Inception's 2048-d features
(``features="inception"``, the FID network: slower), or pixels alone. No LPIPS weights can be downloaded here;
the critic has learnt what the training images look like, which is what a projection should match.

A conditional generator projects with the labels it is given, or with the best of a few label draws (kept
fixed while the latent moves). Noise inputs are drawn from one fixed seed at every step, so the loss is
smooth and the result is reproducible.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import limits, rng
from .errors import GanzooError
from .sampling import has_w_space, label_codes

FEATURES = ("critic", "inception", "pixels")


@dataclass
class Projection:
    """A projected image: ``latent`` ``(1, D)`` in ``space`` (``"w"`` or ``"z"``), the fixed ``labels`` ``(1, A)``
    of a conditional generator (else None), the reconstruction ``image`` (uint8 ``(C, H, W)``), its ``distance`` to
    the target (RMS pixel difference on [0, 1], the unit of ``pairwise_rms``; before any step: ``start_distance``)
    and the loss at every step."""

    latent: torch.Tensor
    space: str
    labels: torch.Tensor | None
    image: torch.Tensor
    distance: float
    start_distance: float
    features: str
    steps: int
    losses: list[float] = field(default_factory=list)
    model: dict = field(default_factory=dict)  # which weights it was projected into: run_id, weights_sha256, step

    def save(self, path) -> Path:
        """The latent (and labels) as safetensors, with what they mean in the metadata; ``load_projection`` reads it."""
        from safetensors.torch import save

        from .fileio import atomic_write

        tensors = {"latent": self.latent.detach().cpu().contiguous()}
        if self.labels is not None:
            tensors["labels"] = self.labels.cpu().contiguous()
        meta = {"ganzoo_projection": json.dumps({"space": self.space, "distance": self.distance, "features": self.features,
                                                 "steps": self.steps, "model": self.model})}
        return atomic_write(path, save(tensors, meta))


MAX_PIXELS = 100_000_000  # an image to project is decoded whole: a larger header is refused before decoding


def prepare_image(image, shape) -> torch.Tensor:
    """An image file path or PIL image as uint8 ``(C, H, W)`` for a generator of ``shape`` (its ``ImageShape``):
    centre-cropped to a square, resized (Lanczos) to the resolution, converted to gray or RGB."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(image, Image.Image):
        try:
            with Image.open(image) as opened:
                w, h = opened.size  # read from the header: nothing decoded yet
                if w * h > MAX_PIXELS:
                    raise GanzooError(f"{image}: its header says {w}x{h} pixels ({w * h / 1e6:,.0f} megapixels), over the "
                                      f"{MAX_PIXELS / 1e6:.0f} megapixels an image to project may have; resize it first")
                limits.require_memory(4 * w * h, f"decoding {image} ({w}x{h})", "resize it first")
                image = opened.copy()
        except FileNotFoundError:
            raise GanzooError(f"image not found: {image}") from None
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise GanzooError(f"{image}: not a readable image ({exc})") from None
    image = image.convert("L" if shape.channels == 1 else "RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((shape.resolution, shape.resolution), Image.LANCZOS)
    array = torch.from_numpy(np.array(image))
    return (array.unsqueeze(0) if array.dim() == 2 else array.permute(2, 0, 1)).contiguous()


def load_projection(path) -> tuple[torch.Tensor, str, torch.Tensor | None]:
    """``(latent, space, labels)`` from a file ``Projection.save`` wrote."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise GanzooError(f"projected latent not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["ganzoo_projection"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, ValueError, OSError, KeyError, json.JSONDecodeError):
        raise GanzooError(f"{path} is not a latent written by ganzoo project") from None
    if meta.get("space") not in ("w", "z") or "latent" not in tensors:
        raise GanzooError(f"{path}: damaged projection metadata")
    return tensors["latent"], meta["space"], tensors.get("labels")


def projected_into(path) -> dict:
    """Which weights a projected latent was found for (``run_id``, ``weights_sha256``, ``step``); {} for a file from
    before this was recorded."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        model = json.loads((f.metadata() or {}).get("ganzoo_projection", "{}")).get("model")
    return model if isinstance(model, dict) else {}


def check_model(files, model: dict) -> None:
    """Latents walked through ``model`` (``Projection.model`` of the generator at hand) must come from it: from another
    run they are refused; from other weights of the same run (or where that is unknown), a warning says so."""
    import logging

    for f in files:
        theirs = projected_into(f)
        if not theirs or not model:
            continue
        if theirs.get("run_id") and model.get("run_id") and theirs["run_id"] != model["run_id"]:
            raise GanzooError(f"{f} was projected into another run's generator: its latent means nothing here; "
                              "project the image with this model (ganzoo project)")
        if theirs.get("weights_sha256") != model.get("weights_sha256") and theirs.get("step") != model.get("step"):
            logging.getLogger("ganzoo").warning(f"{f} was projected into other weights (step {theirs.get('step')}; these are "
                                                f"step {model.get('step')}): the walk may not pass through that image")


def synthesize(generator, latent: torch.Tensor, space: str, labels: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Images (clamped to [-1, 1]) of latents in ``space`` (``"w"``: through ``synthesis``; ``"z"``: the whole generator), with
    gradients, noise inputs drawn from ``seed``."""
    cond = () if labels is None else (labels.expand(len(latent), -1),)
    with rng.isolated(seed):
        x = generator.synthesis(latent, *cond) if space == "w" else generator(latent, *cond)
    return x.clamp(-1, 1)  # what an image shows (a generator without tanh may overshoot)


def check_space(generator, space: str, latent: torch.Tensor, where) -> None:
    """A latent from a file must fit the generator it is given to."""
    if space == "w" and not has_w_space(generator):
        raise GanzooError(f"{where}: a w-space latent, but this generator has no w-space (it was projected with another model)")
    dim = getattr(generator, "w_dim", None) if space == "w" else generator.latent_dim
    if latent.dim() != 2 or (dim is not None and latent.shape[1] != dim):
        raise GanzooError(f"{where}: a latent of shape {tuple(latent.shape)}, but this generator takes ({space}) vectors "
                          f"of {dim}: it was projected with another model")


class _ConvFeatures:
    """Every Conv2d output of a network during a forward pass (forward hooks; ``close`` removes them)."""

    def __init__(self, net: torch.nn.Module):
        self.maps: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(lambda _m, _i, out: self.maps.append(out))
                        for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        if not self.handles:
            raise GanzooError("features='critic': this critic has no convolutions to compare (use features='pixels')")

    def __call__(self, net, x, labels) -> list[torch.Tensor]:
        self.maps = []
        net(x) if labels is None else net(x, labels.expand(len(x), -1))
        return [m / m.detach().pow(2).mean().clamp_min(1e-8).sqrt() for m in self.maps]

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _inception_features():
    from .features import default_weights

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice (an error under -W error)
        net = torch.jit.load(str(default_weights()), map_location="cpu").eval()
    for p in net.parameters():
        p.requires_grad_(False)

    def features(x: torch.Tensor) -> torch.Tensor:
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
        return net(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False))

    return features


def project(generator, target: torch.Tensor, labels=None, steps: int = 300, seed: int = 0, critic=None,
            features: str = "critic", lr: float = 0.1, starts: int = 16, feature_weight: float = 0.1,
            progress=None) -> Projection:
    """The latent of ``generator`` whose image best reproduces ``target`` (uint8 ``(C, H, W)`` at the generator's
    shape). ``features``: ``critic`` (needs ``critic``), ``inception`` or ``pixels`` (module docstring);
    ``labels`` for a conditional generator as ``generate`` takes them (None: the best of ``starts`` draws);
    ``progress(step, steps, distance)`` after each step."""
    s = generator.shape
    if target.dtype != torch.uint8 or tuple(target.shape) != (s.channels, s.resolution, s.resolution):
        raise GanzooError(f"the image to project must be uint8 {s.channels}x{s.resolution}x{s.resolution} (this generator's "
                          f"images), got {tuple(target.shape)} {target.dtype}")
    if features not in FEATURES:
        raise GanzooError(f"features: {features!r} is not one of {', '.join(FEATURES)}")
    if features == "critic" and critic is None:
        raise GanzooError("features='critic' needs the run's critic (or use features='pixels' or 'inception')")
    if steps < 0:
        raise GanzooError(f"steps must be 0 or more, got {steps}")
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    frozen = [(p, p.requires_grad) for net in (generator, critic) if net is not None for p in net.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    if critic is not None:
        critic_training = critic.training
        critic.eval()
    hooks = _ConvFeatures(critic) if features == "critic" else None
    inception = _inception_features() if features == "inception" else None
    x_t = target.to(device).float().div(127.5).sub(1).unsqueeze(0)
    space = "w" if has_w_space(generator) else "z"
    try:
        target_feats = None
        latent, y = _start(generator, x_t, labels, space, starts, seed, device)
        with torch.no_grad():
            if hooks is not None:
                target_feats = [f.detach() for f in hooks(critic, x_t, y)]
            elif inception is not None:
                target_feats = inception(x_t).detach()

        def loss_of(latent):
            x = synthesize(generator, latent, space, y, seed)
            loss = F.mse_loss(x, x_t)
            if hooks is not None:
                fake = hooks(critic, x, y)
                loss = loss + feature_weight * sum(F.mse_loss(a, b) for a, b in zip(fake, target_feats)) / len(fake)
            elif inception is not None:
                loss = loss + feature_weight * F.mse_loss(inception(x), target_feats) / target_feats.pow(2).mean().clamp_min(1e-8)
            if space == "z":  # stay where the prior has its mass: |z|^2 near its dimension
                loss = loss + 1e-4 * (latent.pow(2).sum(1) / latent.shape[1] - 1).pow(2).sum()
            return loss, x

        start_distance = _rms(synthesize(generator, latent, space, y, seed).detach(), x_t)
        latent = latent.clone().requires_grad_(True)
        opt = torch.optim.Adam([latent], lr=lr, betas=(0.9, 0.999))
        best, best_d, losses = latent.detach().clone(), start_distance, []
        for step in range(1, steps + 1):
            for group in opt.param_groups:  # StyleGAN2's projector: a short warm-up, then a cosine fall to 0
                t = step / steps
                group["lr"] = lr * min(1.0, t / 0.05) * (0.5 + 0.5 * math.cos(math.pi * t))
            loss, x = loss_of(latent)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            d = _rms(x.detach(), x_t)
            if d < best_d:  # the distance of the latent before this step's update
                best, best_d = latent.detach().clone(), d
            opt.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step, steps, best_d)
        with torch.no_grad():
            final = synthesize(generator, latent.detach(), space, y, seed)
            if _rms(final, x_t) < best_d:
                best, best_d = latent.detach().clone(), _rms(final, x_t)
            image = synthesize(generator, best, space, y, seed)
    finally:
        if hooks is not None:
            hooks.close()
        for p, flag in frozen:
            p.requires_grad_(flag)
        generator.train(was_training)
        if critic is not None:
            critic.train(critic_training)
    from .data import to_uint8

    return Projection(best.cpu(), space, None if y is None else y.cpu(), to_uint8(image)[0].cpu(), best_d, start_distance,
                      features, steps, losses)


def _rms(x: torch.Tensor, target: torch.Tensor) -> float:
    """RMS difference on [0, 1] of images in [-1, 1]."""
    return float((x - target).pow(2).mean().sqrt() / 2)


@torch.no_grad()
def _start(generator, x_t, labels, space, starts, seed, device):
    """The starting latent (and the fixed labels): the average w, or the best of ``starts`` prior draws (with label
    draws when none are given) by pixel distance."""
    space_labels = getattr(generator, "labels", None)
    n = 1 if space == "w" and space_labels is None else max(1, starts)  # the average w: one start
    y = label_codes(generator, n, labels if labels is not None else ("random" if space_labels is not None else None), seed)
    y = None if y is None else y.to(device)
    g = torch.Generator().manual_seed(seed)
    z = generator.sample_latent(n, generator=g).to(device)
    if space == "w":
        if y is None:
            candidates = generator.w_avg.detach().to(device).unsqueeze(0).clone()
        else:  # conditional: the label moves w, so start from the mapping of draws with their labels
            candidates = generator.mapping(z, y)
    else:
        candidates = z
    if n == 1 and y is None:
        return candidates[:1], None
    d = torch.stack([((synthesize(generator, candidates[i:i + 1], space, None if y is None else y[i:i + 1]) - x_t) ** 2).mean()
                     for i in range(n)])
    i = int(d.argmin())
    return candidates[i:i + 1].clone(), None if y is None else y[i:i + 1].clone()


def project_files(source, images, output=None, steps: int = 300, features: str = "auto", labels=None, seed: int = 0,
                  device="cpu", ema: bool = True, force: bool = False, progress=None) -> list[tuple[Path, Projection]]:
    """Project image files into the generator of ``source`` (a run folder, checkpoint or model folder) and write,
    per image ``NAME``, into ``output`` (default ``RUN/projections``): ``NAME.latent.safetensors`` (the latent, for
    ``ganzoo interpolate --between``), ``NAME.png`` (the reconstruction) and ``NAME.side.png`` (the image as the
    generator sees it next to its reconstruction). ``features="auto"``: the critic's where there is one (a run),
    else pixels (a model folder). ``progress(name, step, steps, distance)``. Returns ``[(side_by_side_path, Projection)]``."""
    from .rundir import RunFiles, distinct_names, guard_folder, guard_output, writing_into
    from .trained import open_trained

    trained = open_trained(source)
    generator, critic = trained.networks(ema, device)
    if features == "auto":
        features = "pixels" if critic is None else "critic"
    if features == "critic" and critic is None:
        raise GanzooError(f"{source} is a model folder (a generator alone): project with --features pixels or inception")
    output = trained.output(output, RunFiles.PROJECTIONS, "the projections")
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise GanzooError(f"-o {output} is a file: projections go into a folder")
    guard_folder(output, "projections")
    targets = [(Path(p), prepare_image(p, generator.shape)) for p in images]  # every image readable before any work
    names = distinct_names([p for p, _ in targets])
    plan = [[output / f"{name}.latent.safetensors", output / f"{name}.png", output / f"{name}.side.png"] for name in names]
    for written in plan:  # every target allowed before any work: never an input, a run's file or a non-file
        for p in written:
            guard_output(p, force, inputs=images, hint="pick another -o")
    model = model_identity(trained)
    with writing_into(output):
        return _project_all(generator, critic, targets, names, plan, labels, steps, seed, features, progress, model)


def training_scale(trained, n: int = 256, seed: int = 0) -> dict | None:
    """The distances a projection's RMS is read against, in the same units: among ``n`` of the model's training images
    (seeded), the median distance between two of them and the median distance from one to its nearest other. None
    where the training data is not on this machine (a model folder from elsewhere)."""
    from .nearest import training_images
    from .sampling import pairwise_rms

    try:
        images, _ = training_images(trained.source, trained.recipe)
    except (GanzooError, OSError):
        return None
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    d = pairwise_rms(images[pick])
    finite = d[torch.isfinite(d)]
    return {"n": len(pick), "median_pair": float(finite.median()), "median_nearest": float(d.min(dim=1).values.median())}


def model_identity(trained) -> dict:
    """What a projected latent records of the weights it was found for."""
    return {"run_id": trained.checkpoint.meta.get("run_id") if trained.checkpoint is not None else None,
            "weights_sha256": trained.digest, "step": trained.step}


def _project_all(generator, critic, targets, names, plan, labels, steps, seed, features, progress, model):
    from .fileio import atomic_write
    from .sampling import grid_image, png_bytes

    results = []
    for (path, target), name, written in zip(targets, names, plan):
        step_progress = None if progress is None else (lambda step, total, d, name=name: progress(name, step, total, d))
        p = project(generator, target, labels=labels, steps=steps, seed=seed, critic=critic, features=features, progress=step_progress)
        p.model = model
        p.save(written[0])
        atomic_write(written[1], png_bytes(p.image))
        pair = torch.stack([target, p.image])
        scale = max(1, math.ceil(256 / generator.shape.resolution))  # whole pixels, enlarged to at least 256 px
        pair = pair.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
        atomic_write(written[2], png_bytes(grid_image(pair, 1, row_labels=["image", f"projection (RMS {p.distance:.3f})"])))
        results.append((written[2], p))
    return results


@torch.no_grad()
def walk_between(generator, files, steps: int = 10, seed: int = 0, model: dict | None = None) -> torch.Tensor:
    """A walk through projected latents (files ``Projection.save`` wrote, in order): uint8 ``(len(files) - 1, steps,
    C, H, W)``, a row per segment; straight lines in w, great circles (slerp) in z. A conditional generator keeps
    the first file's labels along the whole walk."""
    import logging

    from .data import to_uint8
    from .sampling import _fits, slerp

    if len(files) < 2:
        raise GanzooError("--between: give at least two projected latents (files ganzoo project wrote)")
    loaded = [load_projection(f) for f in files]
    check_model(files, model or {})
    _fits(generator, (len(files) - 1) * steps, 2, "fewer --steps")
    spaces = {space for _, space, _ in loaded}
    if len(spaces) > 1:
        raise GanzooError("--between: these latents come from different latent spaces (w and z): project them with one model")
    space = spaces.pop()
    for (latent, _, _), f in zip(loaded, files):
        check_space(generator, space, latent, f)
    labels = loaded[0][2]
    if (labels is None) != (getattr(generator, "labels", None) is None):
        raise GanzooError(f"{files[0]}: projected with {'a conditional' if labels is not None else 'an unconditional'} generator, "
                          "not this one")
    if any(l is not None and not torch.equal(l, labels) for _, _, l in loaded[1:]):
        logging.getLogger("ganzoo").warning("the projections have different labels: the walk keeps the first one's")
    device = next(generator.parameters()).device
    points = torch.cat([latent for latent, _, _ in loaded]).to(device)
    t = torch.linspace(0, 1, steps, device=device).view(1, steps, 1)
    a, b = points[:-1, None, :], points[1:, None, :]
    path = (a + (b - a) * t if space == "w" else slerp(a, b, t)).reshape(-1, points.shape[1])
    was_training = generator.training
    generator.eval()
    y = None if labels is None else labels.to(device)
    images = torch.cat([to_uint8(synthesize(generator, path[i:i + 250], space, y, seed)).cpu() for i in range(0, len(path), 250)])
    generator.train(was_training)
    return images.view(len(files) - 1, steps, *images.shape[1:])
