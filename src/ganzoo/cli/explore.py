"""ganzoo explore: a generator in the browser."""

from __future__ import annotations

from typing import Optional

import typer

from .. import distributed, explore as explorer
from .common import Device, Source, app, friendly


@app.command()
@friendly
def explore(
    run: Source,
    host: str = typer.Option("127.0.0.1", help="address to listen on: 127.0.0.1 is this machine only (see docs/explore.md "
                             "for reaching it from another machine)"),
    port: Optional[int] = typer.Option(None, min=1, max=65535, help="port (default: the first free one from 7860)"),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="open the page in the browser"),
    device: Device = "auto",
):
    """Explore a generator in the browser: seeds, truncation, labels, walks between seeds, projection of your image."""
    explorer.explore(run, host=host, port=port, open_browser=browser, device=distributed.pick_device(device, what="--device"))
