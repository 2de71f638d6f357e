"""What is installed: recipes, models, init, list, show."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .. import shipped
from ..errors import GanzooError
from ..registry import KINDS, did_you_mean, get_registry
from .common import app, err, force_option, friendly, out, path_arg


def _block_line(line: str) -> None:
    """A line of a block under its name, indented two spaces: on a terminal a wrapped line keeps the indentation;
    into a file or a pipe (unwrapped output) it stays one whole line, never cut at the console's width."""
    if out.soft_wrap:
        out.print(Text("  " + line), soft_wrap=True)
    else:
        out.print(Padding(Text(line), (0, 0, 0, 2), expand=False))


ForceRecipe = force_option("replace an existing NAME.yaml")


@app.command()
@friendly
def recipes(all_: bool = typer.Option(False, "--all", "-a", help="also the reference experiments as they were run")):
    """List the recipes that ship with ganzoo: run one by name (ganzoo run NAME), copy one (ganzoo init)."""
    scores = shipped.measured_scores()
    rows = []
    for path in shipped.shipped_recipes().values():
        info = shipped.describe(path)
        if info["reference"] and not all_:
            continue
        rows.append((info["name"], info["experiment"] or "-", info["model"], info["objective"], info["data"],
                     info["expected_time"].split(" (")[0],
                     shipped.measured_text(scores.get(info["name"], []), shipped.fingerprint(path))))
    head = ("name", "exp.", "model", "objective", "data", "time (2-core CPU)", "FID@N, budget, data")
    if _fits(head, rows):
        table = Table(box=None, pad_edge=False, show_edge=False)
        for col in head:
            table.add_column(col, no_wrap=True, style="bold" if col == "name" else None)
        for row in rows:
            table.add_row(*row)
        out.print(table)
    else:  # too narrow for seven columns of whole cells: one block per recipe, its lines wrapped whole
        for name, experiment, model, objective, data, time, measured in rows:
            out.print(Text(name, style="bold") + Text(f" ({experiment})" if experiment != "-" else ""))
            lines = [f"{model}, {objective}, {data}, {time}"] + (["FID " + m for m in measured.split("\n")] if measured != "-" else [])
            for line in lines:  # every line and its wrapped rest indented alike
                _block_line(line)
    out.print("(time: a full run on a 2-core CPU; FID@N, budget, data: the longest measured score, FID of N generated "
              "images after that many images seen, or CPU-minutes of training, on that data set; docs/zoo.md)",
              style="dim", highlight=False)
    if not all_:
        out.print("(ganzoo recipes --all: also the reference experiments E0-E2 as run)", style="dim", highlight=False)


def _fits(head: tuple[str, ...], rows: list) -> bool:
    """Whether a table of these columns fits the console with no cell wrapped (else the caller prints blocks)."""
    widths = [max([len(h)] + [len(line) for row in rows for line in str(row[i]).split("\n")]) for i, h in enumerate(head)]
    return sum(widths) + 2 * (len(head) - 1) <= out.width


def _model_rows() -> list[tuple[str, str, str, str]]:
    """(name, what it draws, scores, where it came from) of each shipped model."""
    rows = []
    for path in shipped.shipped_models().values():
        m = shipped.model_summary(path)
        image, labels = m["image"], m["labels"]
        what = (f"{image.get('channels')}x{image.get('resolution')}x{image.get('resolution')}, "
                + ("conditional on " + ", ".join(labels) if labels else "unconditional") + f", {m['size'] / 1e6:.1f} MB")
        ev = m["evaluation"] or {}
        scores = "not evaluated"
        if ev.get("fid") is not None:
            ref = f" of {ev['reference']}" if ev.get("reference") else ""
            scores = (f"FID {ev['fid']:.1f}, KID {ev.get('kid_mean', float('nan')):.4f}, recall {ev.get('recall', float('nan')):.3f}: "
                      f"{ev.get('n'):,} generated against {ev.get('n_real'):,} real images{ref}")
        seen = f", {m['images_seen'] / 1000:,.1f}k images seen" if isinstance(m["images_seen"], int) else ""
        origin = f"recipe {m['recipe']} ({m['generator']}, {m['objective']}){seen}, data {m['data']}"
        rows.append((m["name"], what, scores, origin))
    return rows


