"""The zoo table: every shipped family trained for the same wall-clock budget on each data set, then scored.

    python bench/zoo.py run --minutes 20                                # every family on anime64, tagged64, mnist32
    python bench/zoo.py run --minutes 20 --data-sets mnist32 --only anime_fast ragan
    python bench/zoo.py run --minutes 0.2 --n 64 --n-real 64 --data-sets mnist32 --only e2_dcgan \\
        --out /tmp/zoo/zoo.json --runs /tmp/zoo/runs                 # a smoke test: seconds of training, tiny N
    python bench/zoo.py page                                          # docs/zoo.md + docs/zoo/*.png + recipes/scores.json

**Rows.** One row per family and data set: the family's shipped recipe (``FAMILIES``; ``fastgan`` and ``ragan``
have no recipe of their own, so their rows are ``anime_fast`` with FastGAN's nets, or with the ``ragan`` loss), its
data section replaced by the data set's, trained with ``train.time_limit`` = ``--minutes`` (bench/quality_budget.py's
``train_budget``: the budget, not the recipe's length, ends the run), then scored by ``score_generator`` (the
protocol of docs/evaluation.md: FID and KID at each ``--n``, precision/recall k = 3 against a real subset of N).
All rows of a data set run in one process, data set after data set, so a table is one machine's; each row records
its machine and versions anyway, and rows are merged into ``--out`` as they finish (a row already there with the
same budget is skipped unless ``--again``), so a table can be built across sessions with ``--only``/``--skip``.

**The MNIST-size variant of each family is overrides here, not a shipped recipe per family.** Every architecture
builds for any supported resolution and channel count, so the family's recipe trains at 1x32x32 as it is, with the
data section swapped; the two things that do not carry over are made by ``small_overrides`` (horizontal flips
off: digits are not mirror-symmetric; ``sagan_anime``'s attention at 16 px, since 32 px would be the output
itself). Eight more recipe files would only repeat the anime ones with another data section, and would drift from
them; the overrides keep one recipe per family, and the row records what was overridden.

**Data sets** (``DATA_SETS``; files under ../shared/data): ``anime64`` (anime-faces-64.zip, 22,969 faces),
``tagged64`` (anime-tagged-96.zip at 64 px, unconditional: its tags.csv is not read), ``mnist32`` (MNIST's 60,000
training digits at 32 px, one channel) and ``fmnist32`` (Fashion-MNIST, the same way; only where its four files
are given, under ../shared/data/fashion-mnist/FashionMNIST/raw/ or ../shared/data/mnist/FashionMNIST/raw/).
``--n-real`` defaults to every real image on the anime sets and a seeded 10,000 on the 60,000-image sets.

**Each row** keeps: the recipe, its fingerprint (``ganzoo.shipped.fingerprint``: ``ganzoo recipes`` marks a score
of an earlier version of the recipe) and overrides, steps, images seen (real images the critic saw), img/s, train and
scoring seconds, for each N: FID, KID (mean, std, subsets), precision and recall (k, N each side), N generated and
N real; the reference set's description; the machine (platform, CPU, cores, torch threads, device) and the torch,
ganzoo and torch-fidelity versions; and ``strip``: 8 images from fixed latents (seed 0), a PNG next to the JSON
(``OUT_STEM/DATA_SET/ROW-Mmin.png``) that docs/zoo.md's figures are drawn from after the runs are gone.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ganzoo  # noqa: E402
import zoo_page  # noqa: E402
from ganzoo.recipe import load_data_section  # noqa: E402
from ganzoo.shipped import fingerprint, shipped_recipes  # noqa: E402
from quality_budget import score_generator, strip_at, train_budget  # noqa: E402

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
}
assert list(FAMILIES) == list(zoo_page.FAMILIES)

# data set -> its data section and the default --n-real (None: every real image)
DATA_SETS: dict[str, dict] = {
    "anime64": {"section": {"name": "images", "path": str(SHARED / "anime-faces-64.zip"), "resolution": 64, "channels": 3},
                "n_real": None},
    "tagged64": {"section": {"name": "images", "path": str(SHARED / "anime-tagged-96.zip"), "resolution": 64, "channels": 3},
                 "n_real": None},
    "mnist32": {"section": {"name": "mnist", "root": str(SHARED / "mnist"), "resolution": 32, "channels": 1}, "n_real": 10000},
    "fmnist32": {"section": {"name": "fashion_mnist", "root": str(SHARED / "fashion-mnist"), "resolution": 32, "channels": 1},
                 "n_real": 10000},
}
assert list(DATA_SETS) == list(zoo_page.DATA_SETS)
DEFAULT_DATA_SETS = ("anime64", "tagged64", "mnist32", "fmnist32")  # fmnist32 where its files are given


def small(ds: str) -> bool:
    """A one-channel 32 px set: the families' MNIST-size variant (``small_overrides``)."""
    return DATA_SETS[ds]["section"]["resolution"] == 32


