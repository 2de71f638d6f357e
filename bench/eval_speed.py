"""Throughput of the FID Inception pass on this machine: memory format and batch size.

    python bench/eval_speed.py --out bench/results/eval_speed.json

Evaluation time is almost all Inception (64 px images resized to 299 x 299): the reference set's features
(22,969 faces, once per machine, then cached) and N generated images per score. This times the TorchScript
network alone on 299 x 299 inputs, NCHW vs channels-last, at several batch sizes (each timed for --seconds
after a warm-up), and then ``ganzoo.evaluation.extract`` as shipped (uint8 64 px in, resize included).

Two candidate speed-ups are measured against the packaged network, features compared on the same images:
the TF1-compatible resize computed exactly as two matrix products (it is linear and separable), and the same
network exported to ONNX and run by ONNX Runtime (only where ``onnxruntime`` is installed; nothing is shipped).
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

from ganzoo.evaluation import default_weights, extract


def rate(fn, n_per_call: int, seconds: float) -> float:
    fn()  # warm-up: TorchScript's profiling executor optimizes on the first calls
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += n_per_call
    return n / (time.perf_counter() - t0)


def resize_matrix(n: int, out: int = 299) -> torch.Tensor:
    """The TF1-compatible bilinear resize of one axis from n to ``out`` as an (out, n) matrix, read off the reference."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    return tf1(torch.eye(n, dtype=torch.float64).view(n, 1, n, 1), size=(out, 1), align_corners=False)[:, 0, :, 0].T


def candidates(net, images: torch.Tensor, reference: torch.Tensor, seconds: float) -> list[dict]:
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    rows = []
    R = resize_matrix(images.shape[-1]).float()
    resize = lambda x: torch.einsum("ph,nchw,qw->ncpq", R, x.float(), R)  # noqa: E731
    exact = tf1(images.float(), size=(299, 299), align_corners=False)
    rows.append({"what": "resize as matrix products", "max_pixel_diff": float((resize(images) - exact).abs().max()),
                 "resize_ms_per_img": round(1000 * (1 / rate(lambda: resize(images), len(images), 2)), 2),
                 "tf1_resize_ms_per_img": round(1000 * (1 / rate(lambda: tf1(images.float(), size=(299, 299), align_corners=False),
                                                                 len(images), 2)), 2)})
    print(rows[-1], flush=True)
    try:
        import onnxruntime as ort
    except ImportError:
        rows.append({"what": "onnxruntime", "skipped": "not installed"})
        return rows
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/inception.onnx"
        torch.onnx.export(net, (torch.zeros(2, 3, 299, 299),), path, input_names=["x"], output_names=["f"],
                          dynamic_axes={"x": {0: "n"}, "f": {0: "n"}}, opset_version=17, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    run = lambda x: session.run(None, {"x": (resize(x) / 127.5 - 1.0).numpy()})[0]  # noqa: E731
    feats = torch.from_numpy(run(images)).double()
    rows.append({"what": "onnxruntime (resize as matrices, batch 16)", "onnxruntime": ort.__version__,
                 "max_feature_diff": float((feats - reference).abs().max()),
                 "img_per_s": round(rate(lambda: run(images), len(images), seconds), 2)})
    print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16, 64])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--out", type=Path, default=Path("bench/results/eval_speed.json"))
    args = ap.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    net = torch.jit.load(str(default_weights()), map_location="cpu").eval()
    rows = []
    with torch.inference_mode():
        for bs in args.batches:
            x = torch.rand(bs, 3, 299, 299) * 2 - 1
            for fmt, xi in (("NCHW", x), ("channels_last", x.contiguous(memory_format=torch.channels_last))):
                rows.append({"what": "network", "batch": bs, "format": fmt,
                             "img_per_s": round(rate(lambda xi=xi: net(xi), bs, args.seconds), 2)})
                print(rows[-1], flush=True)
    images = torch.randint(0, 256, (96, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    rows.append({"what": "extract (as shipped)", "batch": "default", "format": "channels_last",
                 "img_per_s": round(rate(lambda: extract(images), len(images), args.seconds), 2)})
    print(rows[-1], flush=True)
    reference = extract(images[:16])
    rows += candidates(net, images[:16], reference, args.seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, indent=2))
    print("\n| what | batch | format | img/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r.get('batch', '')} | {r.get('format', '')} | {r.get('img_per_s', '')} |")


if __name__ == "__main__":
    main()