@app.command()
@friendly
def models():
    """List the trained models that ship with ganzoo: use one by name wherever a model folder goes
    (ganzoo sample anime-faces -n 64 -o faces/, ganzoo explore NAME, ganzoo.load_generator("NAME"))."""
    rows = _model_rows()
    if not rows:
        out.print("no trained model is installed with this copy of ganzoo", highlight=False)
        return
    head = ("name", "images", "scores", "trained")
    if _fits(head, rows):
        table = Table(box=None, pad_edge=False, show_edge=False)
        for col in head:
            table.add_column(col, no_wrap=True, style="bold" if col == "name" else None)
        for row in rows:
            table.add_row(*(escape(c) for c in row))
        out.print(table)
    else:  # one block per model; wrapped lines keep their indentation
        for name, what, scores, origin in rows:
            out.print(Text(name, style="bold"))
            for line in (what, scores, origin):
                _block_line(line)
    out.print("(scores: of the shipped weights themselves, N generated images against N real ones; docs/models.md)",
              style="dim", highlight=False)


@app.command()
@friendly
def init(
    name: str = typer.Argument(..., help="name of the new recipe (and of its file NAME.yaml)"),
    from_: Optional[str] = typer.Option(None, "--from", help="shipped recipe (or file) to start from; default: NAME"),
    directory: Path = typer.Option(Path("."), "--dir", help="where to write NAME.yaml", parser=path_arg),
    force: ForceRecipe = False,
):
    """Copy a shipped recipe to NAME.yaml to edit: ganzoo init my_faces --from anime_fast."""
    path = shipped.init(name, from_, directory, force)
    err.print(f"wrote {path}: edit it, then ganzoo run {path}", highlight=False)


@app.command("list")
@friendly
def list_(verbose: bool = typer.Option(False, "--verbose", "-v", help="also the plugin, version and every parameter")):
    """List installed components, grouped by kind (built-ins and plugins alike)."""
    reg = get_registry()
    table = Table(box=None, show_header=verbose, pad_edge=False, show_edge=False)
    width = max((len(c.name) + (0 if c.package == "ganzoo" or verbose else len(c.package) + 3) for c in reg.all()), default=8)
    name_width = max(width + 2, len("architectures"))
    table.add_column("name", no_wrap=True, style="bold", min_width=name_width)
    if verbose:
        table.add_column("plugin", no_wrap=True)
        table.add_column("version", no_wrap=True)
    table.add_column("description", no_wrap=not verbose, overflow="fold" if verbose else "ellipsis")
    for kind in KINDS:
        components = [c for c in reg.all() if c.kind == kind]
        if not components:
            continue
        table.add_row(f"[underline]{kind}s[/]", *([""] * (2 if verbose else 0)), "")
        for c in components:
            shadowed = reg.components[kind].get(c.name) is not c  # a clash's other component: PACKAGE:NAME
            name = f"  {c.qualified_name}" if shadowed else f"  {c.name}" if c.package == "ganzoo" or verbose else f"  {c.name} ({c.package})"
            table.add_row(Text(name), *((Text(c.package), Text(c.version)) if verbose else ()),
                          Text(c.description if verbose else _clip(c.description, out.width - name_width - 1)))
    out.print(table)
    if reg.switched_off:
        out.print(f"turned off (GANZOO_DISABLE_PLUGINS): {', '.join(reg.switched_off)}", highlight=False, markup=False)
    if verbose:
        for c in reg.all():
            _print_params(c)


def _clip(text: str, width: int) -> str:
    """``text`` cut at the last whole word that fits in ``width`` characters, with an ellipsis."""
    if len(text) <= width or width < 8:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0].rstrip(" ,;:(")
    return cut + "…"


@app.command()
@friendly
def show(name: str = typer.Argument(..., help="component name, e.g. wgan_gp")):
    """Show a component's parameters with their defaults."""
    reg = get_registry()
    found = reg.find(name)
    if not found:
        raise GanzooError(f"no component named '{name}'{did_you_mean(name, [c.name for c in reg.all()])}")
    for c in found:
        _print_params(c)


def _type_name(annotation) -> str:
    """``Literal['a', 'b']`` as ``a | b``; ``list[int]``, ``float | None`` as written."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (list, tuple) and args:
        return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else _type_name(a) for a in args)}]"
    name = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return name or str(annotation).replace("typing.", "").replace("NoneType", "None")


def _print_params(c) -> None:
    out.print(f"\n[bold]{c.kind} {c.name}[/] (plugin {escape(c.plugin)}, {escape(c.package)} {escape(c.version)}): {escape(c.description)}",
              highlight=False)  # plugin text is data, not markup: "E[sign D(real)]" must print as written
    for role, model in c.params_models().items():
        table = Table()
        for col in ("param", "type", "default", "description"):
            table.add_column(col, overflow="fold")
        for key, field in model.model_fields.items():
            table.add_row(key, Text(_type_name(field.annotation)),
                          Text("(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))),
                          Text(field.description or ""))
        if not model.model_fields:
            table.add_row("(none)", "", "", "")
        out.print(table)
