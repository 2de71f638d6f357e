"""Conditional generation per CPU-minute: train conditional recipes for a wall-clock budget, then measure label
accuracy (and optionally FID/KID) against the real images.

    python bench/conditional.py recipes/cgan_mnist.yaml --minutes 10 --set data.root=../shared/data/mnist \\
        --test-set data.split=test --out bench/results/cgan_mnist_10min.json --grid docs/images/conditional/cgan_mnist_digit.png

Each recipe trains with ``train.time_limit`` = the budget (the training loop's time; data decoding, the final
checkpoint and samples are outside it), nothing else running. Then the checkpoint's generator (its EMA when the
recipe keeps one) is scored by ``ganzoo.classifier.label_accuracy``: a small CNN trained once on a seeded 90 %
of the real labelled images (cached), its accuracy on the held-out 10 % beside the fraction of N generated
images that it puts in the class they were asked for (the labels of held-out real images). ``--fid N`` also
scores FID/KID at N over all classes (labels drawn from the training frequencies). ``--grid`` writes one
per-class grid per attribute (one row per class, the same noise in every row). ``--variants`` trains the same
recipe once per ``--set`` group, e.g. to compare conditionings:

    python bench/conditional.py recipes/cdcgan_anime_tags.yaml --minutes 8 --set data.path=../shared/data/anime-tagged-96.zip \\
        --variants condition.name=concat condition.name=projection condition.name=acgan --out bench/results/cond_race.json
"""

import argparse
import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path

import torch

import ganzoo
from ganzoo.classifier import classifier_for, label_accuracy
from ganzoo.sampling import class_grid, write_grid


def test_set_accuracy(recipe, classifier, test_set: list[str]) -> dict:
    """The classifier's accuracy on another labelled set (e.g. MNIST's official test digits: data.split=test)."""
    from ganzoo.classifier import accuracy, predict
    from ganzoo.data import load_data

    section = ganzoo.load_recipe(recipe.to_dict(), test_set).data
    data = load_data(section)
    model, _, _, _, space = classifier
    if data.labels.classes != space.classes:
        raise SystemExit(f"--test-set: other classes than the training data ({data.labels.describe()})")
    acc = accuracy(predict(model, data.images), data.codes, space)
    return {"set": test_set, "n": len(data.images), **{a: v["accuracy"] for a, v in acc.items()}}


def run_one(recipe_path: str, overrides: list[str], minutes: float, runs: Path, n: int, fid: int | None, grid: str | None,
            test_set: list[str] = (), fid_real: int | None = None) -> dict:
    raw = ganzoo.load_recipe(recipe_path, overrides).to_dict()
    raw["train"].update(epochs=None, steps=10**7, time_limit=minutes)  # the budget, not the length, ends the run
    raw["output"].update(dir=str(runs), grid_every=500, samples=100)
    raw["eval"]["every"] = None
    recipe = ganzoo.load_recipe(raw)
    tag = "-".join(o.split("=")[-1] for o in overrides if o.startswith(("condition.", "objective.", "critic.", "generator."))) or "base"
    run_dir = runs / f"{recipe.name}-{tag}-{minutes:g}min"
    t0 = time.perf_counter()
    result = ganzoo.train(recipe, run_dir, progress=False)
    train_wall = time.perf_counter() - t0
    G = ganzoo.load_generator(result.checkpoint)
    t1 = time.perf_counter()
    classifier = classifier_for(recipe.data)
    acc = label_accuracy(G, n=n, seed=0, classifier=classifier)
    row = {"recipe": recipe.name, "overrides": overrides, "minutes": minutes, "steps": result.steps,
           "train_seconds": round(result.seconds, 1), "train_wall_seconds": round(train_wall, 1),
           "img_per_s": round(result.images_per_second, 1), "run_dir": str(run_dir),
           "label_accuracy": {a: v["accuracy"] for a, v in acc["generated"].items()},
           "classifier_real_accuracy": {a: v["accuracy"] for a, v in acc["classifier"]["test_accuracy"].items()},
           "per_class": {a: v["per_class"] for a, v in acc["generated"].items()},
           "n_generated": n, "classifier": acc["classifier"], "score_seconds": round(time.perf_counter() - t1, 1)}
    if test_set:
        row["classifier_test_set_accuracy"] = test_set_accuracy(recipe, classifier, test_set)
    if fid:
        t2 = time.perf_counter()
        scored = ganzoo.evaluate(run_dir, n=fid, n_real=fid_real, prc=False)
        row.update(fid=scored["fid"], kid_mean=scored["kid_mean"], kid_std=scored["kid_std"], fid_n=fid,
                   fid_protocol={k: scored["protocol"][k] for k in ("n_generated", "n_real", "library")},
                   fid_seconds=round(time.perf_counter() - t2, 1))
    if grid:
        for attr in G.labels.attributes:
            images, classes = class_grid(G, attr, columns=10, seed=0)
            path = Path(grid.replace(".png", f"_{attr}.png") if len(G.labels.attributes) > 1 else grid)
            write_grid(images, path, nrow=10)
            row.setdefault("grids", {})[attr] = {"path": str(path), "rows": classes}
    print(json.dumps({k: v for k, v in row.items() if k not in ("per_class", "classifier")}), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--set", action="append", default=[], help="recipe override for every run (KEY=VALUE)")
    ap.add_argument("--variants", nargs="*", default=[], help="one run per item; an item is KEY=VALUE[,KEY=VALUE...]")
    ap.add_argument("--n", type=int, default=2000, help="generated images for label accuracy")
    ap.add_argument("--fid", type=int, default=None, help="also FID/KID at this N")
    ap.add_argument("--fid-real", type=int, default=None, help="real images for FID/KID (a seeded subset); default: all")
    ap.add_argument("--grid", default=None, help="per-class grid PNG (one per attribute: NAME_ATTR.png)")
    ap.add_argument("--runs", default="/tmp/cond-bench")
    ap.add_argument("--test-set", action="append", default=[], help="also the classifier's accuracy on this data (override, "
                    "e.g. data.split=test for MNIST's official test digits)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    doc["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "ganzoo": importlib.metadata.version("ganzoo")}
    for variant in args.variants or [""]:
        overrides = args.set + [v for v in variant.split(",") if v]
        row = run_one(args.recipe, overrides, args.minutes, Path(args.runs), args.n, args.fid, None if args.variants else args.grid,
                      args.test_set, args.fid_real)
        doc["rows"] = [r for r in doc["rows"] if not (r["recipe"] == row["recipe"] and r["overrides"] == row["overrides"]
                                                      and r["minutes"] == row["minutes"])] + [row]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
