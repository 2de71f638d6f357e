"""Every shipped recipe trained as it ships, on its own data, and scored: the score ``ganzoo recipes`` shows beside
recipes that are not a row of the zoo (the MNIST recipes, quick_toyfaces, the conditional ones).

    python bench/recipe_runs.py train dcgan_mnist wgan_clip_mnist     # as shipped, alone on the machine (its minutes)
    python bench/recipe_runs.py train dcgan_anime --kimg 40 --threads 1   # a long recipe to a budget, beside other work
    python bench/recipe_runs.py score dcgan_mnist wgan_clip_mnist     # FID/KID at N = 1,000 and 5,000, precision/recall
    python bench/recipe_runs.py speed dcgan_mnist wgan_clip_mnist     # img/s alone: images seen -> CPU-minutes
    python bench/zoo.py page                                          # into recipes/scores.json and docs/zoo.md

**As shipped** means the recipe file unchanged but for where its data lives (``--data``, the shared data folder),
no sample folder and no TensorBoard (they do not change the weights). A recipe that stops on its time limit stops
on it here too: its images seen are what it reaches on this machine. ``--kimg K`` trains a recipe to K thousand
images seen instead of its own length (for recipes of hours); ``--threads`` sets torch's threads (1 to train two at
once). CPU-minutes are images seen / img/s alone on the machine: ``speed`` (torch's default threads, nothing else
running), or the run's own speed where it trained alone with default threads; else only its images seen.

**Scores**: the last checkpoint (its weight average where the recipe keeps one), 5,000 images from seed 0 (the
first 1,000 for FID@1k), against a seeded subset of 5,000 real images of the recipe's own data at its own
resolution (fewer where the data has fewer): the zoo's protocol (``bench/zoo.py``). Written to
``bench/results/recipe_runs.json`` with a strip of 8 images; runs in ``runs/recipes/RECIPE``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402
import zoo_page  # noqa: E402

import ganzoo  # noqa: E402
from ganzoo.errors import GanzooError  # noqa: E402
from ganzoo.recipe import load_data_section  # noqa: E402
from ganzoo.shipped import fingerprint, shipped_recipes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "recipe_runs.json"
N_SCORED, N_REAL = (1000, 5000), 5000


def own_data(section: dict, data: Path) -> dict:
    """The recipe's data section with its files found under ``data`` (the shared data folder's layout)."""
    section = dict(section)
    if section["name"] in ("mnist", "fashion_mnist"):
        section["root"] = str(data / ("fashion-mnist" if section["name"] == "fashion_mnist" else "mnist"))
    elif section["name"] == "images":
        tagged = "tagged" in str(section["path"])
        section["path"] = str(data / ("anime-tagged-96.zip" if tagged else "anime-faces-64.zip"))
    return section


def data_set_name(section: dict) -> str:
    """A short name of a recipe's own data: its source and resolution (``mnist28``, ``anime64``, ``tagged64``)."""
    kind = {"mnist": "mnist", "fashion_mnist": "fmnist", "toyfaces": "toyfaces"}.get(section["name"])
    if kind is None:
        kind = "tagged" if "tagged" in str(section.get("path", "")) else "anime"
    return f"{kind}{section['resolution']}"


def recipe_as_shipped(name: str, args) -> dict:
    raw = ganzoo.load_recipe(shipped_recipes()[name]).to_dict()
    raw["data"] = own_data(raw["data"], args.data)
    raw["output"].update(samples=0, tensorboard=False)
    raw["eval"]["every"] = None
    if args.kimg:
        raw["train"].update(epochs=None, steps=round(args.kimg * 1000 / zoo.images_per_step(raw)), time_limit=None)
    if args.threads:
        raw["train"]["threads"] = args.threads
    return raw


def train(name: str, args) -> None:
    raw = recipe_as_shipped(name, args)
    run_dir = args.runs / name
    last = run_dir / "checkpoints" / "last.safetensors"
    if last.is_file():  # an interrupted run goes on; a finished one says so
        overrides = ([f"train.steps={raw['train']['steps']}"] if args.kimg else []) + ([f"train.threads={args.threads}"] if args.threads else [])
        try:
            ganzoo.resume(run_dir, progress=False, overrides=overrides)
        except GanzooError as exc:
            print(f"{name}: {exc}", flush=True)
    else:
        print(f"{name}: training as shipped on {data_set_name(raw['data'])} into {run_dir}", flush=True)
        ganzoo.train(ganzoo.load_recipe(raw), run_dir, progress=False)
    summary = json.loads((run_dir / "run.json").read_text())
    with zoo.updating(args.out) as results:
        old = results.setdefault("runs", {}).get(name) or {}
        results["runs"][name] = {"recipe": name, **({"speed": old["speed"]} if "speed" in old else {}), "trained": {
            "steps": summary["steps"], "seconds": summary.get("seconds_total"), "threads": args.threads,
            "alone": args.threads is None, "machine": zoo.machine(), "measured": zoo.now()}}  # earlier scores dropped


