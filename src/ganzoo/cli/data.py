"""ganzoo data: look at a recipe's data."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import torch
import typer

from .. import data as datasets, labels, recipe as recipes, sampling, shipped
from ..errors import GanzooError
from .common import app, force_option, friendly, key_values, out, path_arg

ForceGrid = force_option("replace the grid image if it exists")

data_app = typer.Typer(help="Look at a recipe's data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
@friendly
def data_inspect(
    recipe: str = typer.Argument(..., help="recipe YAML file, or the name of a shipped recipe"),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="override a key"),
    grid: Optional[Path] = typer.Option(None, "--grid", help="PNG of real samples after transforms (default: NAME-data.png)", parser=path_arg),
    n: int = typer.Option(64, "-n", min=1, max=10000, help="images in the grid"),
    force: ForceGrid = False,
):
    """Counts, skipped files and why, source sizes, and a grid of real samples after transforms."""
    r = recipes.load_recipe(shipped.resolve(recipe), set_ or [])
    grid_path = sampling.image_path(grid if grid is not None else Path(f"{r.name}-data.png"))
    if grid_path.exists() and not force:
        raise GanzooError(f"{grid_path} exists: pick another name (--grid) or pass --force to replace it")
    data = datasets.load_data(r.data)
    images, report = data.images, data.report
    rows = []
    rows.append(("dataset", f"{r.data.name}: {report.source}"))
    rows.append(("images", f"{len(images)} at {r.data.channels}x{r.data.resolution}x{r.data.resolution}"))
    rows.append(("skipped", ", ".join(f"{v} {k}" for k, v in report.skipped.items()) or "none"))
    for bad in report.bad_files[:10]:
        rows.append(("", bad))
    sizes = sorted(report.source_sizes.items(), key=lambda kv: -kv[1])
    rows.append(("source sizes", ", ".join(f"{k}: {v}" for k, v in sizes[:8]) + (" ..." if len(sizes) > 8 else "") or "n/a"))
    rows.append(("upscaled", str(report.upscaled)))
    aug = datasets.build_augment(r.data.augment)
    rows.append(("augment", str(aug) if aug else "none"))
    for attr, counts in labels.summary(data.columns).items():
        used = " (conditions the model)" if attr in r.data.labels else ""
        rows.append((f"label {attr}{used}", f"{len([c for c in counts if c != '(none)'])} classes: "
                      + ", ".join(f"{c} {k}" for c, k in counts.items())))
    if not data.columns:
        rows.append(("labels", "none (class sub-folders, a labels file, or a labelled dataset give them)"))
    out.print(key_values(f"data of {r.name}", rows))
    torch.manual_seed(r.seed)
    batch = next(datasets.BatchStream(images, min(n, len(images)), r.seed, "cpu", augment=aug))
    path = sampling.write_grid(datasets.to_uint8(batch), grid_path)
    out.print(f"grid of {len(batch)} real images after transforms: {path}")
