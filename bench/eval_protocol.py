"""Score a run at N=1k and N=10k against the full reference set, and the same for real images (the small-N floor).

    python bench/eval_protocol.py RUN_DIR --ref ../shared/data/anime-faces-64.zip --out bench/results/eval_dcgan_anime.json

Reference features of every real image are extracted once (cached); generated features once for the largest N
(the smaller N use its first images). Real-vs-real rows score seeded random real subsets of 1k and 10k against
the full set they are drawn from: the FID a perfect generator would get at that N.
"""

import argparse
import json
import time
from pathlib import Path

import torch

import ganzoo
from ganzoo.features import extract, network_info, reference_features
from ganzoo.metrics import scores
from ganzoo.recipe import load_data_section


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--ref", type=Path, required=True)
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    G, _, recipe, ckpt = ganzoo.load_models(args.run)
    section = load_data_section({"name": "images", "path": str(args.ref), "resolution": recipe.data.resolution,
                                 "channels": recipe.data.channels})
    t0 = time.perf_counter()
    real, ref_info = reference_features(section, None, args.seed)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    images = ganzoo.generate(G, max(args.n), seed=args.seed)
    gen = extract(images)
    t_gen = time.perf_counter() - t0
    rows = []
    for n in sorted(args.n):
        r = scores(gen[:n], real, seed=args.seed)
        rows.append({"what": f"generator (step {ckpt.meta['step']})", "n": n, **{k: r[k] for k in ("fid", "kid_mean", "kid_std", "precision", "recall")}})
    g = torch.Generator().manual_seed(args.seed + 1)
    for n in sorted(args.n):
        pick = torch.randperm(len(real), generator=g)[:n]
        r = scores(real[pick], real, seed=args.seed)
        rows.append({"what": "real subset vs full set", "n": n, **{k: r[k] for k in ("fid", "kid_mean", "kid_std", "precision", "recall")}})
    import importlib.metadata

    out = {"run": str(args.run), "checkpoint_step": ckpt.meta["step"], "reference": ref_info, "seed": args.seed,
           "library": f"torch-fidelity {importlib.metadata.version('torch-fidelity')}", "feature_network": network_info(backend="auto"),
           "kid": "100 subsets of min(1000, N), polynomial kernel degree 3", "precision_recall": "k=3, real subset of size N",
           "seconds": {"reference_features": round(t_ref, 1), "generate_and_features": round(t_gen, 1)},
           "torch_threads": torch.get_num_threads(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print("| what | N | FID | KID (x1e3) | precision | recall |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['n']} | {r['fid']:.2f} | {1e3 * r['kid_mean']:.2f} ± {1e3 * r['kid_std']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} |")


if __name__ == "__main__":
    main()
