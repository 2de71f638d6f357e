"""Run every shipped recipe for a few hundred steps on real data; print a table of img/s.

    python bench/recipes_smoke.py --steps 200 --data ../shared/data --out bench/results/recipes_smoke.json

Each run writes its checkpoint, 1000 samples and grid under a temporary run folder (kept with --keep).
img/s counts real images through the critic per second (batch x n_critic x steps / seconds), data
loading and the first-step warm-up included.
"""

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

import ganzoo

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "recipes_smoke.json")
    ap.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder")
    ap.add_argument("recipes", nargs="*", default=["dcgan_anime", "wgan_gp_anime", "gan_mlp_mnist", "dcgan_mnist", "wgan_clip_mnist"])
    args = ap.parse_args()
    overrides = {
        "images": [f"data.path={args.data / 'anime-faces-64.zip'}"],
        "mnist": [f"data.root={args.data / 'mnist'}"],
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.keep or Path(tmp)
        for name in args.recipes:
            path = ROOT / "recipes" / f"{name}.yaml"
            base = ganzoo.load_recipe(path)
            r = ganzoo.load_recipe(path, overrides.get(base.data.name, []) + [
                "train.epochs=null", f"train.steps={args.steps}", f"output.dir={out_dir}"])
            t0 = time.perf_counter()
            res = ganzoo.train(r, progress=False)
            total = time.perf_counter() - t0
            n_samples = len(list((res.run_dir / "samples").glob("[0-9]*.png")))
            rows.append({"recipe": name, "steps": res.steps, "train_s": round(res.seconds, 1),
                         "img_per_s": round(res.images_per_second, 1), "wall_s_incl_data_and_samples": round(total, 1),
                         "samples": n_samples, "grid": (res.run_dir / "samples" / "grid.png").is_file(),
                         "final_d_loss": round(res.metrics["d_loss"], 3), "final_g_loss": round(res.metrics["g_loss"], 3)})
            print(rows[-1], flush=True)
    meta = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__, "ganzoo": ganzoo.__version__, "steps": args.steps}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\n| recipe | steps | train s | img/s | wall s (with data + 1000 samples) | samples |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['recipe']} | {r['steps']} | {r['train_s']} | {r['img_per_s']} | {r['wall_s_incl_data_and_samples']} | {r['samples']} + grid |")


if __name__ == "__main__":
    main()
