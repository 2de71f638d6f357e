"""``report.html``: one self-contained page per run, to read offline and to share.

Everything is inlined (images as data URIs, no scripts, no external resources). From the top: a summary
(recipe, data, networks, objective, steps, time over every segment of a resumed run, training speed, the
best and the last scores with their N, the last losses), metrics over time (loss curves and the evaluations
made during training), the evaluation by ``ganzoo eval``, the copy check by ``ganzoo nearest``, the fixed-z
grid timeline, final samples, the hyper-parameters (the resolved recipe as a table) and the environment.

The page names no absolute local path: a path shows as its last part (``anime-faces-64.zip``), the run
folder by its name. Numbers are rounded for reading: 4 significant digits, FID to 2 decimals, KID to 4.
"""

from __future__ import annotations

import base64
import html
import io
import math
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .fileio import atomic_write, last_part
from .interfaces import Callback
from .metrics import BY_KEY, Scores
from .rundir import RunFiles
from .recipe import flat_keys
from .sampling import grid_image, image_path, png_bytes, read_png


# -- numbers and text for people -----------------------------------------------------------
def sig(value, digits: int = 4) -> str:
    """A float to ``digits`` significant digits (larger whole numbers as integers); other values as they are."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
        return str(value)
    if abs(value) >= 10 ** digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def count_text(n) -> str:
    """An image count, short: 1000 -> 1k, 12500 -> 12.5k, 2000000 -> 2M."""
    if n is None:
        return "?"
    for size, unit in ((1_000_000, "M"), (1000, "k")):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def duration(seconds, compact: bool = False) -> str:
    """``42 s``, ``7 min 12 s``, ``2 h 05 min``; compact: ``42s``, ``7m12s``, ``2h05m``."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        text = f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"
        return f"{text}s" if compact else f"{text} s"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m" if compact else f"{hours} h {minutes:02d} min"
    return f"{minutes}m{secs:02d}s" if compact else f"{minutes} min {secs:02d} s"


def abbreviate(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters (the end of a run name tells runs apart)."""
    if len(text) <= width:
        return text
    head = width // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


# an absolute path (/x/y, ~/x, C:\x) that is not inside a word, a URL or a relative path
_ABS_PATH = re.compile(r"(?<![\w./:\\~-])(?:~|[A-Za-z]:)?[/\\](?=[^\s/\\])[^\s'\"<>|,;()\[\]{}]+")


def strip_paths(text: str) -> str:
    """``text`` with every absolute path shortened to its last part: ``/work/data/faces.zip`` -> ``faces.zip``."""
    return _ABS_PATH.sub(lambda m: re.split(r"[/\\]", m.group().rstrip("/\\"))[-1] or m.group(), text)


def _text(value) -> str:
    """Any value as page text: escaped, absolute paths shortened."""
    return html.escape(strip_paths(str(value)))


def _value(value) -> str:
    """A recipe or metrics value in a cell: floats rounded, None as null, lists inline."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return sig(value) if isinstance(value, float) else str(value)


def _last_part(value) -> str:
    """A path-like string by its file or folder name; anything else as ``_value`` shows it."""
    return last_part(value) if isinstance(value, str) else _value(value)


def _img(path_or_bytes, alt: str) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _sample_grid(samples_dir: Path, n: int = 64) -> bytes | None:
    files = sorted(samples_dir.glob("[0-9]*.png"))[:n]
    return png_bytes(grid_image(torch.stack([read_png(f) for f in files]))) if files else None


def _table(rows: dict, caption: str | None = None, css: str | None = None) -> str:
    body = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in rows.items())
    head = f"<caption>{_text(caption)}</caption>" if caption else ""
    return f"<table{f' class={css}' if css else ''}>{head}{body}</table>"


