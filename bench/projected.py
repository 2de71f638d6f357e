"""Projected GAN on a CPU: which variant to ship (``explore``), what it costs (``cost``).

    python bench/projected.py explore --threads 1          # variants on anime32 to 16 kimg, FID/KID@1k every 8 kimg
    python bench/projected.py explore --variants proj_fastgan_in64 --kimg 24
    python bench/projected.py cost --rows anime_fast; python bench/projected.py cost --rows projected
                                                           # img/s, peak memory (one row per process), step split

Variants are zoo rows (``bench/zoo.py``'s machinery: a run by images seen, a checkpoint kept every point, each point
scored once with the zoo's protocol: FID and KID at N = 1,000 against a seeded 5,000 real images; precision and
recall too at the last point), written to
``bench/results/projected_explore.json``, runs in ``runs/projected``. Compare them with the zoo's anime_fast row on
the same data set, scored the same way.
"""

from __future__ import annotations

import argparse
import math
import resource
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402
import zoo_page  # noqa: E402

import ganzoo  # noqa: E402
from ganzoo.shipped import fingerprint, shipped_recipes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FASTGAN_G = {"name": "fastgan", "latent_dim": 128, "base_channels": 32, "max_channels": 256}
RESNET_G = {"name": "resnet", "latent_dim": 128, "base_channels": 32, "max_channels": 256}
# variant -> (shipped recipe, sections replaced in it)
VARIANTS: dict[str, tuple[str, dict]] = {
    "proj_fastgan": ("projected_anime", {}),
    "proj_fastgan_in64": ("projected_anime", {"critic": {"name": "projected", "input_size": 64}}),
    "proj_resnet": ("projected_anime", {"generator": RESNET_G}),
}


def _as_rows() -> None:
    """The variants become rows of the zoo's machinery (not of the zoo's page)."""
    for name, (recipe, sections) in VARIANTS.items():
        zoo.FAMILIES[name] = (recipe, sections)


def explore(args) -> None:
    _as_rows()
    zoo.N_FULL = zoo.N_CURVE  # every point at N = 1,000 (with precision/recall at the last): a ranking, not the race
    ns = argparse.Namespace(runs=args.runs, out=args.out, kimg=args.kimg, threads=args.threads, n_real=None)
    for name in args.variants:
        zoo.train_row(name, args.data_set, ns)
        zoo.score_row(name, args.data_set, ns)


def _split(critic, G, batch: int, res: int, steps: int = 5) -> dict:
    """Seconds per step of each part, measured by running it alone: the pretrained network forward (no graph, as in
    a critic step) and forward + input-gradient backward (as in a generator step), the heads, G forward + backward."""
    z = torch.randn(batch, G.latent_dim)
    x = torch.randn(batch, 3, res, res).clamp(-1, 1)

    def best(f):
        ts = []
        for _ in range(steps):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return min(ts[1:])

    out = {}
    if hasattr(critic, "pretrained_features"):
        with torch.no_grad():
            out["features_forward_s"] = best(lambda: critic.pretrained_features(x))
        out["features_forward_backward_s"] = best(lambda: sum(f.sum() for f in critic.pretrained_features(x.clone().requires_grad_())).backward())
        with torch.no_grad():
            mixed = critic.mixed_features(x)
        mixed = [m.requires_grad_() for m in mixed]
        out["heads_forward_backward_s"] = best(lambda: sum(h(m).sum() for h, m in zip(critic.heads, mixed)).backward())
    else:
        out["critic_forward_backward_s"] = best(lambda: critic(x.clone().requires_grad_()).sum().backward())
    out["generator_forward_backward_s"] = best(lambda: G(z).sum().backward())
    return out


