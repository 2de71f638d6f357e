"""img/s of one process vs N processes (torchrun, gloo, one thread each) on the same recipe.

    python bench/ddp_scaling.py --steps 100 --out bench/results/ddp_scaling.json

The per-process batch is the recipe's; with N processes the global batch is N times larger, so img/s
(images through the critic per second, all ranks) shows how much of the extra compute survives the
gradient all-reduce.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(nproc, recipe, steps, out_dir, extra):
    launcher = [sys.executable, "-m", "ganzoo"] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m", "ganzoo"]
    run_dir = out_dir / f"np{nproc}"
    cmd = launcher + ["run", str(recipe), "-q", "--run-dir", str(run_dir), "--set", f"train.steps={steps}",
                      "--set", "train.epochs=null", "--set", "train.threads=1", "--set", "output.samples=0",
                      "--set", "output.tensorboard=false"] + [a for kv in extra for a in ("--set", kv)]
    subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads((run_dir / "run.json").read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "quick_toyfaces.yaml")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--set", dest="extra", action="append", default=[])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ddp_scaling.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.nproc:
            s = run(n, args.recipe, args.steps, Path(tmp), args.extra)
            rows.append({"processes": n, "threads_each": 1, "steps": s["steps"], "seconds": s["seconds"],
                         "img_per_s": s["images_per_second"]})
    base = rows[0]["img_per_s"]
    for r in rows:
        r["speedup"] = round(r["img_per_s"] / base, 2)
        r["efficiency"] = round(r["speedup"] / r["processes"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"recipe": str(args.recipe), "overrides": args.extra, "rows": rows}, indent=2))
    print("| processes | threads each | steps | seconds | img/s | speedup | efficiency |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | 1 | {r['steps']} | {r['seconds']} | {r['img_per_s']} | {r['speedup']} | {r['efficiency']} |")


if __name__ == "__main__":
    main()
