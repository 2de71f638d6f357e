"""Evaluation: what to score and where the scores go. FID, KID, precision/recall and density/coverage, offline,
every score with its protocol.

``evaluate`` scores a run folder, a checkpoint, an exported model folder (opened by ``ganzoo.trained``) or a folder
of images; ``per_class_scores`` a conditional generator class by class; ``TrainingEval`` scores the sampler during
training. How images become features is ``ganzoo.features``'s; the maths, the declaration of each metric and the
wording of the scores are ``ganzoo.metrics``'s.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import re
import time
import zipfile
from pathlib import Path

import torch

from . import imagefiles, rng
from .errors import GanzooError
from .features import extract, network_info, reference_features
from .fileio import file_sha256, shown
from .interfaces import Callback, DataReport
from .metrics import Scores, scores
from .registry import Registry
from .rundir import ModelFiles, RunFiles
from .trained import open_trained

log = logging.getLogger("ganzoo")


def protocol(n_gen: int, ref_info: dict, seed: int, weights: str | None, extra: dict, backend: str = "auto") -> dict:
    return {
        "library": f"torch-fidelity {importlib.metadata.version('torch-fidelity')}",
        "feature_network": network_info(weights, backend),
        "n_generated": n_gen, "n_real": ref_info["n"], "reference": ref_info,
        "image_resolution": ref_info["resolution"], "seed": seed, **extra,
    }


def evaluate_images(images: torch.Tensor, ref, *, n_real: int | None = None, seed: int = 0,
                    weights: str | None = None, prc: bool = True, registry: Registry | None = None,
                    reference: tuple[torch.Tensor, dict] | None = None, progress=None, backend: str = "auto") -> dict:
    """Score uint8 images against real ones (a recipe ``data`` section, or a folder/zip at the images' size),
    or against precomputed ``reference`` features and info: metrics plus protocol."""
    real, ref_info = reference or reference_features(ref, n_real, seed, weights, registry, images.shape[-1], images.shape[1],
                                                     progress, backend)
    log.info(f"eval: extracting features of {len(images)} generated images")
    gen = extract(images, weights, progress=progress, what="generated images", backend=backend)
    result = scores(gen, real, prc=prc, seed=seed)
    extra = result.pop("protocol_extra")
    return {**{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()},
            "protocol": protocol(len(images), ref_info, seed, weights, extra, backend)}


def per_class_scores(G, section, attribute: str | None = None, n: int = 100, seed: int = 0, weights: str | None = None,
                     registry: Registry | None = None, progress=None, backend: str = "auto") -> dict:
    """FID/KID per class of one label attribute of a conditional generator: ``n`` images asked for as each class,
    scored against the real images of that class (features of every real image, extracted once and cached). At
    small ``n`` FID is biased upward (docs/evaluation.md): compare classes with each other, at one ``n``."""
    from .data import load_data
    from .sampling import generate

    space = getattr(G, "labels", None)
    if space is None:
        raise GanzooError("per-class scores need a conditional generator (trained with data.labels)")
    a = space.index(attribute)
    attribute = space.attributes[a]
    codes = load_data(section, registry).codes
    real, info = reference_features(section, None, seed, weights, registry, progress=progress, backend=backend)  # all, in data order
    out = {}
    for c, name in enumerate(space.classes[a]):
        mask = codes[:, a] == c
        if int(mask.sum()) < 2:
            continue
        feats = extract(generate(G, n, seed=seed, labels={attribute: name}), weights, progress=progress, what=f"{attribute}={name}",
                        backend=backend)
        r = scores(feats, real[mask], prc=False, seed=seed)
        out[name] = {"fid": r["fid"], "kid_mean": r["kid_mean"], "kid_std": r["kid_std"], "n_real": int(mask.sum())}
    return {"attribute": attribute, "n_generated_per_class": n, "classes": out,
            "protocol": "each class: n generated images asked for as that class vs every real image of that class"}


def evaluate(target, *, ref=None, n: int = 10000, n_real: int | None = 5000, seed: int = 0, weights: str | None = None,
             prc: bool = True, resolution: int | None = None, registry: Registry | None = None, ema: bool = True,
             progress=None, per_class: str | None = None, n_per_class: int = 100, backend: str = "auto") -> dict:
    """Score a run folder, a checkpoint, an exported model folder (``ganzoo.trained``), or a folder/zip of images.

    ``ref``: a folder/zip of real images, or ``None`` for the recipe's own data (a model folder's recipe names the
    data it was trained on, where that was); ``n_real``: a seeded subset of that many real images (5000, as evaluation during training; their
    features are cached), ``None`` for every one. For a run, the result is also written to ``metrics.json`` (the latest evaluation), kept as
    ``evals/stepS-nN-realM-seedK[-ema]-REF.json`` (no evaluation is ever overwritten by another) and appended to
    ``metrics.jsonl``. A checkpoint's EMA generator is scored when it has one (unless ``ema=False``).
    ``progress(what, done, total)`` is called as features are extracted. A conditional run also gets its label
    accuracy (``ganzoo.classifier``), and with ``per_class`` (an attribute) FID/KID per class at ``n_per_class``.
    ``backend``: what runs the feature network (``extract``).
    """
    from .sampling import generate

    trained = None if _image_source(target) else open_trained(target, registry)
    if isinstance(ref, (str, Path)):  # before any image is generated: a reference that cannot be read says so first
        ref = Path(ref)
        if not str(ref).strip() or not ref.exists():
            raise GanzooError(f"reference images {shown(ref)}: no such folder or zip")
        try:
            imagefiles.first_image_size(ref)
        except GanzooError as exc:
            raise GanzooError(f"reference images (--ref): {exc}") from None
    if trained is not None:
        G = trained.generator(ema)
        what = trained.identity(ema)  # recorded with the scores (its digest is checked again before they are written)
        conditional = trained.labels is not None
        if per_class and not conditional:
            raise GanzooError(f"--per-class {per_class}: {trained.weights_path} is not a conditional model (it was trained without "
                              "data.labels), so it has no classes to score one by one")
        files = _writable(trained.files)
        if ref is None:
            ref = trained.recipe.data
            if trained.kind == "model":  # before any image is generated
                _require_data(ref, trained.source, registry)
        log.info(f"eval: generating {n} images from {trained.weights_path} (step {trained.step}, seed {seed})")
        images = generate(G, n, seed=seed, labels="random" if conditional else None)  # classes as often as in the data
    else:
        target = Path(target)
        if per_class:
            raise GanzooError(f"--per-class {per_class}: {target} is a folder of images, not a conditional model")
        if target.is_file() and not zipfile.is_zipfile(target):
            raise GanzooError(f"{target} is a single file: evaluation scores a run folder, a checkpoint (.safetensors), "
                              "an exported model folder, or a folder or zip of generated images")
        if ref is None:
            raise GanzooError(f"{target} is a folder of images: give the real images to compare with, --ref PATH")
        found_res, ch = imagefiles.first_image_size(target)
        names: list[str] = []
        images = imagefiles.read_images(target, resolution or found_res, ch, DataReport(), names)
        numbered = [i for i, name in enumerate(names) if re.fullmatch(r"\d{5,}\.png", name)]
        if numbered and len(numbered) < len(names):  # a folder ganzoo sample wrote: its grids are not samples
            log.info(f"eval: {target} holds ganzoo's numbered samples: scoring those {len(numbered)}, "
                     f"not its {len(names) - len(numbered)} other image(s) (grid.png)")
            images = images[numbered]
        images = images[:n]
        what = {"images": str(target)}
    result = evaluate_images(images, ref, n_real=n_real, seed=seed, weights=weights, prc=prc, registry=registry, progress=progress,
                             backend=backend)
    result["protocol"]["evaluated"] = what
    if trained is not None and conditional:
        from .classifier import label_accuracy

        result["label_accuracy"] = label_accuracy(G, trained.recipe.data, n=n, seed=seed, registry=registry)
        result["protocol"]["labels"] = "FID/KID over all classes: labels drawn from the training data's frequencies"
        if per_class:
            result["per_class"] = per_class_scores(G, trained.recipe.data, per_class, n_per_class, seed, weights, registry,
                                                   progress, backend)
    if trained is not None and files is not None:
        ckpt = trained.checkpoint
        _same_checkpoint(ckpt.path, trained.digest, ckpt.meta.get("run_id"), ckpt.meta["step"], result, files)  # a run replaced while scoring: never file old scores under the new run
        proto = result["protocol"]  # every evaluation is kept; metrics.json is the latest of them
        ref_key = hashlib.sha256(json.dumps(proto["reference"], sort_keys=True, default=str).encode()).hexdigest()[:8]
        files.keep_evaluation(result, f"step{ckpt.meta['step']:07d}-n{proto['n_generated']}-real{proto['n_real']}-seed{seed}"
                                      f"{'-ema' if what['ema'] else ''}-{ref_key}",
                              {"step": ckpt.meta["step"], "eval": flat_scores(result), "eval_n": len(images),
                               "checkpoint_sha256": trained.digest})
        if files.report.is_file():  # the run's page shows the new scores, as after the copy check
            from .report import write_report

            write_report(files.root)
    return result


def _image_source(target) -> bool:
    """Whether ``target`` is generated images to score (a folder of images or a zip), not a trained model."""
    path = Path(target)
    if not str(target).strip() or not path.exists():
        raise GanzooError(f"nothing to evaluate at {shown(path)} (give a run folder, a checkpoint, an exported model folder, "
                          "or a folder/zip of images)")
    if path.is_file():
        return path.suffix != ".safetensors"
    return not (RunFiles(path).recipe.is_file() or RunFiles(path).checkpoints.is_dir() or ModelFiles(path).claims_model())


def _require_data(section, model, registry: Registry | None) -> None:
    """A model folder's training data is wherever it was on the machine that trained it: say so before any work."""
    from . import contracts
    from .registry import get_registry

    component = (registry or get_registry()).get("dataset", section.name)
    try:
        with contracts.calling(component, "check"):
            component.create(section.params).check()
    except GanzooError as exc:
        raise GanzooError(f"{model} is an exported model folder; the data its recipe was trained on is not here ({exc}): "
                          "give the real images to compare with, --ref PATH") from None