def cost(args) -> None:
    """img/s of each recipe alone (the zoo's speed protocol), its peak memory, and its step split."""
    results = {}
    for row in args.rows:
        raw, _ = zoo.recipe_for(row, args.data_set)
        recipe = ganzoo.load_recipe(raw)
        G, D = ganzoo.models.build_models(recipe)
        ns = argparse.Namespace(out=args.out, warmup=20, seconds=args.seconds)
        zoo.speed_row(row, args.data_set, ns)
        results[row] = _split(D, G, recipe.train.batch_size, recipe.data.resolution)
        results[row]["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # one row per process
        with zoo.updating(args.out) as merged:
            merged.setdefault("split", {})[f"{row}/{args.data_set}"] = {**results[row], "batch": recipe.train.batch_size,
                                                                      "measured": zoo.now(), "machine": zoo.machine()}
        print(row, results[row], flush=True)


def race_dir(args, row: str) -> Path:
    return args.runs / args.data_set / row


def race_steps(args, row: str, per_step: int) -> tuple[int, float]:
    """(steps, img/s) of ``--minutes`` of ``row`` alone on this machine: its speed from ``cost`` on ``--speed-set``."""
    speeds = zoo_page.load(args.costs).get("speeds", [])
    found = next((s for s in speeds if (s["row"], s["data_set"]) == (row, args.speed_set)), None)
    if found is None:
        raise SystemExit(f"no speed of {row} on {args.speed_set} in {args.costs}: run python bench/projected.py cost --rows {row}")
    return math.ceil(found["img_per_s"] * args.minutes * 60 / per_step), found["img_per_s"]


def train_race_row(args, row: str) -> None:
    """Train ``row`` to its ``--minutes`` of images. A zoo row of the same recipe and data set that is further on
    gives its kept checkpoint before the target as the start (exact resume: the same weights as a run from 0)."""
    raw, _ = zoo.recipe_for(row, args.data_set)
    steps, _ = race_steps(args, row, zoo.images_per_step(raw))
    run_dir = race_dir(args, row)
    last = run_dir / "checkpoints" / "last.safetensors"
    zoo_run = zoo.row_dir(ROOT / "runs" / "zoo", row, args.data_set)
    if not last.is_file() and any(k <= steps for k, _ in zoo.kept_points(zoo_run)):
        start = max(k for k, _ in zoo.kept_points(zoo_run) if k <= steps)
        shutil.copytree(zoo_run, run_dir)
        print(f"{row} on {args.data_set}: from the zoo row's step {start} to {steps}", flush=True)
        ganzoo.resume(run_dir / "checkpoints" / f"step_{start:07d}.safetensors", progress=False,
                      overrides=[f"train.steps={steps}"] + ([f"train.threads={args.threads}"] if args.threads else []))
    elif last.is_file():
        done = ganzoo.load_checkpoint(last).meta["step"]
        if done < steps:
            ganzoo.resume(run_dir, progress=False, overrides=[f"train.steps={steps}"] + ([f"train.threads={args.threads}"] if args.threads else []))
    else:
        raw["train"].update(epochs=None, steps=steps, time_limit=None, keep_every=None, checkpoint_every=250, threads=args.threads)
        print(f"{row} on {args.data_set}: training to step {steps} in {run_dir}", flush=True)
        ganzoo.train(ganzoo.load_recipe(raw), run_dir, progress=False)


def score_race_row(args, row: str) -> None:
    """FID/KID at N = 1,000 and 5,000, precision/recall at 5,000, and a strip of seeds 0-7, of the row's checkpoint
    at its ``--minutes``: merged into ``--out``."""
    raw, _ = zoo.recipe_for(row, args.data_set)
    per_step = zoo.images_per_step(raw)
    steps, img_per_s = race_steps(args, row, per_step)
    run_dir = race_dir(args, row)
    ckpt = run_dir / "checkpoints" / "last.safetensors"
    if ganzoo.load_checkpoint(ckpt).meta["step"] != steps:
        step_file = run_dir / "checkpoints" / f"step_{steps:07d}.safetensors"
        if not step_file.is_file():
            raise SystemExit(f"{run_dir} is not at step {steps}: train it first")
        ckpt = step_file
    key = f"{args.data_set}/{row}/{args.minutes:g}min"
    if key in zoo_page.load(args.out).get("race", {}) and not args.again:
        print(f"{key}: scored already", flush=True)
        return
    t0 = time.perf_counter()
    G = ganzoo.load_generator(ckpt)
    ref = zoo.load_data_section(zoo.DATA_SETS[args.data_set]["section"])
    measured, ref_info = zoo.score_generator(G, ref, [zoo.N_CURVE, zoo.N_FULL], zoo.DATA_SETS[args.data_set]["n_real"], radii=True)
    strip = Path(args.out.stem) / args.data_set / f"{row}_{args.minutes:g}min.png"
    zoo.write_strip(G, args.out.parent / strip)
    entry = {"row": row, "data_set": args.data_set, "minutes": args.minutes, "img_per_s_alone": img_per_s,
             "speed_measured_on": args.speed_set, "steps": steps, "kimg": round(steps * per_step / 1000, 2),
             "recipe": zoo.FAMILIES[row][0], "fingerprint": fingerprint(shipped_recipes()[zoo.FAMILIES[row][0]]),
             "overrides": zoo.FAMILIES[row][1], "scores": measured, "strip": strip.as_posix(),
             "reference": {k: ref_info[k] for k in ("source", "size", "resolution", "n", "subset_seed") if k in ref_info},
             "generated": "seed 0; the EMA generator", "eval_s": round(time.perf_counter() - t0, 1),
             "machine": zoo.machine(), "measured": zoo.now(), "run_dir": str(run_dir)}
    with zoo.updating(args.out) as results:
        results.setdefault("race", {})[key] = entry
    top = measured[str(zoo.N_FULL)]
    print(f"{key} at {entry['kimg']:g} kimg: FID@5k {top['fid']:.2f}, KID {top['kid_mean']:.4f}, precision {top['precision']:.3f}, "
          f"recall {top['recall']:.3f}; FID@1k {measured[str(zoo.N_CURVE)]['fid']:.2f}", flush=True)


def race(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)  # scoring too: two threads on a busy 2-core machine are several times slower
    for row in args.rows:
        if not args.score_only:
            train_race_row(args, row)
        if not args.train_only:
            score_race_row(args, row)


def page(args) -> None:
    """The race, cost and exploration tables into docs/benchmarks.md and docs/zoo.md; the strips side by side."""
    import projected_page as pp

    race = pp.load(args.race).get("race", {})
    strips = {}
    for ds in sorted({e["data_set"] for e in race.values()}):
        entries = sorted((e for e in race.values() if e["data_set"] == ds), key=lambda e: (e["minutes"], e["row"]))
        tiles = []
        for e in entries:
            strip = ganzoo.sampling.read_png(args.race.parent / e["strip"])
            tiles += list(strip.unflatten(2, (8, strip.shape[1])).permute(2, 0, 1, 3).unbind(0))
        grid = ganzoo.sampling.grid_image(torch.stack(tiles), nrow=8, row_labels=[f"{e['recipe']}, {e['minutes']:g} min" for e in entries])
        out = ROOT / "docs" / "zoo" / f"race_{ds}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        ganzoo.sampling.write_png(grid, out)
        strips[ds] = f"zoo/race_{ds}.png"
    pairs = [(ROOT / "runs" / "zoo" / "anime32" / "anime_fast", "anime_fast"), (ROOT / "runs" / "projected" / "anime32" / "proj_fastgan", "projected")]
    checkpoints = [(d / "checkpoints" / f"step_{step:07d}.safetensors", f"{name}, {step * 8 // 1000}k")
                   for step in (1000, 2000) for d, name in pairs]
    if all(c.is_file() for c, _ in checkpoints):  # the same seeds at equal images seen: what the eye says beside FID
        images = torch.cat([ganzoo.sampling.generate(ganzoo.load_generator(c), 8, seed=0) for c, _ in checkpoints])
        ganzoo.sampling.write_png(ganzoo.sampling.grid_image(images, nrow=8, row_labels=[label for _, label in checkpoints]),
                                  ROOT / "docs" / "zoo" / "projected_explore_anime32.png")
    if (ROOT / "docs" / "zoo" / "projected_explore_anime32.png").is_file():
        strips["explore"] = "zoo/projected_explore_anime32.png"
    text = pp.block(race, pp.load(args.costs), pp.load(args.explore), strips, zoo_page.load(zoo_page.RESULTS))
    for doc in (ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "zoo.md"):
        pp.replace_block(doc, text)
    print("wrote the projected block of docs/benchmarks.md and docs/zoo.md", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    e = sub.add_parser("explore", help="train and score variants")
    e.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    e.add_argument("--data-set", default="anime32", choices=list(zoo.DATA_SETS))
    e.add_argument("--kimg", type=float, default=16.0, help="thousands of images seen per variant")
    e.add_argument("--threads", type=int)
    e.add_argument("--runs", type=Path, default=ROOT / "runs" / "projected")
    e.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "projected_explore.json")
    c = sub.add_parser("cost", help="img/s, peak memory and step split, alone on the machine")
    c.add_argument("--rows", nargs="+", default=["anime_fast", "projected"])
    c.add_argument("--data-set", default="anime64", choices=list(zoo.DATA_SETS))
    c.add_argument("--seconds", type=float, default=60.0)
    c.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "projected_cost.json")
    r = sub.add_parser("race", help="rows trained to the images of --minutes alone on the machine, scored at N = 5,000")
    r.add_argument("--rows", nargs="+", default=["anime_fast", "projected"])
    r.add_argument("--data-set", default="anime64", choices=list(zoo.DATA_SETS))
    r.add_argument("--speed-set", default="anime64", help="the data set whose measured speeds give the images (same nets, same size)")
    r.add_argument("--minutes", type=float, default=20.0)
    r.add_argument("--threads", type=int)
    r.add_argument("--train-only", action="store_true")
    r.add_argument("--score-only", action="store_true")
    r.add_argument("--again", action="store_true", help="score again a row that has a score")
    r.add_argument("--costs", type=Path, default=ROOT / "bench" / "results" / "projected_cost.json")
    r.add_argument("--runs", type=Path, default=ROOT / "runs" / "projected" / "race")
    r.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "projected_race.json")
    pg = sub.add_parser("page", help="the tables into docs/benchmarks.md and docs/zoo.md")
    pg.add_argument("--race", type=Path, default=ROOT / "bench" / "results" / "projected_race.json")
    pg.add_argument("--costs", type=Path, default=ROOT / "bench" / "results" / "projected_cost.json")
    pg.add_argument("--explore", type=Path, default=ROOT / "bench" / "results" / "projected_explore.json")
    args = ap.parse_args(argv)
    {"explore": explore, "cost": cost, "race": race, "page": page}[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