def with_minutes(entry: dict) -> dict:
    """``entry`` with ``img_per_s_alone`` (its ``speed``, else its own training's where that ran alone) and the
    CPU-minutes its images seen take at it (None where neither is measured)."""
    trained, per_step = entry.get("trained") or {}, entry.get("images_per_step")
    alone = (entry.get("speed") or {}).get("img_per_s")
    if alone is None and trained.get("alone") and trained.get("seconds") and per_step:
        alone = trained["steps"] * per_step / trained["seconds"]
    minutes = entry["kimg"] * 1000 / alone / 60 if alone and "kimg" in entry else None
    return {**entry, "img_per_s_alone": round(alone, 1) if alone else None, "minutes": round(minutes, 1) if minutes is not None else None}


def speed(name: str, args) -> None:
    """img/s of the recipe alone on the machine (torch's default threads): ``--seconds`` after ``--warmup`` steps."""
    raw = recipe_as_shipped(name, argparse.Namespace(data=args.data, kimg=None, threads=None))
    per_step = zoo.images_per_step(raw)
    steps, seconds = zoo.time_alone(raw, args.warmup, args.seconds)
    img_per_s = steps * per_step / seconds
    with zoo.updating(args.out) as results:
        entry = dict(results.setdefault("runs", {}).get(name) or {"recipe": name}, images_per_step=per_step)
        entry["speed"] = {"img_per_s": round(img_per_s, 1), "steps": steps, "seconds": round(seconds, 1),
                          "machine": zoo.machine(), "measured": zoo.now()}
        results["runs"][name] = with_minutes(entry)
    print(f"{name}: {img_per_s:.1f} img/s alone ({steps} steps in {seconds:.0f}s)", flush=True)


def score(name: str, args) -> None:
    run_dir = args.runs / name
    ckpt = run_dir / "checkpoints" / "last.safetensors"
    if not ckpt.is_file():
        raise SystemExit(f"{name}: no run in {run_dir}: python bench/recipe_runs.py train {name}")
    entry = zoo_page.load(args.out).get("runs", {}).get(name) or {}
    trained = entry.get("trained") or {}
    raw = ganzoo.load_recipe(run_dir / "recipe.yaml").to_dict()
    per_step = zoo.images_per_step(raw)
    step = ganzoo.load_checkpoint(ckpt).meta["step"]
    if trained.get("steps") != step:
        raise SystemExit(f"{name}: {run_dir} is at step {step}, not the step its training recorded: train it again")
    t0 = time.perf_counter()
    G = ganzoo.load_generator(ckpt)
    section = load_data_section({k: v for k, v in raw["data"].items() if k != "augment"})
    size = len(ganzoo.load_dataset(section)[0])
    measured, ref_info = zoo.score_generator(G, section, list(N_SCORED), min(N_REAL, size))
    strip = Path(args.out.stem) / f"{name}.png"
    zoo.write_strip(G, args.out.parent / strip)
    result = {"recipe": name, "fingerprint": fingerprint(shipped_recipes()[name]), "data_set": data_set_name(raw["data"]),
              "steps": step, "images_per_step": per_step, "kimg": round(step * per_step / 1000, 2),
              "trained": trained, "scores": measured, "strip": strip.as_posix(),
              "reference": zoo.reference_summary(ref_info),
              "generated": "seed 0; the EMA generator where the checkpoint has one",
              "eval_s": round(time.perf_counter() - t0, 1), "machine": zoo.machine(), "measured": zoo.now(),
              "run_dir": str(run_dir)}
    with zoo.updating(args.out) as results:
        results.setdefault("runs", {})[name] = result = with_minutes({**(results["runs"].get(name) or {}), **result})
    top = measured[str(max(N_SCORED))]
    print(f"{name} on {result['data_set']} at {result['kimg']:g} kimg: FID@{max(N_SCORED)} {top['fid']:.2f}, "
          f"KID {top['kid_mean']:.4f}, precision {top.get('precision', float('nan')):.3f}, recall {top.get('recall', float('nan')):.3f}; "
          f"FID@1k {measured[str(min(N_SCORED))]['fid']:.2f} ({result['eval_s']:.0f}s)", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for command in ("train", "score", "speed"):
        p = sub.add_parser(command)
        p.add_argument("recipes", nargs="+", choices=sorted(shipped_recipes()), metavar="RECIPE")
        p.add_argument("--runs", type=Path, default=ROOT / "runs" / "recipes")
        p.add_argument("--out", type=Path, default=RESULTS)
    for command in ("train", "speed"):
        sub.choices[command].add_argument("--data", type=Path, default=zoo.SHARED, help="the shared data folder (anime zips, mnist/, fashion-mnist/)")
    t = sub.choices["train"]
    t.add_argument("--kimg", type=float, help="train to this many thousand images seen instead of the recipe's length")
    t.add_argument("--threads", type=int, help="torch threads (1 to train two at once; the run's own speed is then not its speed alone)")
    s = sub.choices["speed"]
    s.add_argument("--seconds", type=float, default=30, help="seconds of training timed")
    s.add_argument("--warmup", type=int, default=20, help="steps before the timing starts")
    args = ap.parse_args(argv)
    for option, value in (("--kimg", getattr(args, "kimg", None)), ("--seconds", getattr(args, "seconds", None))):
        if value is not None and not (math.isfinite(value) and value > 0):
            ap.error(f"{option}: a positive number")
    if getattr(args, "threads", None) is not None and args.threads < 1:
        ap.error("--threads: at least 1")
    for name in args.recipes:
        {"train": train, "score": score, "speed": speed}[args.command](name, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
