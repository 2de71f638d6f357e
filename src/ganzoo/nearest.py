"""Does the generator copy its training set? Generated images against their nearest training images.

A generator can score a good FID by reproducing training images. ``nearest(source)`` draws ``n`` images from the
run's generator (its weight average where kept) and finds, for each, the training images at the least RMS pixel
distance (on [0, 1]: 0 is identical, the unit of ``ganzoo sample``'s distinctness threshold). For scale, the same
is done for a seeded subset of training images against all the other training images, their own copy left out:
the data's own nearest-neighbour distances. The subset (``n_train_sampled``) is ``n`` images and at least 500, so
the threshold does not shrink with ``n`` (every training image where the data has fewer). Near-duplicates in the
data make those distances small, which is why a generated image is judged against them and not a fixed number.

The test: a generated image is *close* when it is nearer its nearest training image than 99% of training images
are to theirs (the 1st percentile of the real-to-real distances). A generator that draws new images from the data's
distribution makes about 1% of its images close by chance, as a held-out real image would; a copying one makes
far more. The verdict says "possible copies" when the number of close images is more than chance allows
(a one-sided binomial test at 1%: probability under 0.001). Images within ``NEAR_IDENTICAL`` (0.02) of a training
image are counted too. Pixel distance does not see a copy that is shifted, flipped or recoloured.

Writes ``nearest.json`` (the numbers, N of each side, the distance, the checkpoint step) and ``nearest.png`` (per
column a generated image over its three nearest training images, each captioned with its distance) into the run folder, and rewrites its
``report.html`` (section "Copy check") when it has one.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import limits
from .errors import GanzooError
from .fileio import atomic_write, expand

log = logging.getLogger("ganzoo")

PERCENTILE = 0.01  # a generated image nearer a training image than this quantile of the real-to-real distances is "close"
ALPHA = 1e-3  # "possible copies" when that many close images have under this probability by chance
TRAIN_SAMPLE = 500  # training images whose own nearest-neighbour distances set the 1% threshold (fewer only if the data has fewer)
ROUGH = 100  # under this many, the 1% quantile is only roughly known: the verdict says so
NEAR_IDENTICAL = 0.02  # RMS under which two images count as near-identical (as `ganzoo sample`'s --threshold)
NEIGHBOURS = 3  # training images shown under each generated image
CHUNK = 2048  # training images compared at a time
GRID_COLUMNS = 16
DISTANCE = "RMS pixel difference on [0, 1] (sqrt of the mean squared difference over every pixel and channel)"


@dataclass
class NearestResult:
    """What ``nearest`` found: distances (RMS on [0, 1]) of generated images to their nearest training image and of
    training images to their nearest other training image, the close fraction, the verdict and the files written."""

    n_generated: int
    n_train: int  # every training image, searched for the nearest
    n_train_sampled: int  # training images whose own nearest other training image was measured
    generated_to_train: dict  # min / p1 / p10 / median
    train_to_train: dict
    threshold: float  # the 1st percentile of train_to_train: a generated image under it is "close"
    close: int  # generated images under the threshold
    close_fraction: float
    expected_close: float  # by chance: PERCENTILE * n_generated
    p_value: float  # P(at least `close` close images) for a generator that does not copy
    near_identical: int  # generated images within NEAR_IDENTICAL of a training image
    near_identical_train: int  # sampled training images within NEAR_IDENTICAL of another training image
    copies: bool
    verdict: str
    step: int | None = None
    ema: bool = False
    seed: int = 0
    data: str = ""
    grid_columns: str = ""
    paths: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**asdict(self), "distance": DISTANCE, "percentile": PERCENTILE, "alpha": ALPHA,
                "near_identical_threshold": NEAR_IDENTICAL}


def stats(d: torch.Tensor) -> dict:
    """min / p1 / p10 / median of a 1-d tensor of distances."""
    d = d.double()
    return {"min": d.min().item(), "p1": d.quantile(0.01).item(), "p10": d.quantile(0.1).item(), "median": d.median().item()}


def nearest_neighbours(queries: torch.Tensor, base: torch.Tensor, k: int = NEIGHBOURS, exclude: torch.Tensor | None = None,
                       device="cpu", progress=None, what: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest of ``base`` (uint8 ``(N, C, H, W)``) to each of ``queries``: RMS distances ``(n, k)``
    ascending and their indices into ``base``. ``exclude[i]``: an index of ``base`` never given to query ``i`` (its
    own copy). ``base`` is compared ``CHUNK`` images at a time: memory grows with ``n``, not with ``N``."""
    from .sampling import pairwise_rms

    n, k = len(queries), min(k, len(base) - (exclude is not None))
    q = queries.to(device)
    best_d = torch.full((n, 0), float("inf"))
    best_i = torch.zeros((n, 0), dtype=torch.long)
    rows = torch.arange(n)
    for start in range(0, len(base), CHUNK):
        chunk = base[start : start + CHUNK]
        d = pairwise_rms(q, chunk.to(device))  # (n, chunk) on the CPU
        if exclude is not None:
            own = (exclude >= start) & (exclude < start + len(chunk))
            d[rows[own], exclude[own] - start] = float("inf")
        d_all = torch.cat([best_d, d], dim=1)
        i_all = torch.cat([best_i, torch.arange(start, start + len(chunk)).expand(n, -1)], dim=1)
        best_d, pos = d_all.topk(min(k, d_all.shape[1]), dim=1, largest=False)
        best_i = i_all.gather(1, pos)
        if progress is not None:
            progress(what, min(start + CHUNK, len(base)), len(base))
    return best_d, best_i


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_term = lambda j: (math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)  # noqa: E731
                          + j * math.log(p) + (n - j) * math.log1p(-p))
    if k > n * p:  # above the mean: the terms fall away from k upward (2000 past it they are negligible)
        return min(1.0, sum(math.exp(log_term(j)) for j in range(k, min(n, k + 2000) + 1)))
    return max(0.0, 1.0 - sum(math.exp(log_term(j)) for j in range(max(0, k - 2000), k)))


