"""Is a good FID a copied training set? Generated images next to their nearest training images.

    python bench/nearest.py /tmp/qb60/anime_fast-60min --data ../shared/data/anime-faces-64.zip \\
        --n 256 --out bench/results/nearest_anime_fast_60min.json --grid docs/images/benchmarks/nearest_60min.png

The copy check of ``ganzoo nearest`` (``ganzoo.nearest``, docs/evaluation.md), kept here for its command line:
draws ``--n`` images from the run's generator (its EMA where kept; seed 0, the latents of quality_budget.py's grid
rows) and finds, for each, the training image at the least RMS pixel distance (on [0, 1], the unit of ``ganzoo
sample``'s distinctness threshold, 0.02). For scale, the same is done for ``--n`` training images against all the
other training images (their own copy left out): a generator that copies its data sits far closer to its nearest
training image than a real image does to its own nearest neighbour. The grid shows, per column, a generated image
over its three nearest training images (the generated images nearest a training image first, then others in seed
order). Like ``ganzoo nearest``, it also writes ``nearest.json`` (and, without ``--grid``, ``nearest.png``) into
the run folder; ``report.html`` is left as it is.
"""

import argparse
import json
from pathlib import Path

from ganzoo.nearest import nearest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, help="the training images (default: the run's recipe data)")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--show", type=int, default=8, help="columns in the grid")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--grid", type=Path)
    args = ap.parse_args()
    r = nearest(args.run, n=args.n, data=args.data, grid=args.grid, columns=args.show, report=False)
    out = {"run": str(args.run), "data": str(args.data or r.data), "n": args.n, "train_images": r.n_train,
           "generated_to_nearest_train": r.generated_to_train, "train_to_nearest_other_train": r.train_to_train,
           **r.to_dict()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