# -- what a run folder holds -------------------------------------------------------------
@dataclass
class RunFolder:
    """What the report and ``compare`` read of a run folder (through its ``RunFiles``); a missing file reads as empty."""

    path: Path
    summary: dict = field(default_factory=dict)  # run.json
    recipe: dict = field(default_factory=dict)  # recipe.yaml, parsed
    recipe_text: str = ""
    lines: list = field(default_factory=list)  # metrics.jsonl
    best: dict | None = None  # checkpoints/best.json: the best in-training evaluation
    evaluation: dict = field(default_factory=dict)  # metrics.json, from `ganzoo eval`
    meta: dict = field(default_factory=dict)  # checkpoints/last.json
    _files: RunFiles | None = field(default=None, repr=False)

    @classmethod
    def read(cls, run_dir) -> "RunFolder":
        import yaml

        files = RunFiles(Path(run_dir).resolve())
        text = files.recipe.read_text() if files.recipe.is_file() else ""
        try:
            recipe = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            recipe = {}
        last = files.checkpoint_meta("last")
        if not isinstance(recipe, dict) or not recipe:  # unreadable recipe.yaml: the checkpoint's copy says the same
            recipe = last.get("recipe") or {}
        best = files.checkpoint_meta("best").get("best")
        return cls(files.root, files.summary(), recipe if isinstance(recipe, dict) else {}, text, files.lines(),
                   best if isinstance(best, dict) else None, files.evaluation(), last, files)

    @property
    def files(self) -> RunFiles:
        return self._files or RunFiles(self.path)

    @property
    def name(self) -> str:
        return str(self.summary.get("name") or self.recipe.get("name") or self.path.name)

    def section(self, key: str) -> dict:
        value = self.recipe.get(key)
        return value if isinstance(value, dict) else {}

    def evaluations(self) -> list[dict]:
        """Every evaluation in metrics.jsonl, in order (in-training and ``ganzoo eval``): step, n, n_real, scores."""
        return [{"step": line.get("step"), "n": line.get("eval_n"), "n_real": line.get("eval_n_real"), **line["eval"]}
                for line in self.lines if isinstance(line.get("eval"), dict)]

    def latest_evaluation(self) -> dict | None:
        evals = self.evaluations()
        if evals:
            return evals[-1]
        if self.evaluation:  # metrics.json without its line (written by hand, or metrics.jsonl lost)
            proto = self.evaluation.get("protocol", {})
            return {"step": proto.get("evaluated", {}).get("step"), "n": proto.get("n_generated"),
                    "n_real": proto.get("n_real"), **{k: v for k, v in self.evaluation.items() if k != "protocol"}}
        return None

    def seconds_total(self):
        """Seconds over every segment of the run (a run.json from before resumes were summed: its last segment)."""
        return self.summary.get("seconds_total", self.summary.get("seconds"))


# -- what the run is -----------------------------------------------------------------------
CORE_DATA_KEYS = ("name", "resolution", "channels", "augment", "cache")


def data_text(data: dict, short: bool = False) -> str:
    """The dataset, its source by file or folder name, resolution and colour, augmentations."""
    name = str(data.get("name", "?"))
    if short:
        return f"{name} {data.get('resolution', '?')}px"
    params = [f"{k} {_last_part(v)}" for k, v in data.items() if k not in CORE_DATA_KEYS and v not in (None, "", [], {})]
    colour = {1: "grayscale", 3: "RGB"}.get(data.get("channels"), f"{data.get('channels')} channels")
    text = name + (f" ({', '.join(params)})" if params else "") + f", {data.get('resolution', '?')} px {colour}"
    augment = [k if v is True else f"{k} {sig(v)}" for k, v in (data.get("augment") or {}).items() if v]
    return text + (f", augmented: {', '.join(augment)}" if augment else "")


def objective_text(rf: RunFolder) -> str:
    regs = [r.get("name", "?") for r in rf.recipe.get("regularizers") or [] if isinstance(r, dict)]
    n_critic = rf.section("train").get("n_critic")
    return (str(rf.section("objective").get("name", "?")) + "".join(f" + {r}" for r in regs)
            + (f", n_critic {n_critic}" if n_critic else ""))


def generator_text(rf: RunFolder) -> str:
    g = rf.section("generator")
    decay = rf.section("ema").get("decay")
    return (f"{g.get('name', '?')}" + (f", latent {g['latent_dim']}" if "latent_dim" in g else "")
            + (f", weight average (EMA {decay})" if decay else ""))


def n_images(rf: RunFolder):
    """The training images, when known: run.json, else the reference of an evaluation on the recipe's data."""
    if rf.summary.get("n_images") is not None:
        return rf.summary["n_images"]
    ref = rf.evaluation.get("protocol", {}).get("reference", {})
    return ref.get("size") if ref.get("dataset") == rf.section("data").get("name") else None


