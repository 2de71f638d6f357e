"""Generate images from a generator, prove they are distinct, and write them."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import to_uint8
from . import limits, rng
from .errors import GanzooError, Interrupted
from .fileio import atomic_write
from .interfaces import Callback, Generator
from .rundir import RunFiles, guard_folder, writing_into


def _pil(image: torch.Tensor) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else np.ascontiguousarray(array))


def write_png(image: torch.Tensor, path) -> None:
    """One uint8 ``(C, H, W)`` image as a PNG (gray for C == 1), written whole or not at all: a temporary file beside
    it, renamed (a Ctrl-C or a full disk leaves no torn image)."""
    _save_whole(_pil(image), Path(path), format="PNG", compress_level=1)


def _save_whole(picture: Image.Image, path: Path, **options) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        picture.save(tmp, **options)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_png(path) -> torch.Tensor:
    """A PNG as uint8 ``(C, H, W)``."""
    array = np.array(Image.open(path))
    return torch.from_numpy(array.reshape(*array.shape[:2], -1)).permute(2, 0, 1).contiguous()


def grid_image(images: torch.Tensor, nrow: int | None = None, row_labels: list[str] | None = None,
               captions: list[str | None] | None = None) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` as one uint8 grid ``(C, H', W')`` (``nrow`` defaults to a square).

    With ``row_labels`` (a per-class grid: one label per row of ``nrow`` images), each row is named in a margin on
    the left and small images are enlarged (whole pixels) to at least 64 px, so the grid reads at a glance;
    ``captions`` (with ``row_labels``: one per image, or None) are written on a white band at each image's foot."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    from torchvision.utils import make_grid  # here: torchvision takes ~1 s to import, most commands never need it

    if row_labels:
        scale = max(1, math.ceil(64 / images.shape[-1]))
        images = images.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=255)
    grid = grid[:1] if images.shape[1] == 1 else grid
    return _with_row_labels(grid, row_labels, images.shape[-2] + 2, nrow, captions) if row_labels else grid


def _with_row_labels(grid: torch.Tensor, labels: list[str], pitch: int, nrow: int = 1,
                     captions: list[str | None] | None = None) -> torch.Tensor:
    """``grid`` with a white margin on the left naming each row (rows ``pitch`` pixels apart), and each image's
    caption (row-major, ``nrow`` per row) on a band at its foot."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=max(11, min(18, pitch // 4)))
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    margin = 10 + max(int(draw.textlength(label, font=font)) for label in labels)
    canvas = Image.new("RGB" if grid.shape[0] == 3 else "L", (grid.shape[2] + margin, grid.shape[1]), "white")
    canvas.paste(_pil(grid), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        draw.text((margin - 6, 2 + i * pitch + (pitch - 2) // 2), label, fill="black", font=font, anchor="rm")
    small = ImageFont.load_default(size=max(9, min(12, pitch // 6)))
    for i, text in enumerate(captions or []):
        if text:
            x, y = margin + 2 + (i % nrow) * pitch, 2 + (i // nrow) * pitch
            band = small.size + 3
            draw.rectangle((x, y + pitch - 2 - band, x + pitch - 3, y + pitch - 3), fill="white")
            draw.text((x + (pitch - 2) // 2, y + pitch - 3), text, fill="black", font=small, anchor="mb")
    array = np.array(canvas)
    return torch.from_numpy(array.reshape(*array.shape[:2], -1)).permute(2, 0, 1).contiguous()


def png_bytes(image: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    _pil(image).save(buf, format="PNG")
    return buf.getvalue()


def has_w_space(generator) -> bool:
    """Whether ``generator`` has an intermediate latent space: ``Generator.w_space``; for a network that is not a
    ``ganzoo.Generator`` (a notebook's own module), whether it has ``mapping``, ``synthesis`` and ``w_avg``."""
    if isinstance(generator, Generator):
        return generator.w_space
    return all(hasattr(generator, a) for a in ("mapping", "synthesis", "w_avg"))


def latents(n: int, dim: int, seed: int = 0, truncation: float | None = None, generator=None) -> torch.Tensor:
    """``n`` latent vectors from the generator's prior (``Generator.sample_latent``; N(0, 1) without one), or, for a
    generator without a w-space, from N(0, 1) truncated to [-t, t] (the truncation trick in z). A generator with a
    w-space is truncated in w by ``render``."""
    g = torch.Generator().manual_seed(seed)
    if truncation is None or (generator is not None and has_w_space(generator)):
        return generator.sample_latent(n, generator=g) if generator is not None else torch.randn(n, dim, generator=g)
    return torch.nn.init.trunc_normal_(torch.empty(n, dim), a=-truncation, b=truncation, generator=g)


def truncated(generator, z: torch.Tensor, y: torch.Tensor | None, psi: float) -> torch.Tensor:
    """Images of ``z`` with w pulled toward the generator's average w: ``w_avg + psi * (w - w_avg)``."""
    cond = () if y is None else (y,)
    w = generator.mapping(z, *cond)
    w_avg = generator.w_avg
    return generator.synthesis(w_avg + psi * (w - w_avg), *cond)


def label_codes(generator, n: int, labels=None, seed: int = 0) -> torch.Tensor | None:
    """Label codes ``(n, A)`` for a conditional generator (None for an unconditional one). ``labels``: a mapping or
    ``["hair=blue", ...]`` (attributes not named are drawn from the training data's frequencies), ``"random"`` (all
    drawn so), or codes ``(n, A)`` as they are. A conditional generator without labels, or an unconditional one
    with them, is an error that says what to give."""
    space = getattr(generator, "labels", None)
    if space is None:
        if labels is not None and len(labels):
            raise GanzooError("this generator is unconditional (trained without data.labels): it takes no labels")
        return None
    if labels is None or (not isinstance(labels, (str, torch.Tensor)) and not len(labels)):
        a, c = space.attributes[0], space.classes[0][0]
        raise GanzooError(f"this generator is conditional on {space.describe()}: give labels (e.g. --label {a}={c}, "
                          "or --label random to draw them from the training data's frequencies)")
    if isinstance(labels, torch.Tensor):
        if labels.dtype != torch.long or tuple(labels.shape) != (n, len(space.attributes)):
            raise GanzooError(f"labels: expected a long tensor ({n}, {len(space.attributes)}), got {tuple(labels.shape)} {labels.dtype}")
        return labels
    fixed = {} if isinstance(labels, str) and labels == "random" else space.parse([labels] if isinstance(labels, str) else labels)
    return space.draw(n, seed, fixed)


@torch.no_grad()
def render(generator, z: torch.Tensor, batch_size: int = 250, device=None, y: torch.Tensor | None = None,
           truncation: float | None = None, seed: int = 0) -> torch.Tensor:
    """uint8 images ``(len(z), C, H, W)`` for the latent vectors ``z`` (and label codes ``y`` for a conditional
    generator), generator in eval mode. A generator's noise inputs are drawn from a fork of torch's RNG seeded
    with ``seed``: the same images every time, and the caller's random stream untouched. ``truncation``: w-space
    truncation for a generator that has a w-space (z-space truncation is ``latents``')."""
    device = device or next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    cond = () if y is None else (y,)
    w_psi = truncation if truncation is not None and has_w_space(generator) else None
    with rng.isolated(seed):
        out = []
        for i in range(0, len(z), batch_size):
            zi, yi = z[i : i + batch_size].to(device), [c[i : i + batch_size].to(device) for c in cond]
            x = generator(zi, *yi) if w_psi is None else truncated(generator, zi, yi[0] if yi else None, w_psi)
            out.append(to_uint8(x).cpu())
    generator.train(was_training)
    s = generator.shape
    return torch.cat(out) if out else torch.empty(0, s.channels, s.resolution, s.resolution, dtype=torch.uint8)


def _fits(generator, n: int, copies: int, advice: str) -> None:
    s = generator.shape
    limits.require_memory(copies * limits.image_bytes(n, s.channels, s.resolution),
                          f"{n:,} images of {s.channels}x{s.resolution}x{s.resolution}", advice)


class ImageBatch(torch.Tensor):
    """A uint8 image tensor ``(N, C, H, W)`` (or one ``(C, H, W)`` image) that a notebook shows as a picture: the
    tensor itself, with ``_repr_png_`` for Jupyter. ``.as_subclass(torch.Tensor)`` gives the plain tensor."""

    def _repr_png_(self):
        t = self.as_subclass(torch.Tensor).detach().cpu()
        if t.dtype != torch.uint8 or t.dim() not in (3, 4) or t.numel() == 0:
            return None
        return png_bytes(grid_image(t) if t.dim() == 4 else t)


def generate(generator, n: int, seed: int = 0, batch_size: int = 250, device=None, truncation: float | None = None,
             labels=None) -> torch.Tensor:
    """``n`` images as uint8 ``(n, C, H, W)``, from latents drawn with ``seed`` (the generator's own
    ``sample_latent``, or N(0, 1) cut to [-t, t] with ``truncation``); a notebook displays them as a grid.
    A conditional generator takes ``labels`` (``{"hair": "blue"}``, ``["digit=7"]``, ``"random"``: ``label_codes``)."""
    _fits(generator, n, 2, "ask for fewer at a time (with another seed for more)")
    y = label_codes(generator, n, labels, seed)
    images = render(generator, latents(n, generator.latent_dim, seed, truncation, generator), batch_size, device, y, truncation, seed)
    return images.as_subclass(ImageBatch)


def class_grid(generator, attribute: str | None = None, columns: int = 8, seed: int = 0, labels=None, device=None,
               truncation: float | None = None) -> tuple[torch.Tensor, list[str]]:
    """One row per class of ``attribute`` (the first by default), the same latent vectors in every row: uint8 images
    ``(classes * columns, C, H, W)`` and the class names. Other attributes are drawn once per column from the
    training frequencies (fixed across rows), or fixed by ``labels``."""
    space = getattr(generator, "labels", None)
    if space is None:
        raise GanzooError("a per-class grid needs a conditional generator (trained with data.labels)")
    a = space.index(attribute)
    attribute = space.attributes[a]
    fixed = space.parse(labels) if labels else {}
    if a in fixed:
        raise GanzooError(f"--by {attribute} gives one row per {attribute}: do not also fix it with --label")
    classes = space.classes[a]
    _fits(generator, len(classes) * columns, 2, "fewer columns")
    base = space.draw(columns, seed, fixed).repeat(len(classes), 1)
    base[:, a] = torch.arange(len(classes)).repeat_interleave(columns)
    z = latents(columns, generator.latent_dim, seed, truncation, generator).repeat(len(classes), 1)
    return render(generator, z, device=device, y=base, truncation=truncation, seed=seed).as_subclass(ImageBatch), list(classes)


# -- distinctness --------------------------------------------------------------
@dataclass
class Distinctness:
    """Pairwise RMS distance of images in [0, 1] pixel units (0 = identical)."""

    n: int
    min_distance: float
    closest_pair: tuple[int, int]
    threshold: float
    close_pairs: list[tuple[int, int, float]] = field(default_factory=list)
    regenerated: int = 0
    latents: torch.Tensor | None = field(default=None, repr=False)  # the z of each image (after any redraw)
    labels: torch.Tensor | None = field(default=None, repr=False)  # their label codes (a conditional generator)

    @property
    def ok(self) -> bool:
        return not self.close_pairs


def pairwise_rms(images: torch.Tensor, others: torch.Tensor | None = None, block: int = 1024) -> torch.Tensor:
    """``(n, m)`` RMS pixel distances in [0, 1] units from each of ``images`` to each of ``others`` (uint8, same
    shape per image); without ``others``, ``(n, n)`` among ``images`` with the diagonal +inf."""
    x = images.flatten(1).float().div_(255.0)
    y = x if others is None else others.flatten(1).float().div_(255.0)
    d = x.shape[1]
    out = torch.empty(len(x), len(y))
    for i in range(0, len(x), block):
        out[i : i + block] = torch.cdist(x[i : i + block], y).div_(math.sqrt(d))
    if others is None:
        out.fill_diagonal_(float("inf"))
    return out


def check_distinct(images: torch.Tensor, threshold: float = 0.02) -> Distinctness:
    """Minimum pairwise distance and every pair closer than ``threshold`` (near-identical)."""
    if len(images) < 2:
        return Distinctness(len(images), float("inf"), (0, 0), threshold)
    dist = pairwise_rms(images)
    flat = int(torch.argmin(dist))
    i, j = divmod(flat, len(images))
    ii, jj = torch.nonzero(torch.triu(dist < threshold, diagonal=1), as_tuple=True)
    pairs = [(int(a), int(b), float(dist[a, b])) for a, b in zip(ii, jj)]
    return Distinctness(len(images), float(dist[i, j]), (i, j), threshold, pairs)


def generate_distinct(generator, n: int, seed: int = 0, threshold: float = 0.02, truncation: float | None = None,
                      batch_size: int = 250, device=None, max_rounds: int = 20, labels=None) -> tuple[torch.Tensor, Distinctness]:
    """``n`` images no two of which are within ``threshold``: the later image of each close pair is redrawn (with
    the same label, for a conditional generator: ``labels`` as for ``generate``)."""
    _fits(generator, n, 3, "ask for fewer (-n) at a time, with another --seed for more")  # images, floats for the distances
    y = label_codes(generator, n, labels, seed)
    z = latents(n, generator.latent_dim, seed, truncation, generator)
    images = render(generator, z, batch_size, device, y, truncation, seed)
    g = torch.Generator().manual_seed(seed + 1_000_003)
    redrawn = 0
    for _ in range(max_rounds):
        report = check_distinct(images, threshold)
        if report.ok:
            break
        again = sorted({b for _, b, _ in report.close_pairs})
        fresh = torch.empty(len(again), generator.latent_dim)
        if truncation is None or has_w_space(generator):
            fresh.normal_(generator=g)
        else:
            torch.nn.init.trunc_normal_(fresh, a=-truncation, b=truncation, generator=g)
        images[again] = render(generator, fresh, batch_size, device, None if y is None else y[again], truncation, seed + 1 + redrawn)
        z[again] = fresh
        redrawn += len(again)
    report = check_distinct(images, threshold)
    report.regenerated, report.latents, report.labels = redrawn, z, y
    return images, report


# -- writing ---------------------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def image_path(path) -> Path:
    """A path an image can be written to: a known image suffix, not a folder."""
    path = Path(path)
    if path.is_dir():
        raise GanzooError(f"{path} is a folder; give an image file name such as {path / 'grid.png'}")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise GanzooError(f"{path}: give an image file name ending in {', '.join(IMAGE_SUFFIXES)}")
    return path


def write_grid(images: torch.Tensor, path, nrow: int | None = None, row_labels: list[str] | None = None) -> Path:
    """One PNG grid of uint8 images (``nrow`` defaults to a square; ``row_labels`` name the rows: ``grid_image``)."""
    path = image_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(grid_image(images, nrow, row_labels), path)
    return path


SAMPLE_FILE = re.compile(r"^(\d{5,}\.png|grid\.png|distinctness\.json|by_.+\.png|latents\.npy|labels\.npy)$")


def write_samples(images: torch.Tensor, out_dir, grid: bool = True, force: bool = False, run_own: bool = False) -> Path:
    """``out_dir/00000.png`` ... one PNG per image, plus ``out_dir/grid.png``.

    Samples already in ``out_dir`` (numbered PNGs, ``grid.png``) are never overwritten without ``force``; with it
    they are all removed first, so fewer samples than before leave no stale ones behind. Other files stay.
    ``run_own``: ``out_dir`` is a run's own ``samples/``, written by that run (no other writer may go there).
    """
    out_dir = _sample_folder(out_dir, force, run_own)
    _write_numbered(images, out_dir, 0, len(images))
    if grid and len(images):
        write_grid(images, out_dir / "grid.png")
    return out_dir


def _sample_folder(out_dir, force: bool, run_own: bool = False) -> Path:
    out_dir = Path(out_dir)
    if not str(out_dir).strip():
        raise GanzooError("no output folder given (an empty path)")
    if out_dir.exists() and not out_dir.is_dir():
        raise GanzooError(f"{out_dir} is a file, not a folder for samples")
    if not run_own:
        guard_folder(out_dir, "samples")
    old = sorted(p for p in out_dir.iterdir() if SAMPLE_FILE.match(p.name)) if out_dir.is_dir() else []
    if old and not force:
        shown = ", ".join(p.name for p in old[:3]) + (" ..." if len(old) > 3 else "")
        raise GanzooError(f"{out_dir} already holds {len(old)} sample file(s) ({shown}): pick an empty folder, "
                          "or pass --force to replace them")
    for p in old:
        p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _save_npy(path: Path, array) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write(path, buf.getvalue())


def _write_numbered(images: torch.Tensor, out_dir: Path, start: int, total: int) -> None:
    """Numbered PNGs, each written whole or not at all (a temporary file renamed): an interrupted writer leaves only
    complete images."""
    width = max(5, len(str(total - 1)))
    for i, img in enumerate(images, start):
        write_png(img, out_dir / f"{i:0{width}d}.png")


def written_samples(out_dir) -> int:
    """How many numbered sample PNGs ``out_dir`` holds."""
    out_dir = Path(out_dir)
    return sum(1 for p in out_dir.iterdir() if re.fullmatch(r"\d{5,}\.png", p.name)) if out_dir.is_dir() else 0


CHUNK = 20_000  # images checked for distinctness together, and held in memory at once, by sample_to_folder


def sample_to_folder(generator, n: int, out_dir, *, seed: int = 0, threshold: float = 0.02, truncation: float | None = None,
                     batch_size: int = 250, device=None, grid: bool = True, force: bool = False, labels=None,
                     save_latents: bool = False) -> Distinctness:
    """``n`` distinct images as PNGs in ``out_dir`` (and ``grid.png`` of the first 64), in bounded memory: up to
    ``CHUNK`` images are checked against each other at once, so a million images stream to disk chunk by chunk
    (each chunk draws its own latents, from ``seed`` and the chunk's number). With ``save_latents``, ``latents.npy``
    (float32 ``(n, latent_dim)``: image i's z) and, for a conditional generator, ``labels.npy`` (int64 ``(n, A)``
    class indices) are written beside them: what an exported generator needs to draw the same images."""
    shape = generator.shape
    label_codes(generator, 1, labels)  # a conditional generator without labels fails here, before any file is touched
    limits.require_disk(0.5 * limits.image_bytes(n, shape.channels, shape.resolution), out_dir,  # PNGs: about half raw size
                        f"{n:,} PNGs of {shape.channels}x{shape.resolution}x{shape.resolution}", "ask for fewer (-n)")
    out_dir = _sample_folder(out_dir, force)
    with writing_into(out_dir):
        return _sample_chunks(generator, n, out_dir, seed, threshold, truncation, batch_size, device, grid, labels, save_latents)


def _sample_chunks(generator, n, out_dir, seed, threshold, truncation, batch_size, device, grid, labels, save_latents) -> Distinctness:
    parts, first, zs, ys = [], None, [], []
    try:
        for k, start in enumerate(range(0, n, CHUNK)):
            m = min(CHUNK, n - start)
            images, rep = generate_distinct(generator, m, seed=seed if k == 0 else seed + 7919 * k, threshold=threshold,
                                            truncation=truncation, batch_size=batch_size, device=device, labels=labels)
            _write_numbered(images, out_dir, start, n)
            first = images[:64] if first is None else first
            parts.append((start, rep))
            if save_latents:
                zs.append(rep.latents.float())
                ys.append(rep.labels)
            del images
        if grid and first is not None:
            write_grid(first, out_dir / "grid.png")
        if save_latents:
            _save_npy(out_dir / "latents.npy", np.ascontiguousarray(torch.cat(zs).numpy(), dtype=np.float32))
            if ys and ys[0] is not None:
                _save_npy(out_dir / "labels.npy", np.ascontiguousarray(torch.cat(ys).numpy(), dtype=np.int64))
    except KeyboardInterrupt:
        done = written_samples(out_dir)
        raise Interrupted(f"interrupted: {done:,} of {n:,} images were written to {out_dir}, each one complete"
                          + (" (no grid.png)" if grid else "") + "; run the command again with --force to write all of them") from None
    best_start, best = min(parts, key=lambda p: p[1].min_distance)
    a, b = best.closest_pair
    return Distinctness(n, best.min_distance, (a + best_start, b + best_start), threshold,
                        [(i + s, j + s, d) for s, r in parts for i, j, d in r.close_pairs], sum(r.regenerated for _, r in parts))


# -- latent walks ----------------------------------------------------------------
def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` at fractions ``t``."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate(generator, points: int = 4, steps: int = 8, seed: int = 0, truncation: float | None = None,
                device=None, labels=None) -> torch.Tensor:
    """A latent walk: ``points`` random latents, ``steps`` images from each to the next (slerp); a conditional
    generator keeps one label fixed along the whole walk (``labels`` as for ``generate``).

    Returns uint8 images ``(points - 1, steps, C, H, W)``: one row per segment.
    """
    y = label_codes(generator, 1, labels, seed)
    _fits(generator, (points - 1) * steps, 2, "fewer --points or --steps")
    z = latents(points, generator.latent_dim, seed, truncation, generator)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    walk = slerp(z[:-1, None, :], z[1:, None, :], t)  # (points - 1, steps, dim)
    images = render(generator, walk.reshape(-1, generator.latent_dim), device=device,
                    y=None if y is None else y.expand((points - 1) * steps, -1), truncation=truncation, seed=seed)
    return images.view(points - 1, steps, *images.shape[1:])


def write_gif(frames: torch.Tensor, path, ms_per_frame: int = 80, size: int | None = None) -> Path:
    """uint8 frames ``(N, C, H, W)`` as a looping GIF, each shown ``ms_per_frame``; ``size``: the frames enlarged
    (nearest neighbour: the pixels as generated, made bigger) to ``size`` px on their longer side."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pics = [Image.fromarray(f.permute(1, 2, 0).squeeze(-1).numpy()) for f in frames]
    if size and pics and size != max(pics[0].size):
        w, h = pics[0].size
        k = size / max(w, h)
        pics = [p.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.NEAREST) for p in pics]
    _save_whole(pics[0], path, format="GIF", save_all=True, append_images=pics[1:], duration=ms_per_frame, loop=0)
    return path


class FinalSamples(Callback):
    """At the end of a run: ``output.samples`` images from the sampler, checked distinct, in ``samples/``."""

    name = "final_samples"

    def on_end(self, run) -> None:
        out = run.recipe.output
        if not out.samples:
            return
        logging.getLogger("ganzoo").info(f"writing {out.samples} samples to {run.run_dir / 'samples'} ...")
        images, distinct = generate_distinct(run.sampler(), out.samples, seed=run.recipe.seed, batch_size=out.sample_batch_size,
                                             device=run.device, labels="random" if run.labels is not None else None)
        folder = RunFiles(run.run_dir).samples
        write_samples(images, folder, force=True, run_own=True)  # the run's own folder: a resume rewrites it
        (folder / "distinctness.json").write_text(json.dumps({k: v for k, v in dataclasses.asdict(distinct).items()
                                                              if k not in ("latents", "labels")}, indent=2))
        if run.labels is not None:  # a conditional run: one grid per attribute, a row per class, the same noise per column
            for attr in run.labels.attributes:
                images, classes = class_grid(run.sampler(), attr, columns=8, seed=run.recipe.seed, device=run.device)
                write_grid(images, folder / f"by_{attr}.png", nrow=8, row_labels=classes)
        run.distinct = distinct
