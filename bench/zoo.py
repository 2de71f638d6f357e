"""The zoo: every shipped family trained on each data set and scored along the way (learning curves).

    python bench/zoo.py train --data-sets anime32 --only anime_fast ragan --threads 1   # rows to their budget
    python bench/zoo.py score --data-sets anime32                                       # every kept point not scored
    python bench/zoo.py speed --data-sets anime32 mnist32                               # img/s, alone on the machine
    python bench/zoo.py page                              # docs/zoo.md + docs/zoo/*.png + recipes/scores.json
    python bench/zoo.py train --data-sets anime64 --only anime_fast --kimg 153.6        # extend a row by resuming it

**A row** is one family on one data set: the family's shipped recipe (``FAMILIES``; ``fastgan`` and ``ragan`` have
no recipe of their own, so their rows are ``anime_fast`` with FastGAN's nets, or with the ``ragan`` loss), its data
section replaced by the data set's, trained for a number of *images seen* (real images the critic saw: steps x batch
x critic steps) into ``RUNS/DATA_SET/ROW``. It keeps a checkpoint every ``POINT_KIMG[data set]`` thousand images
(``train.keep_every``, about a tenth of the budget): those are the curve's points. ``score`` scores each point once (FID and KID at N = 1,000;
at the middle point and the point the row is trained to also FID, KID, precision/recall at N = 5,000) and merges it into ``--out``. Images seen
do not depend on what else runs on the machine, so rows may train two at a time, with one torch thread each, or
beside other work; ``speed`` measures each row's img/s alone on the machine (default threads), which converts images
seen into CPU-minutes on the page. ``train --kimg K`` on a row that exists resumes it to K (exact resume: the points
are those of one run to K).

**Budgets** (``BUDGET_KIMG``): on anime32, mnist32 and fmnist32 every family gets at least the images a 20-minute
anime_fast run sees on that set; on anime64 the long rows (``LONG_ROWS``: the three best of anime32 plus r3gan and
stylegan2) get the images of a 60-minute anime_fast run.

**The 1x32x32 variant of each family is overrides here, not a shipped recipe per family** (``small_overrides``):
horizontal flips off on digits and clothes (not mirror-symmetric), ``sagan_anime``'s attention at 16 px (32 px would
be the output itself). Every architecture builds for any supported resolution and channel count.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import fcntl
import importlib.metadata
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ganzoo  # noqa: E402
import zoo_page  # noqa: E402
from ganzoo.errors import GanzooError  # noqa: E402
from ganzoo.recipe import load_data_section  # noqa: E402
from ganzoo.shipped import fingerprint, shipped_recipes  # noqa: E402
from quality_budget import score_generator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

ANIME_FAST_WIDTHS = {"base_channels": 32, "max_channels": 256}  # anime_fast's nets' widths, kept for its FastGAN row
# row name -> (shipped recipe, sections replaced in it): the family's recipe as it ships, unless it has none
FAMILIES: dict[str, tuple[str, dict]] = {
    "e2_dcgan": ("e2_dcgan", {}),
    "e0_wgan_gp": ("e0_wgan_gp", {}),
    "anime_fast": ("anime_fast", {}),
    "fastgan": ("anime_fast", {"generator": {"name": "fastgan", "latent_dim": 128, **ANIME_FAST_WIDTHS},
                               "critic": {"name": "fastgan", **ANIME_FAST_WIDTHS}}),
    "ragan": ("anime_fast", {"objective": {"name": "ragan"}}),
    "r3gan_anime": ("r3gan_anime", {}),
    "stylegan2_anime": ("stylegan2_anime", {}),
    "sagan_anime": ("sagan_anime", {}),
    "projected": ("projected_anime", {}),
}
assert list(FAMILIES) == list(zoo_page.FAMILIES)

ANIME = str(SHARED / "anime-faces-64.zip")
# data set -> its data section and the real images scored against (a seeded subset of 5,000 on every set)
DATA_SETS: dict[str, dict] = {
    "anime32": {"section": {"name": "images", "path": ANIME, "resolution": 32, "channels": 3}, "n_real": 5000},
    "mnist32": {"section": {"name": "mnist", "root": str(SHARED / "mnist"), "resolution": 32, "channels": 1}, "n_real": 5000},
    "fmnist32": {"section": {"name": "fashion_mnist", "root": str(SHARED / "fashion-mnist"), "resolution": 32, "channels": 1},
                 "n_real": 5000},
    "anime64": {"section": {"name": "images", "path": ANIME, "resolution": 64, "channels": 3}, "n_real": 5000},
    "tagged64": {"section": {"name": "images", "path": str(SHARED / "anime-tagged-96.zip"), "resolution": 64, "channels": 3},
                 "n_real": 5000},
}
assert list(DATA_SETS) == list(zoo_page.DATA_SETS)
# thousands of images seen per row: anime_fast alone on the zoo's 2-core machine sees 64.4 img/s on anime32, 68.7 on
# mnist32, 66.5 on fmnist32 (bench/zoo.py speed), so 20 of its minutes are 77k, 82k, 80k images; a 60-minute run on
# anime64 saw 72k
BUDGET_KIMG = {"anime32": 80.0, "mnist32": 88.0, "fmnist32": 80.0, "anime64": 76.8, "tagged64": 76.8}
POINT_KIMG = {"anime32": 8.0, "mnist32": 8.0, "fmnist32": 8.0, "anime64": 7.68, "tagged64": 7.68}  # a kept point every so many
LONG_ROWS = ("anime_fast", "ragan", "sagan_anime", "r3gan_anime", "stylegan2_anime")  # the rows anime64 trains
N_CURVE, N_FULL = 1000, 5000  # N at every point; N (with precision/recall) at the middle and last point


def point_kimg(ds: str) -> float:
    return POINT_KIMG[ds]


def middle_kimg(ds: str) -> float:
    """The point nearest half the budget (scored at N = 5,000 too)."""
    return max(1, round(BUDGET_KIMG[ds] / 2 / POINT_KIMG[ds])) * POINT_KIMG[ds]


def default_rows(ds: str) -> list[str]:
    return list(LONG_ROWS) if ds in ("anime64", "tagged64") else list(FAMILIES)


def small(ds: str) -> bool:
    """A 32 px set: the families' small variant (``small_overrides``)."""
    return DATA_SETS[ds]["section"]["resolution"] == 32