def verdict_text(r: NearestResult, grid: str) -> str:
    rough = f" (only {r.n_train_sampled} training images: the 99% threshold is a rough estimate)" if r.n_train_sampled < ROUGH else ""
    where = f": see {grid}" if grid else ""
    chance = f"about {r.expected_close:.2g} expected by chance"
    if r.copies:
        return (f"possible copies: {r.close} of {r.n_generated} generated images are nearer a training image than 99% of "
                f"training images are to theirs (RMS under {r.threshold:.3f}; {chance})"
                + (f", {r.near_identical} of them near-identical (RMS < {NEAR_IDENTICAL})" if r.near_identical else "") + rough + where)
    line = (f"no sign of copying: the nearest training image is at RMS {r.generated_to_train['median']:.3f} (median) for "
            f"generated images and {r.train_to_train['median']:.3f} for training images among themselves; {r.close} of "
            f"{r.n_generated} generated images are nearer a training image than 99% of training images are to theirs ({chance})"
            f"{rough}")
    if r.near_identical:
        line += (f"; but {r.near_identical} are near-identical (RMS < {NEAR_IDENTICAL}) to a training image (training images "
                 f"among themselves: {r.near_identical_train} of {r.n_train_sampled}){where}")
    return line


def training_images(source: Path, recipe, data=None, registry=None) -> tuple[torch.Tensor, str]:
    """The run's training images as the run loaded them (its recipe's ``data`` section, cached once decoded), or
    those at ``data`` (a folder or zip, at the recipe's resolution and channels): uint8 ``(N, C, H, W)`` and where."""
    from .data import load_data
    from .recipe import load_data_section

    section = recipe.data
    if data is not None:
        path = expand(data)
        if not str(data).strip() or not path.exists():
            raise GanzooError(f"--data {data}: no such folder or zip of images")
        raw = recipe.to_dict()["data"] if section.name == "images" else {
            "name": "images", "resolution": section.resolution, "channels": section.channels, "cache": section.cache}
        section = load_data_section({**raw, "path": str(path)}, registry, where="--data")
    else:
        given = section.params.model_dump().get("path")
        if isinstance(given, str) and not expand(given).exists():
            raise GanzooError(f"the training data of {source} is not at {given} (its recipe's data.path): give where it is "
                              "now with --data PATH")
    images = load_data(section, registry).images
    if len(images) < 2:
        raise GanzooError(f"the training data has {len(images)} image(s): at least 2 are needed to compare")
    source = section.params.model_dump().get("path") or section.name
    return images, str(source)


def check_memory(n: int, n_train: int, shape) -> None:
    """Refuse an ``n`` whose distances would not fit, with the estimate."""
    pixels = shape.channels * shape.resolution**2
    chunk = min(CHUNK, n_train)
    need = (2 * limits.image_bytes(n, shape.channels, shape.resolution)  # generated and sampled training images, uint8
            + 2 * 4 * n * pixels  # both as floats
            + 4 * chunk * pixels + 3 * 4 * n * (chunk + NEIGHBOURS))  # one chunk as floats, its distances and the merge
    limits.require_memory(need, f"the copy check of {n:,} images of {shape.channels}x{shape.resolution}x{shape.resolution}",
                          "lower -n")