# -- the summary ---------------------------------------------------------------------------
def _what_rows(rf: RunFolder) -> dict:
    description = rf.recipe.get("description")
    rows = {"recipe": rf.recipe.get("name", "?") + (f": {description}" if description else ""),
            "data": data_text(rf.section("data"))}
    if n_images(rf) is not None:
        rows["images"] = f"{n_images(rf):,}"
    rows.update(generator=generator_text(rf), critic=rf.section("critic").get("name", "?"), objective=objective_text(rf))
    return rows


def _progress_rows(rf: RunFolder) -> dict:
    s = rf.summary
    steps = s.get("steps", rf.meta.get("step"))
    rows = {"steps": f"{steps} / {s.get('planned_steps', '?')}" if s else f"{steps} (run not finished)"}
    if s.get("resumed_from"):
        rows["steps"] += f" (last resumed at step {s['resumed_from']})"
    total, evaluating = rf.seconds_total(), s.get("eval_seconds_total") or 0.0
    if total is not None:
        rows["time"] = duration(total) + (" in all segments" if s.get("resumed_from") else "")
        if evaluating:
            rows["time"] += f", of which evaluation {duration(evaluating)}"
    stop = s.get("stop") or {}
    if stop.get("reason"):
        rows["ended"] = f"early, at step {stop.get('step')}: {stop['reason']}"
    if s.get("images_per_second") is not None:
        world = s.get("world_size") or 1
        rows["speed"] = (f"{sig(float(s['images_per_second']))} img/s training (evaluation left out) on {s.get('device', '?')}"
                         + (f" x {world} processes" if world > 1 else ""))
    return rows


def _score(metric: str, value) -> str:
    m = BY_KEY["fid" if metric == "fid" else "kid_mean"]
    return f"{m.label} {m.text(value)}"


def evaluation_text(ev: dict) -> str:
    """One evaluation in a line: ``FID 312.40, KID 0.3100 ± 0.0100 at step 40 (N 1000 generated, 5000 real)``."""
    n = f"N {ev.get('n')} generated" + (f", {ev['n_real']} real" if ev.get("n_real") else "")
    return f"{Scores.of(ev).line()} at step {ev.get('step')} ({n})"


def _score_rows(rf: RunFolder) -> dict:
    rows = {}
    if rf.best:
        b = rf.best
        rows["best"] = f"{_score(b.get('metric'), b.get('score'))} at step {b.get('step')} (N {b.get('n')} generated)"
    if rf.latest_evaluation():
        rows["last evaluation"] = evaluation_text(rf.latest_evaluation())
    final = rf.summary.get("final") or {}
    if final:
        from .observers import STANDARD_KEYS

        losses = [("critic", "d_loss"), ("generator", "g_loss"), ("gap", "gap")]
        terms = [k for k in final if k.startswith("penalty/")]
        losses += [(k.removeprefix("penalty/"), k) for k in terms] or ([("penalty", "penalty")] if final.get("penalty") else [])
        rows["last losses"] = f"step {final.get('step')}: " + ", ".join(f"{label} {sig(final.get(key))}" for label, key in losses)
        own = [k for k in final if k not in STANDARD_KEYS and not k.startswith(("penalty/", "eval/"))]
        if own:
            rows["logged by callbacks"] = ", ".join(f"{k} {sig(final[k])}" for k in own)
    samples = rf.summary.get("samples") or {}
    if samples.get("n"):
        rows["samples"] = (f"{samples['n']} images; min pairwise RMS distance {sig(samples.get('min_pairwise_rms'))}; "
                           f"{samples.get('near_identical_pairs')} near-identical pairs")
    return rows


def summary_section(rf: RunFolder) -> str:
    return "<h2>Summary</h2>" + _table({**_what_rows(rf), **_progress_rows(rf), **_score_rows(rf)}, css="summary")