def _fashion_root() -> str | None:
    for root in (SHARED / "fashion-mnist", SHARED / "fashion_mnist", SHARED / "mnist"):
        if (root / "FashionMNIST" / "raw").is_dir():
            return str(root)
    return None


def available(ds: str) -> str | None:
    """None when the data set's files are here, else why not."""
    sec = DATA_SETS[ds]["section"]
    if ds == "fmnist32":
        root = _fashion_root()
        if root is None:
            return f"Fashion-MNIST's files are not under {SHARED} (fashion-mnist/FashionMNIST/raw/)"
        sec["root"] = root
        return None
    where = Path(sec.get("path") or Path(sec["root"]) / "MNIST" / "raw")
    return None if where.exists() else f"{where} not found"


def small_overrides(raw: dict) -> dict:
    """What the 1x32x32 variant of a family changes besides the data: flips off; attention at 16 px, not 32."""
    changed = {}
    augment = raw["data"].get("augment")
    if augment and augment.get("hflip"):
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
        changed = small_overrides(raw)
        for key, value in changed.items():
            section, _, rest = key.partition(".")
            if section == "data":
                raw["data"]["augment"] = dict(raw["data"]["augment"], hflip=value)
            else:
                raw[section][rest] = value
        overrides.update(changed)
    raw["name"] = f"zoo_{row}_{ds}"
    raw["output"].update(samples=0)  # the row's images are scored from the checkpoint; no sample folder needed
    return raw, overrides


def machine(device: str = "cpu") -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device == "cuda" and torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name()})"
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": device, "torch": torch.__version__, "ganzoo": ganzoo.__version__,
            "torch_fidelity": importlib.metadata.version("torch-fidelity")}


def write_json(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)