def nearest(source, n: int = 256, data=None, seed: int = 0, device="cpu", progress=None, grid=None, ema: bool = True,
            report: bool = True, columns: int = GRID_COLUMNS, registry=None) -> NearestResult:
    """Generated images of ``source`` (a run folder, a checkpoint or an exported model folder: ``ganzoo.trained``)
    against their nearest training images (module docstring): the numbers, the verdict, and ``nearest.png`` (or
    ``grid``) and ``nearest.json`` written (into the run folder; outside one, ``grid`` is needed and the JSON goes
    beside it); the run's ``report.html`` rewritten when it has one (and ``report``); the grid has ``columns``
    generated images. ``progress(what, done, total)`` is called as the
    distances are computed."""
    from .recipe import load_recipe
    from .sampling import generate, grid_image, image_path, png_bytes
    from .trained import open_trained

    trained = open_trained(source, registry)
    if n < 1:
        raise GanzooError(f"-n {n}: give at least 1 generated image")
    files = trained.files
    if files is None and grid is None:
        where = "an exported model folder" if trained.kind == "model" else "a checkpoint outside a run folder"
        raise GanzooError(f"{trained.source} is {where}: say where to write the grid with -o (its numbers go beside it as .json)")
    grid_path = image_path(grid) if grid is not None else files.nearest_grid
    json_path = files.nearest if files is not None else grid_path.with_suffix(".json")
    home = files.root if files is not None else grid_path.parent
    recipe = load_recipe(files.recipe, registry=registry) if files is not None and files.recipe.is_file() else trained.recipe
    G = trained.generator(ema, device)
    check_memory(n, 0, G.shape)
    real, data_source = training_images(trained.source, recipe, data, registry)
    shape = (G.shape.channels, G.shape.resolution, G.shape.resolution)
    if tuple(real.shape[1:]) != shape:
        raise GanzooError(f"the training images are {tuple(real.shape[1:])}, the generator makes {shape}: "
                          "--data must hold the images this run was trained on")
    check_memory(n, len(real), G.shape)

    step = trained.step
    log.info(f"nearest: generating {n} images from {trained.weights_path} (step {step}, seed {seed}); {len(real):,} training images")
    if progress is not None:
        progress("generating", 0, n)
    fake = generate(G, n, seed=seed, device=device, labels="random" if getattr(G, "labels", None) is not None else None)
    fake = fake.as_subclass(torch.Tensor)
    if progress is not None:
        progress("generating", n, n)
    d_fake, i_fake = nearest_neighbours(fake, real, NEIGHBOURS, device=device, progress=progress,
                                        what="generated vs training")
    m = min(max(n, TRAIN_SAMPLE), len(real))  # the threshold's sample does not shrink with -n: one verdict for every n
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:m]
    d_real, _ = nearest_neighbours(real[pick], real, 1, exclude=pick, device=device, progress=progress,
                                   what="training vs training")
    g1, r1 = d_fake[:, 0], d_real[:, 0]
    threshold = stats(r1)["p1"]
    close = int((g1 < threshold).sum())
    p_value = binomial_tail(close, n, PERCENTILE)
    result = NearestResult(
        n_generated=n, n_train=len(real), n_train_sampled=m, generated_to_train=stats(g1), train_to_train=stats(r1),
        threshold=threshold, close=close, close_fraction=close / n, expected_close=PERCENTILE * n, p_value=p_value,
        near_identical=int((g1 < NEAR_IDENTICAL).sum()), near_identical_train=int((r1 < NEAR_IDENTICAL).sum()),
        copies=p_value < ALPHA, verdict="", step=step, ema=trained.uses_ema(ema), seed=seed, data=data_source)

    # the grid: the generated images nearest a training image first (the suspects), then others in seed order
    cols = max(1, min(columns, n))
    suspects = g1.argsort()[: (cols + 1) // 2].tolist()
    taken = set(suspects)
    show = suspects + [i for i in range(n) if i not in taken][: cols - len(suspects)]
    result.grid_columns = (f"{len(suspects)} generated images nearest a training image (nearest first), then "
                           f"{cols - len(suspects)} in seed order; under each, its {i_fake.shape[1]} nearest training images")
    rows = [fake[show]] + [real[i_fake[show, j]] for j in range(i_fake.shape[1])]
    labels = ["generated", "nearest training", "2nd nearest", "3rd nearest"][: len(rows)]
    captions = [None] * len(show) + [f"{float(d_fake[i, j]):.3f}" for j in range(i_fake.shape[1]) for i in show]
    atomic_write(grid_path, png_bytes(grid_image(torch.cat(rows), nrow=cols, row_labels=labels, captions=captions)), "grid")
    beside = grid_path.parent.resolve() == home.resolve()
    result.verdict = verdict_text(result, grid_path.name if beside else str(grid_path))
    if data is not None:  # not the recipe's data: every reader of nearest.json and the report must see against what
        result.verdict = f"against {data_source} (given with --data, not the recipe's data): {result.verdict}"
    result.paths = {"json": str(json_path), "grid": str(grid_path)}
    atomic_write(json_path, json.dumps({**result.to_dict(), "grid": grid_path.name if beside else str(grid_path.resolve())},
                                       indent=2).encode(), "copy check")
    if report and files is not None and files.report.is_file():
        from .report import write_report

        write_report(files.root)
        result.paths["report"] = str(files.report)
    return result
