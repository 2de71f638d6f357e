"""The projected critic's tables in the docs, from ``bench/projected.py``'s JSON: the race, the cost, the exploration.

``python bench/projected.py page`` writes the block between the markers of docs/benchmarks.md and docs/zoo.md (the
same block in both) and the strips, labelled and side by side, into docs/zoo/race_DATA_SET.png.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BEGIN, END = "<!-- projected: begin (python bench/projected.py page) -->", "<!-- projected: end -->"
GOAL_FID, GOAL_RECALL = 60.0, 0.10  # 20 minutes on anime-64: FID@5k at most 60 with recall@5k at least 0.10
GOAL_FID_1K_60 = 35.0  # 60 minutes on anime-64: FID@1k at most 35
NAMES = {"anime64": "anime faces, 64 px", "tagged64": "tagged anime faces, 64 px (another source)",
         "anime32": "anime faces, 32 px"}


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _kid(s: dict) -> str:
    return f"{s['kid_mean']:.4f} ± {s['kid_std']:.4f}"


def goal(e: dict) -> str:
    """Whether a race row met its budget's goal (the goals are set on anime-64 at 20 and 60 minutes)."""
    full, small = e["scores"]["5000"], e["scores"]["1000"]
    if e["data_set"] != "anime64" or e["minutes"] not in (20, 60):
        return "-"
    if e["minutes"] == 60:
        return "met" if small["fid"] <= GOAL_FID_1K_60 else "not met (FID@1k)"
    missed = [what for what, bad in (("FID", full["fid"] > GOAL_FID), ("recall", full["recall"] < GOAL_RECALL)) if bad]
    return "met" if not missed else f"not met ({' and '.join(missed)})"