def _writable(files: RunFiles | None) -> RunFiles | None:
    """The run folder an evaluation is kept in (None outside a run folder); one that cannot be written is said
    before any work, and the scores are then only printed."""
    if files is None:
        return None
    if not files.writable():
        log.warning(f"eval: {files.root} is read-only: the scores will be printed, not kept in its metrics.json and evals/ "
                    "(copy the run folder somewhere writable to keep them)")
        return None
    return files


def _same_checkpoint(path: Path, digest: str, run_id: str | None, step: int, result: dict, files: RunFiles) -> None:
    """Scores may be filed in the run folder only while its checkpoint is the one scored, or a later one of the
    same run (a run still training there: the scores are labelled with their step and checkpoint digest)."""
    from .checkpoint import checkpoint_identity

    now = file_sha256(path) if path.is_file() else None
    if now == digest:
        return
    if now is not None and run_id is not None:
        now_run, now_step = checkpoint_identity(path)
        if now_run == run_id and (now_step or 0) >= step:
            return
    raise GanzooError(f"{path} changed while it was being scored (replaced by another run, or by a file that is no "
                      f"checkpoint of this run): these scores belong to the checkpoint as it was (sha256 {digest[:12]}...), "
                      f"so they are not written into {files.root}: {Scores.of(result).line()}")


