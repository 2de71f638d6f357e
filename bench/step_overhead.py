"""What ganzoo's training loop adds to a step: ganzoo.train vs a minimal hand-written PyTorch loop, same process.

    python bench/step_overhead.py --out bench/results/step_overhead.json

For each case (dcgan + bce, upsample_conv + wgan_gp, both 64 px, batch 64) the same recipe's G, critic,
objective and data are trained by ``ganzoo.train`` (progress bar on, rendered to /dev/null, TensorBoard and
metrics on, no samples) and by the bare loop below, interleaved round by round. Each side is timed at S1 and
S2 steps and the per-step cost is the difference / (S2 - S1): set-up, the fixed-z grids (always 5) and the
first-step warm-up cancel out, what remains is the marginal cost of a step. Ratio = ganzoo / bare (goal <= 1.03).

FLOPs per step are counted once with torch.utils.flop_counter on the bare loop (critic steps + G step).
Variants (``--variants``) time ganzoo with train.channels_last or train.compile against the same bare loop.
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from torch.utils.flop_counter import FlopCounterMode

import ganzoo
from ganzoo.data import load_dataset, to_float
from ganzoo.progress import ProgressBar
from ganzoo.models import build_models, build_objective, build_regularizers

ROOT = Path(__file__).resolve().parents[1]
ANIME = ROOT.parent / "shared" / "data" / "anime-faces-64.zip"

# case -> (recipe, S1, S2): S1 >= 4 so both runs draw the same 5 grids; S2 - S1 steps of ~20-60 s in all
CASES = {
    "dcgan+bce": (ROOT / "recipes" / "dcgan_anime.yaml", 4, 34),  # E1's nets at base 64; bce instead of bce_smooth
    "upsample_conv+wgan_gp": (ROOT / "recipes" / "reference" / "e0_wgan_gp.yaml", 4, 9),  # 5 critic steps each
    # tiny nets on 16 px toy faces: a step costs milliseconds, so the difference is the loop's own per-step cost
    "tiny16+bce": (ROOT / "recipes" / "quick_toyfaces.yaml", 20, 420),
}
TINY = ["data.resolution=16", "data.size=2000", "generator.base_channels=8", "critic.base_channels=8", "train.batch_size=16"]


def recipe_for(case: str, data_overrides: list[str], out_dir: str, steps: int, variant: str) -> ganzoo.Recipe:
    raw = ganzoo.load_recipe(CASES[case][0], TINY if case.startswith("tiny") else data_overrides).to_dict()
    if case == "dcgan+bce":
        raw["objective"] = {"name": "bce"}
    raw["train"].update(epochs=None, steps=steps, log_every=10, checkpoint_every=None, threads=None)
    raw["output"].update(dir=out_dir, samples=0, tensorboard=True, grid_every=None)
    raw["train"]["channels_last"] = variant == "channels_last"  # the bare loop is contiguous: compare like with like
    if variant == "compile":
        raw["train"]["compile"] = True
    return ganzoo.load_recipe(raw)


class _GlobalOnly:
    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def bare_loop(recipe: ganzoo.Recipe, images: torch.Tensor, steps: int, count_flops: bool = False) -> float:
    """The loop a user writes by hand: same nets, losses, optimizers, batches; nothing else. Returns seconds."""
    torch.manual_seed(recipe.seed)
    objective = build_objective(recipe)
    regularizers = build_regularizers(recipe, objective=objective)
    G, D = build_models(recipe, regularizers=regularizers)
    objective, regularizers = objective.inner, [r.inner for r in regularizers]  # by hand: no contract checks
    opt_g = recipe.optim.generator.build(G.parameters())
    opt_d = recipe.optim.critic.build(D.parameters())
    n_critic, bs, z_dim = recipe.train.n_critic, recipe.train.batch_size, G.latent_dim
    perm = torch.randperm(len(images))
    i = 0

    def one_step():
        nonlocal i
        for _ in range(n_critic):
            real = to_float(images[perm[i * bs:(i + 1) * bs]])
            i = (i + 1) % (len(images) // bs)
            with torch.no_grad():
                fake = G(torch.randn(bs, z_dim))
            loss = objective.critic_loss(D(real), D(fake))
            for reg in regularizers:  # wgan_gp's gradient penalty
                penalty = reg.penalty(D, real, fake)
                if penalty is not None:
                    loss = loss + penalty
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        D.requires_grad_(False)
        g_loss = objective.generator_loss(D(G(torch.randn(bs, z_dim))), None)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)

    if count_flops:
        counter = FlopCounterMode(display=False)
        # FlopCounterMode's per-module tracker hooks every module, which autograd.grad(create_graph=True) (the
        # gradient penalty) rejects; totals need no per-module attribution, so count everything under "Global"
        counter.mod_tracker = _GlobalOnly()
        with counter:
            one_step()
        return counter.get_total_flops()
    t0 = time.perf_counter()
    for _ in range(steps):
        one_step()
    return time.perf_counter() - t0


def ganzoo_loop(recipe: ganzoo.Recipe, run_dir: Path, progress: bool = True) -> float:
    with open(os.devnull, "w") as null:
        console = Console(file=null, force_terminal=True, width=120)
        bar = ProgressBar(console=console) if progress else False
        return ganzoo.train(recipe, run_dir, progress=bar).seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--variants", nargs="+", default=["plain"], choices=["plain", "quiet", "channels_last", "compile"],
                    help="quiet: no progress bar (ganzoo run -q)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--s1", type=int, default=None, help="short run, generator steps (>= 4: both runs draw the same 5 grids)")
    ap.add_argument("--s2", type=int, default=None, help="long run, generator steps")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "step_overhead.json")
    args = ap.parse_args()
    data = [f"data.path={ANIME}"] if ANIME.is_file() else ["data.name=toyfaces", "data.path=null", "data.size=4096"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            s1, s2 = args.s1 or CASES[case][1], args.s2 or CASES[case][2]
            base = recipe_for(case, data, tmp, s1, "plain")
            images, _ = load_dataset(base.data)
            flops = bare_loop(base, images, 1, count_flops=True)
            n_critic = base.train.n_critic
            for variant in args.variants:
                per_step = {"ganzoo": [], "bare": []}
                try:
                    ganzoo_loop(recipe_for(case, data, tmp, 1, variant), Path(tmp) / f"{case}-{variant}-probe")
                except Exception as exc:  # e.g. torch.compile and the double backward of a gradient penalty
                    rows.append({"case": case, "variant": variant, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"})
                    print(f"{case} {variant}: {rows[-1]['error']}", flush=True)
                    continue
                for r in range(args.rounds):
                    t = {}
                    for s in (s1, s2):
                        recipe = recipe_for(case, data, tmp, s, variant)
                        t[("ganzoo", s)] = ganzoo_loop(recipe, Path(tmp) / f"{case}-{variant}-{r}-{s}", progress=variant != "quiet")
                        t[("bare", s)] = bare_loop(recipe, images, s)
                    for side in per_step:
                        per_step[side].append((t[(side, s2)] - t[(side, s1)]) / (s2 - s1))
                    print(f"{case} {variant} round {r}: ganzoo {per_step['ganzoo'][-1]:.3f} s/step, bare {per_step['bare'][-1]:.3f} s/step", flush=True)
                g, b = statistics.median(per_step["ganzoo"]), statistics.median(per_step["bare"])
                rows.append({"case": case, "variant": variant, "ganzoo_s_per_step": round(g, 5), "bare_s_per_step": round(b, 5),
                             "overhead_ms_per_step": round(1000 * (g - b), 2),
                             "ratio": round(g / b, 4), "gflop_per_step": round(flops / 1e9, 1),
                             "gflops_ganzoo": round(flops / 1e9 / g, 1), "gflops_bare": round(flops / 1e9 / b, 1),
                             "img_per_s_ganzoo": round(base.train.batch_size * n_critic / g, 1), "s1": s1, "s2": s2,
                             "rounds": {k: [round(x, 5) for x in v] for k, v in per_step.items()}})
    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
            "torch": torch.__version__, "ganzoo": ganzoo.__version__, "data": str(ANIME) if ANIME.is_file() else "toyfaces",
            "rounds": args.rounds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print("\n| case | variant | ganzoo s/step | bare s/step | ratio | GFLOP/step | GFLOP/s ganzoo | GFLOP/s bare |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['case']} | {r['variant']} | fails: {r['error'][:80]} | | | | | |")
            continue
        print(f"| {r['case']} | {r['variant']} | {r['ganzoo_s_per_step']:.3f} | {r['bare_s_per_step']:.3f} | {r['ratio']:.3f} | "
              f"{r['gflop_per_step']} | {r['gflops_ganzoo']} | {r['gflops_bare']} |")


if __name__ == "__main__":
    main()
