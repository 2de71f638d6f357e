"""Projected GAN on a CPU: which variant to ship (``explore``), what it costs (``cost``).

    python bench/projected.py explore --threads 1          # variants on anime32 to 16 kimg, FID/KID@1k every 8 kimg
    python bench/projected.py explore --variants proj_fastgan_in64 --kimg 24
    python bench/projected.py cost                         # img/s, peak memory, step time split, against anime_fast

Variants are zoo rows (``bench/zoo.py``'s machinery: a run by images seen, a checkpoint kept every point, each point
scored once with the zoo's protocol: FID and KID at N = 1,000 against a seeded 5,000 real images), written to
``bench/results/projected_explore.json``, runs in ``runs/projected``. Compare them with the zoo's anime_fast row on
the same data set, scored the same way.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402

import ganzoo  # noqa: E402

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
    zoo.FAMILIES.update({"projected": ("projected_anime", {})})
    results = {}
    for row in args.rows:
        raw, _ = zoo.recipe_for(row, args.data_set)
        recipe = ganzoo.load_recipe(raw)
        G, D = ganzoo.models.build_models(recipe)
        ns = argparse.Namespace(out=args.out, warmup=20, seconds=args.seconds)
        zoo.speed_row(row, args.data_set, ns)
        results[row] = _split(D, G, recipe.train.batch_size, recipe.data.resolution)
        results[row]["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(row, results[row], flush=True)


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
    args = ap.parse_args(argv)
    {"explore": explore, "cost": cost}[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