def flat_scores(result: dict) -> dict:
    """An evaluation's numbers as one flat mapping (label accuracy as ``label_acc_ATTRIBUTE``): ``Scores.flat``."""
    return Scores.of(result).flat()


class TrainingEval(Callback):
    """Scores the sampler every ``eval.every`` steps (KID or FID at ``eval.n``; reference features cached) and
    keeps the best as ``checkpoints/best``. Isolated from the training RNG: training is the same with or without."""

    name = "training_eval"

    def __init__(self):
        self.reference = None

    def on_start(self, run) -> None:
        run.best = RunFiles(run.run_dir).checkpoint_meta("best").get("best")

    def on_step(self, run, record) -> None:
        from .checkpoint import save_run
        from .sampling import generate
        from .watch import event

        ev = run.recipe.eval
        if run.step % ev.every:
            return
        t0 = time.perf_counter()
        # torch-fidelity's DataLoader draws from the global torch RNG: fork it, so training is the same with or without eval
        with rng.isolated():
            if self.reference is None:
                self.reference = reference_features(run.recipe.data, ev.n_real, run.recipe.seed, ev.weights)
            images = generate(run.sampler(), ev.n, seed=run.recipe.seed, device=run.device,
                              labels="random" if run.labels is not None else None)
            result = evaluate_images(images, None, seed=run.recipe.seed, weights=ev.weights, prc=False, reference=self.reference)
        score = result["kid_mean" if ev.metric == "kid" else "fid"]
        run.eval = {"step": run.step, "n": ev.n, **{k: v for k, v in result.items() if k != "protocol"}}
        event(run, eval={k: v for k, v in result.items() if k != "protocol"}, eval_n=ev.n, eval_n_real=self.reference[1]["n"])
        log.info(f"eval (step {run.step}): {Scores.of(result).line(at_n=True)}")
        run.eval_seconds += time.perf_counter() - t0
        run.log({f"eval/{k}": v for k, v in run.eval.items() if k not in ("step", "n") and isinstance(v, (int, float))})
        run.emit("on_eval", run.eval)
        if score is not None and (run.best is None or score < run.best["score"]):
            run.best = {"metric": ev.metric, "score": score, "step": run.step, "n": ev.n}
            save_run(run, "best", best=run.best)