# -- metrics over time, evaluation, hyper-parameters ------------------------------------------
def eval_plot(evals: list[dict]) -> bytes:
    """FID and KID (± std) against the step, one line per N (scores at different N are not comparable): PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.2), dpi=90)
    FigureCanvasAgg(fig)
    sizes = sorted({e.get("n") for e in evals}, key=lambda n: (n is None, n or 0))
    for i, (key, spread, title) in enumerate((("fid", None, "FID"), ("kid_mean", "kid_std", "KID (± std over subsets)"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for n in sizes:
            points = [e for e in evals if e.get("n") == n and e.get(key) is not None]
            if points:
                ax.errorbar([e["step"] for e in points], [e[key] for e in points],
                            yerr=[e.get(spread) or 0.0 for e in points] if spread else None,
                            marker="o", markersize=3, capsize=2, label=f"N {count_text(n)}")
        ax.set_title(f"{title}, lower is better")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def over_time_section(rf: RunFolder) -> str:
    parts = []
    if rf.files.curves.is_file():
        parts.append(_img(rf.files.curves, "loss curves"))
    evals = [e for e in rf.evaluations() if isinstance(e.get("step"), int)
             and (e.get("fid") is not None or e.get("kid_mean") is not None)]
    if len(evals) == 1:  # one point makes no chart: say it in a line
        parts.append(f"<p>One evaluation during training: {html.escape(evaluation_text(evals[0]))}</p>")
    elif evals:
        parts.append(_img(eval_plot(evals), "evaluations during training"))
        parts.append(f"<p class=dim>{len(evals)} evaluations, steps {evals[0]['step']} to {evals[-1]['step']}</p>")
    return "<h2>Metrics over time</h2>" + "".join(parts) if parts else ""


def evaluation_section(ev: dict) -> str:
    """``metrics.json`` (``ganzoo eval``) as a small table: scores, N on each side, the feature network."""
    if not ev:
        return ""
    return "<h2>Evaluation</h2>" + _table(Scores.of(ev).rows())


def copy_check_section(files: RunFiles) -> str:
    """``nearest.json`` (``ganzoo nearest``): the verdict, the distances with N on each side, and the grid."""
    run, c = files.root, files.copy_check()
    if not c.get("verdict"):
        return ""

    def text(d) -> str:
        return ", ".join(f"{k} {sig(d.get(k))}" for k in ("min", "p1", "p10", "median")) if isinstance(d, dict) else "n/a"

    def count(v) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    n_gen, n_train = count(c.get("n_generated")), count(c.get("n_train"))
    rows = {"generated to nearest training image": f"{text(c.get('generated_to_train'))} (N {n_gen} generated "
                                                   f"vs all {n_train} training images)",
            "training to nearest other training image": f"{text(c.get('train_to_train'))} (N {count(c.get('n_train_sampled'))} "
                                                        f"of {n_train} training images, their own copy left out)",
            "nearer than 99% of training pairs": f"{c.get('close')} of {n_gen} generated (RMS under {sig(c.get('threshold'))}, "
                                                 f"the training images' 1st percentile; about {sig(c.get('expected_close'))} "
                                                 "expected by chance)",
            "near-identical": f"{c.get('near_identical')} generated (RMS < {c.get('near_identical_threshold')}); training among "
                              f"themselves: {c.get('near_identical_train')} of {c.get('n_train_sampled')}",
            "scored": f"step {c.get('step')}" + (", weight average" if c.get("ema") else "") + f", seed {c.get('seed')}",
            "distance": c.get("distance", "?")}
    grid = Path(str(c.get("grid") or files.nearest_grid.name))
    grid = grid if grid.is_absolute() else run / grid
    image = (f"<figure>{_img(grid, 'generated images over their nearest training images')}"
             f"<figcaption>{_text(c.get('grid_columns', ''))}</figcaption></figure>") if grid.is_file() else ""
    return f"<h2>Copy check</h2><p>{_text(c['verdict'])}</p>{_table(rows)}{image}"


def hyperparameters_section(rf: RunFolder) -> str:
    """The resolved recipe as tables of dotted keys, one per section, and the YAML itself folded away."""
    if not rf.recipe:
        return ""
    groups: dict[str, dict] = {}
    for key, value in flat_keys(rf.recipe).items():
        top = re.split(r"[.\[]", key, maxsplit=1)[0]  # a section's keys together; top-level values (and empty lists) first
        groups.setdefault(top if key != top else "recipe", {})[key] = _value(value)
    tables = "".join(f"<div>{_table(rows, caption=name)}</div>" for name, rows in groups.items())
    return (f"<h2>Hyper-parameters</h2><div class=params>{tables}</div>"
            f"<details><summary>recipe.yaml (as resolved)</summary><pre>{_text(rf.recipe_text)}</pre></details>")


def environment_section(rf: RunFolder) -> str:
    env = dict(rf.meta.get("versions") or {})
    env["device"] = rf.summary.get("device", "?")
    env["report written on"] = f"{platform.platform()} ({platform.machine()})"
    return "<h2>Environment</h2>" + _table(env)


def warnings_section(rf: RunFolder, limit: int = 20) -> str:
    found = [line for line in rf.lines if "warning" in line]
    if not found:
        return ""
    items = "".join(f"<li>step {_text(line.get('step'))}: {_text(line['warning'])}</li>" for line in found[:limit])
    more = f"<p class=dim>and {len(found) - limit} more in metrics.jsonl</p>" if len(found) > limit else ""
    return f"<h2>Warnings during training</h2><ul>{items}</ul>{more}"


# -- the page -----------------------------------------------------------------------------
def timeline_section(files: RunFiles) -> str:
    grids = files.grid_steps()
    cells = "".join(f"<figure>{_img(g, g.stem)}<figcaption>step {int(g.stem.split('_')[1])}</figcaption></figure>" for g in grids)
    return f"<h2>Fixed-z grid timeline</h2><div class=timeline>{cells}</div>" if grids else ""


def samples_section(files: RunFiles) -> str:
    final = _sample_grid(files.samples)
    return f"<h2>Final samples (first 64)</h2><div class=samples>{_img(final, 'final samples')}</div>" if final else ""


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 2px 10px; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; color: #444; } caption { text-align: left; font-weight: 600; padding: 4px 10px; }
table.summary th { width: 9em; } img { max-width: 100%; }
.params { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
.params th, .params td { font: 12px/1.3 ui-monospace, monospace; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; } .dim { color: #777; }
details summary { cursor: pointer; margin: 0.8em 0; }
.timeline { display: flex; flex-wrap: wrap; gap: 10px; } figure { margin: 0; }
.samples img { width: min(100%, 512px); image-rendering: pixelated; }
.timeline img { width: 250px; image-rendering: pixelated; } figcaption { text-align: center; color: #555; }
"""


