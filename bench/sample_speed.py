"""Time to write 1000 distinct PNGs + a grid from a checkpoint (goal: <= 3 s on 2 cores).

    python bench/sample_speed.py CHECKPOINT_OR_RUN --out bench/results/sample_speed.json

Use a trained checkpoint: an untrained generator draws near-identical images, and the distinctness check then
spends its time redrawing them. Times, best of --repeat: in-process (load checkpoint, generate with the distinctness check,
write PNGs and grid: what `ganzoo sample` does after start-up) split into its parts, and the whole
`ganzoo sample` command in a fresh process (Python and torch start-up included).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import ganzoo
from ganzoo.sampling import generate_distinct, write_samples

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sample_speed.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint
        runs = []
        for r in range(args.repeat):
            out = Path(tmp) / f"in-process-{r}"
            t0 = time.perf_counter()
            G = ganzoo.load_generator(ckpt)
            t1 = time.perf_counter()
            images, report = generate_distinct(G, args.n, seed=r)
            t2 = time.perf_counter()
            write_samples(images, out)
            t3 = time.perf_counter()
            runs.append({"load_s": t1 - t0, "generate_and_check_s": t2 - t1, "write_png_and_grid_s": t3 - t2, "total_s": t3 - t0,
                         "min_pairwise_rms": report.min_distance, "regenerated": report.regenerated})
            assert len(list(out.glob("*.png"))) == args.n + 1
        cli = []
        for r in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ganzoo", "sample", str(ckpt), "-n", str(args.n), "-o", str(Path(tmp) / f"cli-{r}"),
                            "--seed", str(r)], check=True, capture_output=True)
            cli.append(time.perf_counter() - t0)
    best = min(runs, key=lambda x: x["total_s"])
    result = {"meta": {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
                       "torch": torch.__version__, "ganzoo": ganzoo.__version__, "checkpoint": str(args.checkpoint),
                       "n": args.n},
              "in_process_best": {k: round(v, 3) for k, v in best.items()}, "in_process_all": [round(x["total_s"], 3) for x in runs],
              "cli_best_s": round(min(cli), 3), "cli_all_s": [round(x, 3) for x in cli]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print("| what | seconds |\n|---|---|")
    for k in ("load_s", "generate_and_check_s", "write_png_and_grid_s", "total_s"):
        print(f"| in-process {k[:-2].replace('_', ' ')} | {best[k]:.2f} |")
    print(f"| `ganzoo sample -n {args.n}` (fresh process) | {min(cli):.2f} |")


if __name__ == "__main__":
    main()
