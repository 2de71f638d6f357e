"""Is a good FID a copied training set? Generated images next to their nearest training images.

    python bench/nearest.py /tmp/qb60/anime_fast-60min --data ../shared/data/anime-faces-64.zip \\
        --n 256 --out bench/results/nearest_anime_fast_60min.json --grid docs/images/benchmarks/nearest_60min.png

Draws ``--n`` images from the run's generator (its EMA where kept; seed 0, the latents of quality_budget.py's grid
rows) and finds, for each, the training image at the least mean squared pixel distance (on [0, 1]). For scale, the
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
from ganzoo.sampling import generate, grid_image, write_png


def nearest(queries: torch.Tensor, data: torch.Tensor, k: int, skip: torch.Tensor | None = None, chunk: int = 4096):
    """Mean squared distances and indices of the k nearest rows of ``data`` (N, D) for each query (Q, D);
    ``skip[q]`` is an index of data that query q may not match (itself)."""
    best_d = torch.full((len(queries), k), float("inf"))
    best_i = torch.zeros((len(queries), k), dtype=torch.long)
    q2 = (queries ** 2).sum(1, keepdim=True)
    for start in range(0, len(data), chunk):
        block = data[start:start + chunk]
        d = (q2 - 2 * queries @ block.T + (block ** 2).sum(1)) / queries.shape[1]
        if skip is not None:
            hit = (skip >= start) & (skip < start + len(block))
            d[hit.nonzero().squeeze(1), skip[hit] - start] = float("inf")
        d_all = torch.cat([best_d, d], 1)
        i_all = torch.cat([best_i, torch.arange(start, start + len(block)).expand(len(queries), -1)], 1)
        best_d, order = d_all.topk(k, dim=1, largest=False)
        best_i = i_all.gather(1, order)
    return best_d.clamp_min(0), best_i


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
    real = real_u8.flatten(1).float() / 255
    fake_u8 = generate(ganzoo.load_generator(args.run), args.n, seed=0)
    fake = fake_u8.flatten(1).float() / 255
    d_fake, i_fake = nearest(fake, real, 3)
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:args.n]
    d_real, _ = nearest(real[pick], real, 1, skip=pick)
    out = {"run": str(args.run), "data": str(args.data), "n": args.n, "train_images": len(real),
           "generated_to_nearest_train": {"min": d_fake[:, 0].min().item(), "p10": d_fake[:, 0].quantile(0.1).item(),
                                          "median": d_fake[:, 0].median().item()},
           "train_to_nearest_other_train": {"min": d_real[:, 0].min().item(), "p10": d_real[:, 0].quantile(0.1).item(),
                                            "median": d_real[:, 0].median().item()},
           "distance": "mean squared pixel difference on [0, 1]"}
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