def _tolerant(fn):
    """A run folder's files edited by hand into other types (a string where a number was): one line, no traceback."""
    import functools

    @functools.wraps(fn)
    def call(run_dir, *args, **kwargs):
        try:
            return fn(run_dir, *args, **kwargs)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            from .errors import GanzooError

            raise GanzooError(f"{run_dir}: run.json, metrics.jsonl or metrics.json holds a value of an unexpected type "
                              f"({type(exc).__name__}: {exc}); restore or delete that file") from None
    return call


@_tolerant
def write_report(run_dir) -> Path:
    """Write ``run_dir/report.html`` from what the run directory holds."""
    rf = RunFolder.read(run_dir)
    sections = [summary_section(rf), over_time_section(rf), evaluation_section(rf.evaluation), copy_check_section(rf.files), warnings_section(rf),
                timeline_section(rf.files), samples_section(rf.files), hyperparameters_section(rf), environment_section(rf)]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ganzoo: {_text(rf.name)}</title>
<style>{STYLE}</style></head><body>
<h1>ganzoo run: {_text(rf.name)}</h1><p class=dim>run folder {_text(rf.path.name)}</p>
{"".join(sections)}
</body></html>
"""
    out = rf.files.report
    atomic_write(out, page.encode(), "report")
    return out


# -- comparing runs ----------------------------------------------------------------
def require_run_dir(run_dir) -> Path:
    run = Path(run_dir)
    if not RunFiles(run).recipe.is_file():
        from .errors import GanzooError

        raise GanzooError(f"{run} is not a ganzoo run directory (no recipe.yaml)")
    return run


@_tolerant
def run_summary(run_dir) -> dict:
    """One run as ``ganzoo compare`` lists it: what it is, how far and how fast it went, its latest scores and their N."""
    rf = RunFolder.read(require_run_dir(run_dir))
    s, final, last = rf.summary, rf.summary.get("final") or {}, rf.latest_evaluation() or {}
    return {
        "run": rf.path.name, "recipe": rf.recipe.get("name"), "objective": rf.section("objective").get("name"),
        "generator": rf.section("generator").get("name"), "critic": rf.section("critic").get("name"),
        "data": data_text(rf.section("data"), short=True),
        "steps": s.get("steps", rf.meta.get("step")), "planned_steps": s.get("planned_steps"),
        "seconds": rf.seconds_total(), "img/s": s.get("images_per_second"),
        "d_loss": final.get("d_loss"), "g_loss": final.get("g_loss"), "gap": final.get("gap"),
        "fid": last.get("fid"), "kid_mean": last.get("kid_mean"), "eval_n": last.get("n"), "eval_step": last.get("step"),
    }


COMPARE_COLUMNS = ("run", "objective", "steps", "time", "img/s", "latest score")


def compare_cells(row: dict, name_width: int = 20) -> list[str]:
    """``run_summary``'s row as short cells under ``COMPARE_COLUMNS``: each score with its N (``FID 123.45 @1k``)."""
    steps = count_text(row["steps"]) if row.get("steps") is not None else "?"
    if row.get("planned_steps") is not None:
        steps += f"/{count_text(row['planned_steps'])}"
    n = f" @{count_text(row['eval_n'])}" if row.get("eval_n") else ""
    scores = [f"{m.label} {m.text(row[m.key])}{n}" for m in (BY_KEY["fid"], BY_KEY["kid_mean"]) if row.get(m.key) is not None]
    ips = row.get("img/s")
    return [abbreviate(str(row["run"]), name_width), abbreviate(str(row.get("objective") or "?"), 10), steps,
            duration(row.get("seconds"), compact=True), "n/a" if ips is None else sig(float(ips)), "\n".join(scores) or "-"]


