"""The trained models that ship with ganzoo (``ganzoo models``): train, score and export each one.

    python bench/ship_models.py train anime-faces --threads 1   # its zoo row to the data set's budget (resumes)
    python bench/ship_models.py ship anime-faces                # score the row's last point, export models/anime-faces
    python bench/ship_models.py all                             # both, every model
    python bench/ship_models.py spread anime-faces --seeds 1 2  # FID@5k of the shipped weights at other seeds

Each shipped model is the generator of one zoo row (bench/zoo.py: the same recipe, data set and budget in images
seen; the class-conditional MNIST model is that row with the digit labels and projection conditioning added). ``ship``
scores the chosen point with the zoo's protocol (N = 5,000 generated images, seed 0, against a seeded 5,000 real
images: FID, KID, precision/recall) through ``ganzoo.evaluate``, so the scores are kept with exactly those weights,
then exports it with ``ganzoo.export(..., "folder", half=True)``: fp16 weights, config, card with the scores, samples.

``spread`` scores the shipped folder again at other evaluation seeds (the seed draws both the generated latents and
the subset of real images) and keeps every score, the card's seed 0 among them, in ``--spread-out``: how far
FID@5,000 moves between evaluations of the same weights, the spread a card's FID is read within.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ganzoo  # noqa: E402
import zoo  # noqa: E402
from ganzoo.export import export, is_model_folder  # noqa: E402
from ganzoo.fileio import file_sha256  # noqa: E402
from ganzoo.recipe import load_data_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "models"
N, N_REAL = 5000, 5000

# name -> the zoo row it comes from, and what is added to the row's recipe (a conditional variant trains its own run)
MODELS: dict[str, dict] = {
    "anime-faces": {"data_set": "anime64", "row": "anime_fast", "changes": {}},
    "anime-faces-32": {"data_set": "anime32", "row": "anime_fast", "changes": {}},
    "mnist-digits": {"data_set": "mnist32", "row": "anime_fast",
                     "changes": {"data": {"labels": ["digit"]}, "condition": {"name": "projection"}}},
    "fashion": {"data_set": "fmnist32", "row": "anime_fast", "changes": {}},
}


def run_dir(name: str, runs: Path) -> Path:
    spec = MODELS[name]
    folder = zoo.row_dir(runs, spec["row"], spec["data_set"])
    return folder.with_name(f"{folder.name}-{name}") if spec["changes"] else folder


def recipe(name: str, kimg: float | None, threads: int | None) -> dict:
    spec = MODELS[name]
    raw, _ = zoo.row_recipe(spec["row"], spec["data_set"], kimg or zoo.BUDGET_KIMG[spec["data_set"]], threads)
    for section, values in copy.deepcopy(spec["changes"]).items():
        raw[section] = {**(raw.get(section) or {}), **values}
    raw["name"] = name.replace("-", "_")
    return raw


def train(name: str, args) -> None:
    raw = recipe(name, args.kimg, args.threads)
    folder = run_dir(name, args.runs)
    last = folder / "checkpoints" / "last.safetensors"
    if last.is_file():
        done = ganzoo.load_checkpoint(last).meta["step"]
        if done >= raw["train"]["steps"]:
            print(f"{name}: trained already ({folder}, step {done})", flush=True)
            return
        ganzoo.resume(folder, progress=False, overrides=[f"train.steps={raw['train']['steps']}"]
                      + ([f"train.threads={args.threads}"] if args.threads else []))
    else:
        ganzoo.train(ganzoo.load_recipe(raw), folder, progress=False)
    print(f"{name}: trained ({folder})", flush=True)


def ship(name: str, args) -> None:
    folder = run_dir(name, args.runs)
    points = zoo.kept_points(folder)
    if not points:
        raise SystemExit(f"{name}: no kept point in {folder}; train it first: python bench/ship_models.py train {name}")
    step, ckpt = next(((s, p) for s, p in points if s == args.step), points[-1]) if args.step else points[-1]
    spec = MODELS[name]
    ref = load_data_section(zoo.DATA_SETS[spec["data_set"]]["section"])  # the zoo's reference: the data without augmentation
    result = ganzoo.evaluate(ckpt, ref=ref, n=N, n_real=N_REAL, seed=0)
    print(f"{name}: step {step}: {ganzoo.metrics.Scores.of(result).line()}", flush=True)
    target = MODELS_DIR / name
    if target.exists():
        shutil.rmtree(target)
    export(ckpt, "folder", target, half=True, name=name)
    print(f"{name}: exported to {target}", flush=True)


def spread(name: str, args) -> dict:
    """FID@5k (and KID, precision/recall) of the shipped folder at seed 0 and ``args.seeds``, merged into ``args.spread_out``."""
    target = MODELS_DIR / name
    if not is_model_folder(target):
        raise SystemExit(f"{name}: no shipped folder {target}; ship it first: python bench/ship_models.py ship {name}")
    ref = load_data_section(zoo.DATA_SETS[MODELS[name]["data_set"]]["section"])
    data = json.loads(args.spread_out.read_text()) if args.spread_out.is_file() else {}
    entry = data.get(name) or {}
    weights = file_sha256(target / "model.safetensors")
    card = json.loads((target / "config.json").read_text()).get("evaluation") or {}  # scored from the checkpoint, before fp16
    scored = {s["seed"]: s for s in entry.get("scores", [])} if entry.get("weights_sha256") == weights else {}
    for seed in sorted({0, *args.seeds}):
        if seed in scored:
            continue
        result = ganzoo.evaluate(target, ref=ref, n=N, n_real=N_REAL, seed=seed)
        scored[seed] = {"seed": seed, **{k: result[k] for k in ("fid", "kid_mean", "kid_std", "precision", "recall")}}
        print(f"{name}: seed {seed}: FID@{N // 1000}k {result['fid']:.2f}, KID {result['kid_mean']:.4f}, "
              f"precision {result['precision']:.3f}, recall {result['recall']:.3f}", flush=True)
        fids = [s["fid"] for s in scored.values()]
        entry = {"model": name, "data_set": MODELS[name]["data_set"], "n": N, "n_real": N_REAL, "weights_sha256": weights,
                 "card": {k: card.get(k) for k in ("fid", "kid_mean", "precision", "recall", "seed")},
                 "scores": [scored[k] for k in sorted(scored)], "fid_mean": statistics.fmean(fids),
                 "fid_std": statistics.stdev(fids) if len(fids) > 1 else None, "fid_range": [min(fids), max(fids)],
                 "machine": zoo.machine(), "measured": zoo.now()}
        data[name] = entry
        args.spread_out.parent.mkdir(parents=True, exist_ok=True)
        args.spread_out.write_text(json.dumps(data, indent=1) + "\n")  # after every seed: an interrupted run keeps its scores
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["train", "ship", "all", "spread"])
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"models ({', '.join(MODELS)}); default all")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "zoo")
    ap.add_argument("--kimg", type=float, help="train to this many thousand images (default: the data set's zoo budget)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--step", type=int, help="ship this kept point (default: the last)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="spread: evaluation seeds besides the card's 0")
    ap.add_argument("--spread-out", type=Path, default=ROOT / "bench" / "results" / "models_spread.json")
    args = ap.parse_args(argv)
    for name in args.names or list(MODELS):
        if name not in MODELS:
            ap.error(f"unknown model {name!r}: the models are {', '.join(MODELS)}")
        if args.command in ("train", "all"):
            train(name, args)
        if args.command in ("ship", "all"):
            ship(name, args)
        if args.command == "spread":
            spread(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
