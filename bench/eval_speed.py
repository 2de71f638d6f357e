"""Throughput of the FID Inception pass on this machine: memory format and batch size.

    python bench/eval_speed.py --out bench/results/eval_speed.json

Evaluation time is almost all Inception (64 px images resized to 299 x 299): the reference set's features
(22,969 faces, once per machine, then cached) and N generated images per score. This times the TorchScript
network alone on 299 x 299 inputs, NCHW vs channels-last, at several batch sizes (each timed for --seconds
after a warm-up), and then ``ganzoo.evaluation.extract`` as shipped (uint8 64 px in, resize included).
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
    images = torch.randint(0, 256, (96, 3, 64, 64), dtype=torch.uint8)
    rows.append({"what": "extract (as shipped)", "batch": "default", "format": "channels_last",
                 "img_per_s": round(rate(lambda: extract(images), len(images), args.seconds), 2)})
    print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, indent=2))
    print("\n| what | batch | format | img/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['batch']} | {r['format']} | {r['img_per_s']} |")


if __name__ == "__main__":
    main()