def available(ds: str) -> str | None:
    """None when the data set's files are here, else why not."""
    sec = DATA_SETS[ds]["section"]
    where = Path(sec["path"]) if "path" in sec else Path(sec["root"]) / ("FashionMNIST" if ds == "fmnist32" else "MNIST") / "raw"
    return None if where.exists() else f"{where} not found"


def small_overrides(raw: dict, ds: str) -> dict:
    """What the 32 px variant of a family changes besides the data: flips off on one-channel sets (digits and clothes
    are not mirror-symmetric); attention at 16 px, not 32."""
    changed = {}
    augment = raw["data"].get("augment")
    if augment and augment.get("hflip") and DATA_SETS[ds]["section"]["channels"] == 1:
        changed["data.augment.hflip"] = False
    for role in ("generator", "critic"):
        if 32 in (raw[role].get("attention") or []):
            changed[f"{role}.attention"] = [16]
    return changed


def recipe_for(row: str, ds: str) -> tuple[dict, dict]:
    """The resolved recipe dict of a row on a data set, and what was overridden besides the data section."""
    name, sections = FAMILIES[row]
    raw = ganzoo.load_recipe(shipped_recipes()[name]).to_dict()
    raw.update(copy.deepcopy(sections))
    overrides = {f"{k}.name": v["name"] for k, v in sections.items()}
    augment = raw["data"].get("augment")
    raw["data"] = dict(DATA_SETS[ds]["section"], **({"augment": augment} if augment else {}))
    if small(ds):
        changed = small_overrides(raw, ds)
        for key, value in changed.items():
            section, _, rest = key.partition(".")
            if section == "data":
                raw["data"]["augment"] = dict(raw["data"]["augment"], hflip=value)
            else:
                raw[section][rest] = value
        overrides.update(changed)
    raw["name"] = f"zoo_{row}_{ds}"
    raw["output"].update(samples=0, tensorboard=False)  # points are scored from the kept checkpoints
    raw["eval"]["every"] = None
    return raw, overrides


