"""Throughput of the FID Inception pass on this machine: memory format and batch size.

    python bench/eval_speed.py --out bench/results/eval_speed.json

``extract`` before (the first path: the TorchScript network, NCHW, batch 64, TF1 resize), with
backend ``torch`` (the reference: channels-last, batch 8) and after (backend ``onnxruntime``, the default on CPUs
where it is installed, with the resize as matrix products), on the same images, with the max feature difference.

Evaluation time is almost all Inception (64 px images resized to 299 x 299): the reference set's features
(22,969 faces, once per machine, then cached) and N generated images per score. This times the TorchScript
network alone on 299 x 299 inputs, NCHW vs channels-last, at several batch sizes (each timed for --seconds
after a warm-up), and then ``ganzoo.features.extract`` as shipped (uint8 64 px in, resize included).

Also timed: the TF1-compatible resize against the same computed as two matrix products (it is linear and
separable), to show the resize's share of the time.
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import torch

from ganzoo.features import default_weights, extract, feature_extractor, resize_matrix


def rate(fn, n_per_call: int, seconds: float) -> float:
    fn()  # warm-up: TorchScript's profiling executor optimizes on the first calls
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += n_per_call
    return n / (time.perf_counter() - t0)


def issue_time_extract(net, images: torch.Tensor) -> None:
    """What ``extract`` did first: TF1 resize, then the TorchScript network on NCHW batches of 64."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    with torch.inference_mode():
        for batch in images.split(64):
            net(tf1(batch.float(), size=(299, 299), align_corners=False) / 127.5 - 1.0)


def candidates(images: torch.Tensor) -> list[dict]:
    """The resize's share: TF1-compatible resize (backend torch) vs the same as two matrix products (backend onnxruntime)."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    rows = []
    R = resize_matrix(images.shape[-1])
    resize = lambda x: R @ x.float() @ R.T  # noqa: E731  (as evaluation's ONNX Runtime path computes it)
    exact = tf1(images.float(), size=(299, 299), align_corners=False)
    rows.append({"what": "resize as matrix products", "max_pixel_diff": float((resize(images) - exact).abs().max()),
                 "resize_ms_per_img": round(1000 * (1 / rate(lambda: resize(images), len(images), 2)), 2),
                 "tf1_resize_ms_per_img": round(1000 * (1 / rate(lambda: tf1(images.float(), size=(299, 299), align_corners=False),
                                                                 len(images), 2)), 2)})
    print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--network", action="store_true", help="also time the TorchScript network alone (NCHW vs channels-last)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/eval_speed.json"))
    args = ap.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    net = torch.jit.load(str(default_weights()), map_location="cpu").eval()
    rows = []
    if args.network:
        with torch.inference_mode():
            for bs in args.batches:
                x = torch.rand(bs, 3, 299, 299) * 2 - 1
                for fmt, xi in (("NCHW", x), ("channels_last", x.contiguous(memory_format=torch.channels_last))):
                    rows.append({"what": "network", "batch": bs, "format": fmt,
                                 "img_per_s": round(rate(lambda xi=xi: net(xi), bs, args.seconds), 2)})
                    print(rows[-1], flush=True)
    images = torch.randint(0, 256, (96, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    fe, _ = feature_extractor(None, "cpu", "onnxruntime")  # load (+ export, the first time on a machine) and check
    setup_s = time.perf_counter() - t0
    assert fe.session is not None, "ONNX Runtime fell back to TorchScript: see the warning above"
    reference = extract(images[:32], backend="torch")
    fast = extract(images[:32], backend="onnxruntime")
    diff = float((fast - reference).abs().max())
    print(f"onnxruntime ready in {setup_s:.1f}s; max feature difference vs TorchScript on 32 images: {diff:.2e}", flush=True)
    rows.append({"what": "extract as first written (TorchScript, NCHW, batch 64, TF1 resize)", "batch": 64,
                 "img_per_s": round(rate(lambda: issue_time_extract(net, images), len(images), args.seconds), 2)})
    print(rows[-1], flush=True)
    for backend in ("torch", "onnxruntime"):
        for bs in [None, *args.batches]:  # None: extract's default batch size
            rows.append({"what": f"extract, backend {backend}", "batch": bs or "default",
                         "img_per_s": round(rate(lambda: extract(images, batch_size=bs, backend=backend), len(images), args.seconds), 2)})
            print(rows[-1], flush=True)
    before = next(r for r in rows if r["what"].startswith("extract as first written"))["img_per_s"]
    torch_now = next(r for r in rows if r["what"] == "extract, backend torch" and r["batch"] == "default")["img_per_s"]
    after = next(r for r in rows if r["what"] == "extract, backend onnxruntime" and r["batch"] == "default")["img_per_s"]
    summary = {"before_img_per_s": before, "after_img_per_s": after, "speedup": round(after / before, 2), "goal": "2x",
               "met": after >= 2 * before, "max_feature_diff": diff, "onnxruntime_ready_s": round(setup_s, 1),
               "torch_backend_img_per_s": torch_now, "speedup_vs_torch_backend": round(after / torch_now, 2),
               "before": "extract as first written: the TorchScript network, NCHW, batch 64, TF1 resize",
               "torch_backend": "extract with backend torch (the reference): TorchScript, channels-last, batch 8, TF1 resize",
               "after": "extract as shipped now on a CPU with onnxruntime installed (backend auto = onnxruntime, resize as "
                        "matrix products), its default batch"}
    print(summary, flush=True)
    rows += candidates(images[:16])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                                    "summary": summary, "rows": rows}, indent=2))
    print("\n| what | batch | format | img/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r.get('batch', '')} | {r.get('format', '')} | {r.get('img_per_s', '')} |")


if __name__ == "__main__":
    main()
