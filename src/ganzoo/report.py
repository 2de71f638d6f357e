"""``report.html``: one self-contained page per run, viewable offline.

Everything is inlined (images as data URIs, no scripts, no external
resources): the recipe, environment, timings, curves, the fixed-z grid
timeline, final samples, and evaluation metrics when present.
"""

from __future__ import annotations

import base64
import html
import json
import platform
from pathlib import Path

import torch

from .interfaces import Callback
from .sampling import grid_image, png_bytes, read_png


def _img(path_or_bytes, alt: str) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _sample_grid(samples_dir: Path, n: int = 64) -> bytes | None:
    files = sorted(samples_dir.glob("[0-9]*.png"))[:n]
    return png_bytes(grid_image(torch.stack([read_png(f) for f in files]))) if files else None


def _table(rows: dict) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{body}</table>"


def write_report(run_dir) -> Path:
    """Write ``run_dir/report.html`` from what the run directory holds."""
    run = Path(run_dir)
    summary = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    ckpt_json = run / "checkpoints" / "last.json"
    meta = json.loads(ckpt_json.read_text()) if ckpt_json.exists() else {}
    recipe_text = (run / "recipe.yaml").read_text() if (run / "recipe.yaml").exists() else ""
    name = summary.get("name") or run.name
    parts = [f"<h1>ganzoo run: {html.escape(name)}</h1>", f"<p class=dim>{html.escape(str(run.resolve()))}</p>"]

    timing = {k: summary[k] for k in ("steps", "resumed_from", "seconds", "images_per_second", "device") if k in summary}
    if summary.get("samples"):
        s = summary["samples"]
        timing["samples"] = f"{s['n']} images; min pairwise RMS distance {s['min_pairwise_rms']}; near-identical pairs {s['near_identical_pairs']}"
    parts += ["<h2>Run</h2>", _table(timing)]
    env = dict(meta.get("versions", {}), platform=platform.platform(), machine=platform.machine())
    parts += ["<h2>Environment</h2>", _table(env)]
    if summary.get("final"):
        parts += ["<h2>Last logged step</h2>", _table({k: (round(v, 5) if isinstance(v, float) else v) for k, v in summary["final"].items()})]
    metrics = run / "metrics.json"
    if metrics.exists():
        parts += ["<h2>Evaluation</h2>", f"<pre>{html.escape(metrics.read_text())}</pre>"]
    if (run / "curves.png").exists():
        parts += ["<h2>Curves</h2>", _img(run / "curves.png", "loss curves")]
    grids = sorted((run / "grids").glob("step_*.png"))
    if grids:
        cells = "".join(f"<figure>{_img(g, g.stem)}<figcaption>step {int(g.stem.split('_')[1])}</figcaption></figure>" for g in grids)
        parts += ["<h2>Fixed-z grid timeline</h2>", f"<div class=timeline>{cells}</div>"]
    final = _sample_grid(run / "samples")
    if final:
        parts += ["<h2>Final samples (first 64)</h2>", _img(final, "final samples")]
    parts += ["<h2>Recipe (resolved)</h2>", f"<pre>{html.escape(recipe_text)}</pre>"]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ganzoo: {html.escape(name)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 10px; border-bottom: 1px solid #eee; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }} .dim {{ color: #777; }}
.timeline {{ display: flex; flex-wrap: wrap; gap: 10px; }} figure {{ margin: 0; }}
.timeline img {{ width: 250px; image-rendering: pixelated; }} figcaption {{ text-align: center; color: #555; }}
</style></head><body>
{"".join(parts)}
</body></html>
"""
    out = run / "report.html"
    out.write_text(page)
    return out


# -- comparing runs ----------------------------------------------------------------
def require_run_dir(run_dir) -> Path:
    run = Path(run_dir)
    if not (run / "recipe.yaml").is_file():
        from .errors import GanzooError

        raise GanzooError(f"{run} is not a ganzoo run directory (no recipe.yaml)")
    return run


def run_summary(run_dir) -> dict:
    """One row describing a run: recipe, components, length, speed, final losses, metrics."""
    import yaml

    run = require_run_dir(run_dir)
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    summary = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    final = summary.get("final", {})
    row = {
        "run": run.name, "recipe": recipe["name"], "objective": recipe["objective"]["name"],
        "generator": recipe["generator"]["name"], "critic": recipe["critic"]["name"],
        "data": f"{recipe['data']['name']} {recipe['data']['resolution']}px",
        "steps": summary.get("steps"), "seconds": summary.get("seconds"), "img/s": summary.get("images_per_second"),
        "d_loss": final.get("d_loss"), "g_loss": final.get("g_loss"), "gap": final.get("gap"),
    }
    if (run / "metrics.json").exists():
        metrics = json.loads((run / "metrics.json").read_text())
        for key in ("fid", "kid_mean", "precision", "recall"):
            if key in metrics:
                row[key] = metrics[key]
    return row


def final_grid(run_dir) -> Path | None:
    run = Path(run_dir)
    grids = sorted((run / "grids").glob("step_*.png"))
    if grids:
        return grids[-1]
    return run / "samples" / "grid.png" if (run / "samples" / "grid.png").exists() else None


def write_comparison(run_dirs, path, height: int = 360) -> Path:
    """The runs' final fixed-z grids side by side, each labelled, scaled to one height."""
    from PIL import Image, ImageDraw

    panels = []
    for run in run_dirs:
        grid = final_grid(run)
        if grid is None:
            continue
        img = Image.open(grid).convert("RGB")
        img = img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.LANCZOS)
        panel = Image.new("RGB", (img.width, height + 24), "white")
        panel.paste(img, (0, 24))
        ImageDraw.Draw(panel).text((4, 5), Path(run).name, fill="black")
        panels.append(panel)
    if not panels:
        from .errors import GanzooError

        raise GanzooError("none of these runs has a grid to compare (grids/ or samples/grid.png)")
    out = Image.new("RGB", (sum(p.width for p in panels) + 10 * (len(panels) - 1), height + 24), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 10
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)
    return path


class RunSummary(Callback):
    """At the end of a run: ``run.json`` (steps, time, speed, last metrics, samples) and ``report.html``."""

    name = "run_summary"

    def on_end(self, run) -> None:
        import logging

        ips = (run.step - run.start) * run.images_per_step / max(run.seconds, 1e-9)
        distinct, samples = run.extra.get("distinct"), run.recipe.output.samples
        summary = {"name": run.recipe.name, "steps": run.step, "planned_steps": run.total, "resumed_from": run.start or None,
                   "seconds": round(run.seconds, 2), "images_per_second": round(ips, 1), "device": str(run.device),
                   "world_size": run.world.size, "final": run.extra.get("metrics", {}),
                   "samples": {"n": samples, "min_pairwise_rms": distinct.min_distance if distinct else None,
                               "near_identical_pairs": len(distinct.close_pairs) if distinct else None}}
        if "ranks" in run.extra:
            summary["ranks"] = run.extra["ranks"]
        (run.run_dir / "run.json").write_text(json.dumps(summary, indent=2))
        write_report(run.run_dir)
        logging.getLogger("ganzoo").info(
            f"done: steps {run.start}->{run.step} in {run.seconds:.1f}s ({ips:.1f} img/s); checkpoint {run.checkpoint_path}; "
            f"{samples} samples in {run.run_dir / 'samples'}")