def measure(row: str, ds: str, args) -> dict:
    """Train one row for the budget, score it and keep its strip: the row's JSON entry."""
    raw, overrides = recipe_for(row, ds)
    run, recipe = train_budget(raw, args.minutes, args.runs / ds, args.again, run_name=f"{row}-{args.minutes:g}min")
    print(f"{row} on {ds}: {run.steps} steps in {run.seconds:.0f}s ({run.images_per_second:.1f} img/s)", flush=True)
    t0 = time.perf_counter()
    ckpt = ganzoo.load_checkpoint(run.checkpoint)
    G = ganzoo.load_generator(run.checkpoint)
    ref = load_data_section(DATA_SETS[ds]["section"])  # the data without augmentation
    n_real = args.n_real if args.n_real is not None else DATA_SETS[ds]["n_real"]
    measured, ref_info = score_generator(G, ref, args.n, n_real, radii=True)
    strip = Path(args.out.stem) / ds / f"{row}-{args.minutes:g}min.png"
    if (args.out.parent / strip).is_file():
        (args.out.parent / strip).unlink()  # a re-measured row gets its own images
    strip_at(args.out.parent / strip, run.run_dir)
    cfg = recipe.train
    return {"row": row, "recipe": FAMILIES[row][0], "recipe_fingerprint": fingerprint(shipped_recipes()[FAMILIES[row][0]]),
            "overrides": overrides, "data_set": ds, "minutes": args.minutes,
            "steps": run.steps, "batch_size": cfg.batch_size, "n_critic": cfg.n_critic,
            "images_seen": run.steps * cfg.batch_size * cfg.n_critic, "img_per_s": round(run.images_per_second, 1),
            "train_s": round(run.seconds, 1), "eval_s": round(time.perf_counter() - t0, 1), "ema": ganzoo.trained.has_ema(ckpt),
            "scores": measured, "reference": {k: ref_info[k] for k in ("source", "dataset", "size", "resolution", "channels", "n",
                                                                    "subset_seed") if k in ref_info},
            "generated": "seed 0; the EMA generator where the checkpoint has one", "strip": strip.as_posix(),
            "machine": machine(recipe.train.device if recipe.train.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")),
            "measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "run_dir": str(run.run_dir)}


def run(args) -> int:
    rows = [r for r in FAMILIES if (not args.only or r in args.only) and r not in (args.skip or [])]
    unknown = [r for r in (args.only or []) + (args.skip or []) if r not in FAMILIES]
    if unknown:
        print(f"unknown row(s) {', '.join(unknown)}: the rows are {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    results = zoo_page.load(args.out)
    for ds in args.data_sets:
        missing = available(ds)
        if missing:
            print(f"{ds}: skipped ({missing})", flush=True)
            continue
        for row in rows:
            key = (row, ds, args.minutes)
            if any((r["row"], r["data_set"], r["minutes"]) == key for r in results["rows"]) and not args.again:
                print(f"{row} on {ds}: already in {args.out} at {args.minutes:g} min, skipped (--again to re-run)", flush=True)
                continue
            entry = measure(row, ds, args)
            results = zoo_page.load(args.out)  # another process may have added rows meanwhile
            results["rows"] = [r for r in results["rows"] if (r["row"], r["data_set"], r["minutes"]) != key] + [entry]
            write_json(args.out, results)
            top = entry["scores"][str(max(args.n))]
            print(f"{row} on {ds}: FID@{max(args.n)} {top['fid']:.2f}, KID {1e3 * top['kid_mean']:.2f}e-3, precision "
                  f"{top['precision']:.4f}, recall {top['recall']:.4f} (N real {top['n_real']}; eval {entry['eval_s']:.0f}s)",
                  flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and score rows, merged into --out as they finish")
    r.add_argument("--minutes", type=float, default=20, help="training budget per row (train.time_limit)")
    r.add_argument("--data-sets", nargs="+", default=list(DEFAULT_DATA_SETS), choices=list(DATA_SETS))
    r.add_argument("--only", nargs="+", metavar="ROW", help=f"only these rows ({', '.join(FAMILIES)})")
    r.add_argument("--skip", nargs="+", metavar="ROW", help="every row but these")
    r.add_argument("--n", type=int, nargs="+", default=[1000, 5000], help="generated images to score (each N)")
    r.add_argument("--n-real", type=int, default=None,
                   help="real images to score against (a seeded subset); default every image of the anime sets, 10,000 of MNIST's")
    r.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "zoo.json")
    r.add_argument("--runs", type=Path, default=ROOT / "runs" / "zoo", help="run directories (one folder per data set)")
    r.add_argument("--again", action="store_true", help="re-train and re-score rows already in --out")
    p = sub.add_parser("page", help="docs/zoo.md, its figures and recipes/scores.json from the JSON")
    p.add_argument("--results", type=Path, default=zoo_page.RESULTS)
    p.add_argument("--page", type=Path, default=zoo_page.PAGE)
    p.add_argument("--figures", type=Path, default=zoo_page.FIGURES)
    p.add_argument("--scores", type=Path, default=zoo_page.SCORES, help="the scores file `ganzoo recipes` reads")
    args = ap.parse_args(argv)
    if args.command == "page":
        zoo_page.build(args.results, args.page, args.figures, args.scores)
        print(f"wrote {args.page}, {args.figures}/ and {args.scores}")
        return 0
    if min(args.n) < 2:
        ap.error("--n: at least 2 images to score")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