def race_table(race: dict) -> list[str]:
    out = ["| data set | recipe | minutes alone (img/s) | images seen | FID@5k | KID@5k | precision@5k | recall@5k | FID@1k | "
           f"goal: 20 min FID@5k ≤ {GOAL_FID:g} and recall@5k ≥ {GOAL_RECALL:g}; 60 min FID@1k ≤ {GOAL_FID_1K_60:g} |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for e in sorted(race.values(), key=lambda e: (e["data_set"] != "anime64", e["data_set"], e["minutes"], e["row"])):
        full, small = e["scores"]["5000"], e["scores"]["1000"]
        out.append(f"| {NAMES.get(e['data_set'], e['data_set'])} | {e['recipe']} | {e['minutes']:g} ({e['img_per_s_alone']:.1f}) | "
                   f"{e['kimg'] * 1000:,.0f} | {full['fid']:.2f} | {_kid(full)} | {full['precision']:.3f} | {full['recall']:.4f} | "
                   f"{small['fid']:.2f} | {goal(e)} |")
    return out


def cost_table(costs: dict) -> list[str]:
    out = ["| recipe | img/s alone | peak memory | G forward + backward | critic forward + backward | of which: pretrained network, forward only (critic step) | forward + input gradient (generator step) | discriminators forward + backward |",
           "|---|---|---|---|---|---|---|---|"]
    speeds = {(s["row"], s["data_set"]): s for s in costs.get("speeds", [])}
    for key, split in sorted(costs.get("split", {}).items()):
        row, ds = key.split("/")
        ips = speeds.get((row, ds), {}).get("img_per_s")
        ms = lambda k: f"{1000 * split[k]:.0f} ms" if k in split else "-"  # noqa: E731
        critic = ms("critic_forward_backward_s") if "critic_forward_backward_s" in split else \
            f"{1000 * (split['features_forward_backward_s'] + split['heads_forward_backward_s']):.0f} ms"
        out.append(f"| {row} ({ds}) | {ips if ips is not None else '-'} | {split['peak_rss_mib']:,} MiB | "
                   f"{ms('generator_forward_backward_s')} | {critic} | {ms('features_forward_s')} | "
                   f"{ms('features_forward_backward_s')} | {ms('heads_forward_backward_s')} |")
    return out


def explore_table(explore: dict) -> list[str]:
    out = ["| variant (anime faces, 32 px) | points (thousand images: FID@1k, KID@1k) | precision / recall @1k at the last point |",
           "|---|---|---|"]
    for r in explore.get("rows", []):
        pts = " · ".join(f"{p['kimg']:g}: {p['scores']['1000']['fid']:.1f}, {p['scores']['1000']['kid_mean']:.3f}" for p in r["points"])
        last = r["points"][-1]["scores"]["1000"]
        pr = f"{last['precision']:.3f} / {last['recall']:.3f}" if last.get("precision") is not None else "-"
        out.append(f"| {r['row']} | {pts} | {pr} |")
    return out


def baseline_text(zoo: dict) -> str:
    """anime_fast's zoo row on anime32 at the points the exploration has (the same protocol)."""
    row = next((r for r in zoo.get("rows", []) if (r["row"], r["data_set"]) == ("anime_fast", "anime32")), None)
    if row is None:
        return "not measured"
    return " · ".join(f"{p['kimg']:g}: {p['scores']['1000']['fid']:.1f}, {p['scores']['1000']['kid_mean']:.3f}"
                      for p in row["points"] if p["kimg"] <= 16)


def block(race: dict, costs: dict, explore: dict, strips: dict[str, str], zoo: dict | None = None) -> str:
    """The markdown block (without markers). ``strips``: data set -> image path relative to docs/."""
    out = ["Projected GAN's critic (`projected`: four small discriminators on a frozen ImageNet-pretrained EfficientNet-Lite0's "
           "features, fixed random channel and scale mixing, DiffAugment, spectral norm) with FastGAN's generator "
           "(`projected_anime.yaml`), against `anime_fast`. Each row is trained to the images it sees in the given minutes "
           "alone on this 2-core CPU (its img/s measured alone, one row after the other, converting minutes into images; "
           "the rows themselves trained by images seen, which does not depend on what else ran). Scores: FID and KID "
           "against a seeded 5,000 real images of the set, the EMA generator, seed 0; precision/recall k = 3.", "",
           "**Read FID with care here**: FID is computed with an ImageNet network (Inception), and a critic built on "
           "ImageNet features can lower FID by matching ImageNet statistics without images looking better to people "
           "(Kynkäänniemi et al., ICLR 2023, found this for Projected GAN). KID uses the same features. Precision/recall "
           "and the strips below (the same latents for both rows) are the check.", ""]
    if race:
        budgets = " and ".join(f"{m:g}" for m in sorted({e["minutes"] for e in race.values()}))
        out += [f"**The race** ({budgets} minutes):", ""] + race_table(race) + [""]
    for ds, path in strips.items():
        if ds != "explore":
            out += [f"![{NAMES.get(ds, ds)}: 8 images of each row from the same seeds]({path})", ""]
    if costs:
        out += ["**Cost** (anime faces at 64 px, batch 8; step parts timed alone with torch's threads; peak memory of "
                "the process that measured one row):", ""] + cost_table(costs) + [""]
    if explore:
        out += ["**Exploration** (which variant to ship; 16 thousand images each, N = 1,000; `anime_fast`'s zoo row on "
                f"the same set and protocol, thousand images: FID@1k, KID@1k: {baseline_text(zoo or {})}):", ""] \
            + explore_table(explore) + [""]
        if "explore" in strips:
            out += [f"![anime faces at 32 px: anime_fast and projected at 8 and 16 thousand images, the same seeds]({strips['explore']})", ""]
    return "\n".join(out)


def replace_block(path: Path, text: str) -> None:
    page = path.read_text()
    if BEGIN not in page:
        raise SystemExit(f"{path} has no {BEGIN} marker")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + BEGIN + "\n" + text + "\n" + END + tail)