def compare_details(row: dict) -> str:
    """What a run is, in one line under the table: recipe, data, networks, last score's step."""
    text = f"{row['run']}: recipe {row.get('recipe')}, {row.get('data')}, G {row.get('generator')}, D {row.get('critic')}"
    return text + (f", scored at step {row['eval_step']}" if row.get("eval_step") is not None else "")


def final_grid(run_dir) -> Path | None:
    files = RunFiles(run_dir)
    grids = files.grid_steps()
    if grids:
        return grids[-1]
    return files.samples / "grid.png" if (files.samples / "grid.png").exists() else None


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
    path = image_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)
    return path


class RunSummary(Callback):
    """At the end of a run: ``run.json`` (steps, time, speed, last metrics, samples) and ``report.html``."""

    name = "run_summary"

    def on_end(self, run) -> None:
        import logging

        train_seconds = max(run.seconds - run.eval_seconds, 1e-9)
        ips_last = (run.step - run.start) * run.images_per_step / train_seconds  # training only: evaluation time left out
        distinct, samples = run.distinct, run.recipe.output.samples
        total = run.elapsed()
        # the speed of every segment together, as seconds_total is their time (card and compare show them side by side)
        ips = run.step * run.images_per_step / max(total["seconds"] - total["eval_seconds"], 1e-9)
        if run.step == run.start and run.resumed_from is not None:  # a resume that only wrote the final outputs
            ips_last = ips
        summary = {"name": run.recipe.name, "run_id": run.run_id, "steps": run.step, "planned_steps": run.total, "resumed_from": run.start or None,
                   "n_images": run.n_images, "seconds": round(run.seconds, 2), "seconds_total": total["seconds"],
                   "eval_seconds_total": total["eval_seconds"], "images_per_second": round(ips, 1),
                   "images_per_second_last_segment": round(ips_last, 1), "device": str(run.device),
                   "world_size": run.world.size, "final": run.metrics,
                   "stop": {"kind": run.stop.kind, "reason": run.stop.reason, "step": run.stop.step} if run.stop else None,
                   "samples": {"n": samples, "min_pairwise_rms": distinct.min_distance if distinct else None,
                               "near_identical_pairs": len(distinct.close_pairs) if distinct else None}}
        if run.ranks is not None:
            summary["ranks"] = run.ranks
        files = RunFiles(run.run_dir)
        files.write_summary(summary)
        write_report(run.run_dir)
        logging.getLogger("ganzoo").info(
            f"done: steps {run.start}->{run.step} in {run.seconds:.1f}s ({ips:.1f} img/s); checkpoint {run.checkpoint_path}; "
            f"{samples} samples in {files.samples}; report {files.report}")
