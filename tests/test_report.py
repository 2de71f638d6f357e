import re
import shutil

import pytest

from ganzoo import load_recipe, train

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def run_dir(tiny, tmp_path):
    tiny["train"].update(steps=6, log_every=2)
    tiny["output"].update(grid_every=2, grid_size=16, samples=20)
    return train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir


def test_report_is_self_contained_with_every_section(run_dir):
    page = (run_dir / "report.html").read_text()
    for heading in ("Run", "Environment", "Curves", "Fixed-z grid timeline", "Final samples", "Recipe (resolved)"):
        assert f"<h2>{heading}" in page
    assert page.count("<figcaption>step ") == 5  # every 2 steps, and 50 % of 6 = step 3
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page and "https://" not in page and "<script" not in page


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_report_renders_in_headless_chromium_without_console_errors(run_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get((run_dir / "report.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        title = driver.title
    finally:
        driver.quit()
    assert title == "ganzoo: tiny"
    assert len(images) == 5 + 2  # 5 timeline grids, curves, final samples
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, alt
    assert not errors, errors


def test_compare_two_runs_table_and_side_by_side_grid(tiny, tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from ganzoo.cli import app

    tiny["output"].update(samples=0, grid_size=4)
    a = train(load_recipe(tiny), tmp_path / "gan", progress=False).run_dir
    b = train(load_recipe(tiny, ["objective.name=wgan_clip", "objective.n_critic=2", "data.resolution=32"]),
              tmp_path / "wgan", progress=False).run_dir
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "-o", str(tmp_path / "cmp.png")], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "bce" in res.output and "wgan_clip" in res.output and "16px" in res.output and "32px" in res.output
    img = Image.open(tmp_path / "cmp.png")
    assert img.height == 384 and img.width > 2 * 360  # two panels of one height
    res = CliRunner().invoke(app, ["compare", str(tmp_path)])
    assert res.exit_code == 2 and "not a ganzoo run directory" in res.output
