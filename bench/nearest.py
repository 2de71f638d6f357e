"""Is a good FID a copied training set? Generated images next to their nearest training images.

    python bench/nearest.py /tmp/qb60/anime_fast-60min --data ../shared/data/anime-faces-64.zip \\
        --n 256 --out bench/results/nearest_anime_fast_60min.json --grid docs/images/benchmarks/nearest_60min.png

Draws ``--n`` images from the run's generator (its EMA where kept; seed 0, the latents of quality_budget.py's grid
rows) and finds, for each, the training image at the least RMS pixel distance (on [0, 1], the unit of ``ganzoo
sample``'s distinctness threshold, 0.02). For scale, the
same is done for ``--n`` training images against all the other training images (their own copy left out): a
generator that copies its data sits far closer to its nearest training image than a real image does to its own
nearest neighbour. The grid shows, per column, a generated image over its three nearest training images.
"""

import argparse
import json
from pathlib import Path

import torch

import ganzoo
from ganzoo.data import load_dataset
from ganzoo.recipe import load_data_section
from ganzoo.sampling import generate, grid_image, pairwise_rms, write_png


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--show", type=int, default=8, help="columns in the grid")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--grid", type=Path)
    args = ap.parse_args()
    recipe = ganzoo.load_recipe(args.run / "recipe.yaml")
    section = load_data_section({"name": "images", "path": str(args.data), "resolution": recipe.data.resolution,
                                 "channels": recipe.data.channels})
    real_u8, _ = load_dataset(section)
    fake_u8 = generate(ganzoo.load_generator(args.run), args.n, seed=0)
    d_fake, i_fake = pairwise_rms(fake_u8, real_u8).topk(3, dim=1, largest=False)
    pick = torch.randperm(len(real_u8), generator=torch.Generator().manual_seed(0))[:args.n]
    to_real = pairwise_rms(real_u8[pick], real_u8)
    to_real[torch.arange(len(pick)), pick] = float("inf")  # not its own copy
    d_real = to_real.min(dim=1, keepdim=True).values
    out = {"run": str(args.run), "data": str(args.data), "n": args.n, "train_images": len(real_u8),
           "generated_to_nearest_train": {"min": d_fake[:, 0].min().item(), "p10": d_fake[:, 0].quantile(0.1).item(),
                                          "median": d_fake[:, 0].median().item()},
           "train_to_nearest_other_train": {"min": d_real[:, 0].min().item(), "p10": d_real[:, 0].quantile(0.1).item(),
                                            "median": d_real[:, 0].median().item()},
           "distance": "RMS pixel difference on [0, 1]"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    if args.grid:
        cols = min(args.show, args.n)
        rows = [fake_u8[:cols]] + [real_u8[i_fake[:cols, j]] for j in range(3)]
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        write_png(grid_image(torch.cat(rows), nrow=cols), args.grid)


if __name__ == "__main__":
    main()