def images_per_step(raw: dict) -> int:
    recipe = ganzoo.load_recipe(raw)
    return recipe.train.batch_size * recipe.train.n_critic


REFERENCE_KEYS = ("source", "dataset", "size", "resolution", "channels", "n", "subset_seed")


def reference_summary(ref_info: dict) -> dict:
    """What a result records of the real images it was scored against."""
    return {k: ref_info[k] for k in REFERENCE_KEYS if k in ref_info}


def write_strip(G, path: Path) -> None:
    """8 images of ``G`` from seed 0, side by side, as one PNG at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ganzoo.sampling.write_png(torch.cat(list(ganzoo.sampling.generate(G, 8, seed=0)), dim=2), path)


def time_alone(raw: dict, warmup: int, seconds: float) -> tuple[int, float]:
    """(steps, seconds) of training the recipe ``raw`` for ``seconds`` after ``warmup`` steps (allocator, caches,
    data warmed up), in a temporary folder: the speed of the recipe on this machine with what else runs on it."""
    raw = copy.deepcopy(raw)
    with tempfile.TemporaryDirectory() as tmp:
        raw["train"].update(epochs=None, steps=warmup, time_limit=None, keep_every=None, checkpoint_every=None)
        raw["output"].update(dir=tmp, grid_every=None)
        ganzoo.train(ganzoo.load_recipe(raw), Path(tmp) / "run", progress=False)
        run = ganzoo.resume(Path(tmp) / "run", progress=False, overrides=[f"train.steps={10**7}", f"train.time_limit={seconds / 60}"])
    return run.steps - warmup, run.seconds


def row_recipe(row: str, ds: str, kimg: float, threads: int | None) -> tuple[dict, dict]:
    """The row's recipe trained to ``kimg`` thousand images, keeping a checkpoint at every point."""
    raw, overrides = recipe_for(row, ds)
    per_step = images_per_step(raw)
    every = point_kimg(ds) * 1000 / per_step
    if every != int(every):
        raise SystemExit(f"{row} on {ds}: a point ({point_kimg(ds):g} kimg) is not a whole number of steps of {per_step} images")
    keep = int(every)
    raw["train"].update(epochs=None, steps=max(keep, math.ceil(kimg * 1000 / per_step / keep) * keep), time_limit=None,
                        keep_every=keep, checkpoint_every=max(1, keep // 4), threads=threads)
    raw["output"].update(grid_every=keep)
    return raw, overrides


def row_dir(runs: Path, row: str, ds: str) -> Path:
    return runs / ds / row


def train_row(row: str, ds: str, args) -> None:
    raw, _ = row_recipe(row, ds, args.kimg or BUDGET_KIMG[ds], args.threads)
    run_dir = row_dir(args.runs, row, ds)
    steps = raw["train"]["steps"]
    last = run_dir / "checkpoints" / "last.safetensors"
    t0 = time.perf_counter()
    if last.is_file():
        done = ganzoo.load_checkpoint(last).meta["step"]
        if done >= steps:
            print(f"{row} on {ds}: trained to step {done} already ({run_dir})", flush=True)
            return
        print(f"{row} on {ds}: resuming at step {done} to {steps}", flush=True)
        overrides = [f"train.steps={steps}"] + ([f"train.threads={args.threads}"] if args.threads else [])
        ganzoo.resume(run_dir, progress=False, overrides=overrides)
    else:
        print(f"{row} on {ds}: training to step {steps} ({steps * images_per_step(raw) / 1000:g} kimg) in {run_dir}", flush=True)
        ganzoo.train(ganzoo.load_recipe(raw), run_dir, progress=False)
    print(f"{row} on {ds}: done in {time.perf_counter() - t0:.0f}s", flush=True)


def machine(device: str = "cpu") -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": device, "torch": torch.__version__, "ganzoo": ganzoo.__version__,
            "torch_fidelity": importlib.metadata.version("torch-fidelity")}


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@contextlib.contextmanager
def updating(path: Path):
    """The results at ``path`` to change in place: read under an exclusive lock, written back atomically on exit
    (several score/speed processes may merge into one file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = zoo_page.load(path)
        yield results
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(results, indent=1) + "\n")
        os.replace(tmp, path)


def kept_points(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, checkpoint) of every kept point of a row's run, in order."""
    found = []
    for p in sorted((run_dir / "checkpoints").glob("step_*.safetensors")):
        with contextlib.suppress(ValueError):
            found.append((int(p.stem.split("_", 1)[1]), p))
    return found


def row_entry(results: dict, row: str, ds: str) -> dict | None:
    return next((r for r in results["rows"] if (r["row"], r["data_set"]) == (row, ds)), None)


def score_row(row: str, ds: str, args) -> None:
    """Score every kept point of a row that ``--out`` does not have yet; strip of the last point."""
    run_dir = row_dir(args.runs, row, ds)
    points = kept_points(run_dir)
    if not points:
        print(f"{row} on {ds}: no kept point in {run_dir} yet", flush=True)
        return
    raw, overrides = recipe_for(row, ds)
    per_step = images_per_step(raw)
    ref = load_data_section(DATA_SETS[ds]["section"])  # the data without augmentation
    n_real = args.n_real or DATA_SETS[ds]["n_real"]
    mid = middle_kimg(ds)
    final = ganzoo.load_recipe(run_dir / "recipe.yaml").train.steps  # the length the row is trained to
    for step, ckpt in points:
        kimg = round(step * per_step / 1000, 3)
        last = step == points[-1][0]  # the latest point keeps the row's strip
        entry = row_entry(zoo_page.load(args.out), row, ds) or {}
        have = {p["kimg"]: p for p in entry.get("points", [])}
        full = step == final or math.isclose(kimg, mid)
        if kimg in have and (str(N_FULL) in have[kimg]["scores"] or not full) and (not last or have[kimg].get("strip")):
            continue
        t0 = time.perf_counter()
        G = ganzoo.load_generator(ckpt)
        ns = [N_CURVE, N_FULL] if full else [N_CURVE]
        measured, ref_info = score_generator(G, ref, ns, n_real, radii=full)
        strip = None
        if last:
            strip = Path(args.out.stem) / ds / f"{row}.png"
            write_strip(G, args.out.parent / strip)
        point = {"step": step, "kimg": kimg, "scores": measured, "eval_s": round(time.perf_counter() - t0, 1), "measured": now(),
                 **({"strip": strip.as_posix()} if strip else {})}
        with updating(args.out) as results:
            entry = row_entry(results, row, ds)
            if entry is None:
                entry = {"row": row, "data_set": ds}
                results["rows"].append(entry)
            entry.update({"recipe": FAMILIES[row][0], "recipe_fingerprint": fingerprint(shipped_recipes()[FAMILIES[row][0]]),
                          "overrides": overrides, "images_per_step": per_step, "point_kimg": point_kimg(ds),
                          "ema": ganzoo.trained.has_ema(ganzoo.load_checkpoint(ckpt)),
                          "reference": reference_summary(ref_info),
                          "generated": "seed 0; the EMA generator where the checkpoint has one",
                          "machine": machine(), "run_dir": str(run_dir)})
            kept = [p for p in entry.get("points", []) if p["kimg"] != kimg]
            if strip:  # only the last point keeps a strip
                kept = [{k: v for k, v in p.items() if k != "strip"} for p in kept]
            entry["points"] = sorted(kept + [point], key=lambda p: p["kimg"])
        top = measured[str(max(ns))]
        print(f"{row} on {ds} at {kimg:g} kimg: FID@{max(ns)} {top['fid']:.2f}, KID {1e3 * top['kid_mean']:.2f}e-3"
              + (f", precision {top['precision']:.3f}, recall {top['recall']:.3f}" if full else "")
              + f" ({point['eval_s']:.0f}s)", flush=True)


def speed_row(row: str, ds: str, args) -> None:
    """img/s of the row's recipe alone on the machine: ``--seconds`` of training after ``--warmup`` steps."""
    raw, _ = recipe_for(row, ds)
    per_step = images_per_step(raw)
    steps, seconds = time_alone(raw, args.warmup, args.seconds)
    img_per_s = steps * per_step / seconds if seconds else 0.0
    with updating(args.out) as results:
        speeds = [s for s in results.setdefault("speeds", []) if (s["row"], s["data_set"]) != (row, ds)]
        results["speeds"] = speeds + [{"row": row, "data_set": ds, "img_per_s": round(img_per_s, 2), "steps": steps,
                                       "seconds": round(seconds, 1), "machine": machine(), "measured": now()}]
    print(f"{row} on {ds}: {img_per_s:.1f} img/s ({steps} steps in {seconds:.0f}s)", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name, what in (("train", "train rows to their budget (or --kimg), resuming rows that exist"),
                       ("score", "score every kept point not in --out yet"),
                       ("speed", "img/s of each row alone on the machine")):
        p = sub.add_parser(name, help=what)
        p.add_argument("--data-sets", nargs="+", default=["anime32", "mnist32", "fmnist32", "anime64"], choices=list(DATA_SETS))
        p.add_argument("--only", nargs="+", metavar="ROW", choices=list(FAMILIES), help=f"only these rows ({', '.join(FAMILIES)})")
        p.add_argument("--skip", nargs="+", metavar="ROW", choices=list(FAMILIES), default=[], help="every row but these")
        p.add_argument("--runs", type=Path, default=ROOT / "runs" / "zoo", help="run folders (RUNS/DATA_SET/ROW)")
        p.add_argument("--out", type=Path, default=zoo_page.RESULTS, help="the results JSON points and speeds merge into")
    t = sub.choices["train"]
    t.add_argument("--kimg", type=float, help="thousands of images seen to train to (default: the data set's budget)")
    t.add_argument("--threads", type=int, help="torch threads (1 to train two rows at once)")
    sub.choices["score"].add_argument("--n-real", type=int, help="real images (a seeded subset; default 5,000)")
    s = sub.choices["speed"]
    s.add_argument("--seconds", type=float, default=60, help="seconds of training timed")
    s.add_argument("--warmup", type=int, default=20, help="steps before the timing starts")
    p = sub.add_parser("page", help="docs/zoo.md, its figures and recipes/scores.json from the JSON")
    p.add_argument("--results", type=Path, default=zoo_page.RESULTS)
    p.add_argument("--page", type=Path, default=zoo_page.PAGE)
    p.add_argument("--figures", type=Path, default=zoo_page.FIGURES)
    p.add_argument("--scores", type=Path, default=zoo_page.SCORES, help="the scores file `ganzoo recipes` reads")
    args = ap.parse_args(argv)
    if args.command == "page":
        try:
            zoo_page.build(args.results, args.page, args.figures, args.scores)
        except OSError as exc:
            print(f"could not write the page: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.page}, {args.figures}/ and {args.scores}")
        return 0
    both = set(args.only or []) & set(args.skip)
    if both:
        ap.error(f"--only and --skip both name {', '.join(sorted(both))}: nothing would be done for them")
    if getattr(args, "n_real", None) is not None and args.n_real < 2:
        ap.error("--n-real: at least 2 real images")
    if getattr(args, "kimg", None) is not None and not (math.isfinite(args.kimg) and args.kimg > 0):
        ap.error("--kimg: a positive number of thousands of images")
    if getattr(args, "seconds", None) is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        ap.error("--seconds: a positive number")
    if args.command != "train":
        zoo_page.load(args.out)  # refuse a file that is not the zoo's before any work
    action = {"train": train_row, "score": score_row, "speed": speed_row}[args.command]
    for ds in args.data_sets:
        missing = available(ds)
        if missing:
            print(f"{ds}: skipped ({missing})", flush=True)
            continue
        for row in args.only or default_rows(ds):
            if row not in args.skip:
                try:
                    action(row, ds, args)
                except GanzooError as e:
                    print(f"{row} on {ds}: {e}", file=sys.stderr, flush=True)
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
