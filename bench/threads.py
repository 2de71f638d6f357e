"""Training speed with 1 vs 2 torch threads, per shipped recipe: what ``train.threads`` defaults to.

    python bench/threads.py --out bench/results/threads.json

Each case trains the recipe (its own networks, batch and objective; data from ../shared/data) for S1 and S2
generator steps in this process with ``train.threads`` = 1 and = 2, interleaved over ``--rounds``; the
per-step time is the difference / (S2 - S1), so set-up, data loading and warm-up cancel out. Nothing else
may run on the machine meanwhile. Also recorded: the networks' multiply-adds per training image (one forward
of G and of the critic), to see whether small networks would rather have one thread (on 2 cores none did:
``train.threads`` stays torch's choice, one per core; docs/benchmarks.md 1c).
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import ganzoo
from ganzoo.models import forward_macs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MNIST = [f"data.root={DATA / 'mnist'}"]
CASES = {  # name -> (recipe, --set overrides, S1, S2)
    "quick_toyfaces (dcgan 32 px, base 32)": ("quick_toyfaces.yaml", [], 5, 305),
    "gan_mlp_mnist (mlp 28 px)": ("gan_mlp_mnist.yaml", MNIST, 5, 605),
    "wgan_clip_mnist (dcgan 28 px)": ("wgan_clip_mnist.yaml", MNIST, 3, 23),
    "dcgan_mnist (dcgan 28 px)": ("dcgan_mnist.yaml", MNIST, 5, 85),
    "dcgan_anime (dcgan 64 px, base 64)": ("dcgan_anime.yaml", [f"data.path={DATA / 'anime-faces-64.zip'}"], 3, 18),
    "anime_fast (resnet 64 px, base 32)": ("anime_fast.yaml", [f"data.path={DATA / 'anime-faces-64.zip'}"], 3, 18),
}


def seconds(recipe_file: str, sets: list[str], steps: int, threads: int, out: Path) -> float:
    raw = ganzoo.load_recipe(ROOT / "recipes" / recipe_file, sets).to_dict()
    raw["train"].update(steps=steps, epochs=None, time_limit=None, threads=threads)
    raw["output"].update(samples=0)
    raw["eval"]["every"] = None
    t0 = time.perf_counter()
    ganzoo.train(ganzoo.load_recipe(raw), out / f"t{threads}-s{steps}", progress=False)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "threads.json")
    args = ap.parse_args()
    rows = []
    for case in args.cases:
        recipe_file, sets, s1, s2 = CASES[case]
        recipe = ganzoo.load_recipe(ROOT / "recipes" / recipe_file, sets)
        per_step = {1: [], 2: []}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for threads in (2, 1) if r % 2 == 0 else (1, 2):
                    short = seconds(recipe_file, sets, s1, threads, Path(tmp) / f"r{r}")
                    long = seconds(recipe_file, sets, s2, threads, Path(tmp) / f"r{r}")
                    per_step[threads].append((long - short) / (s2 - s1))
        ms = {t: 1000 * statistics.median(v) for t, v in per_step.items()}
        rows.append({"case": case, "batch": recipe.train.batch_size, "macs_per_image": forward_macs(recipe),
                     "ms_per_step_1_thread": round(ms[1], 2), "ms_per_step_2_threads": round(ms[2], 2),
                     "speedup_2_over_1": round(ms[1] / ms[2], 2), "all_ms": {t: [round(1000 * x, 2) for x in v] for t, v in per_step.items()}})
        print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "torch": torch.__version__,
                                    "rows": rows}, indent=2))
    print("\n| case | batch | MMACs/image | ms/step, 1 thread | ms/step, 2 threads | 2 threads faster by |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['batch']} | {r['macs_per_image'] / 1e6:.1f} | {r['ms_per_step_1_thread']} | "
              f"{r['ms_per_step_2_threads']} | {r['speedup_2_over_1']}x |")


if __name__ == "__main__":
    main()
