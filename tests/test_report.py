import base64
import json
import re
import shutil

import pytest

from ganzoo import load_recipe, train
from ganzoo.report import count_text, duration, sig, strip_paths, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
EVAL_ALT = "evaluations during training"


@pytest.fixture
def run_dir(tiny, tmp_path):
    tiny["train"].update(steps=6, log_every=2)
    tiny["output"].update(grid_every=2, grid_size=16, samples=20)
    return train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir


def add_evaluations(run):
    """What in-training evaluation and `ganzoo eval` leave in a run folder (written here: a real evaluation is slow)."""
    history = ((2, 412.345678912, 0.41234567), (4, 360.1234567, 0.3100012345), (6, 331.987654, 0.3212345))
    lines = [{"step": step, "eval": {"fid": fid, "kid_mean": kid, "kid_std": 0.0123456789}, "eval_n": 1000, "eval_n_real": 5000}
             for step, fid, kid in history]
    lines.insert(1, {"step": 3, "warning": "the critic wins outright since step 2 (see /work/somewhere/else)"})
    scores = {"fid": 290.123456789, "kid_mean": 0.29123456789, "kid_std": 0.00212345678,
              "precision": 0.123456789, "recall": 0.0456789}
    lines.append({"step": 6, "eval": scores, "eval_n": 10000})
    with (run / "metrics.jsonl").open("a") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    (run / "checkpoints" / "best.json").write_text(json.dumps({"step": 4, "best": {"metric": "kid", "score": 0.3100012345,
                                                                                  "step": 4, "n": 1000}}))
    protocol = {"library": "torch-fidelity 0.3.0", "n_generated": 10000, "n_real": 5000, "image_resolution": 64, "seed": 0,
                "feature_network": {"file": "/root/.cache/ganzoo/weights/pt_inception-2015-12-05-6726825d.pth",
                                    "sha256": "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"},
                "reference": {"source": "/work/shared/data/anime-faces-64.zip", "dataset": "images", "size": 63565, "n": 5000},
                "evaluated": {"checkpoint": str(run / "checkpoints" / "last.safetensors"), "step": 6, "ema": False}}
    (run / "metrics.json").write_text(json.dumps({**scores, "protocol": protocol}, indent=2))
    return run


def body_text(page: str) -> str:
    """The page body with the images' data left out."""
    return re.sub(r'src="data:[^"]*"', 'src=""', page.split("</style>", 1)[1])


def test_report_is_self_contained_with_every_section(run_dir):
    page = (run_dir / "report.html").read_text()
    for heading in ("Summary", "Metrics over time", "Fixed-z grid timeline", "Final samples", "Hyper-parameters", "Environment"):
        assert f"<h2>{heading}" in page
    assert page.count("<figcaption>step ") == 5  # every 2 steps, and 50 % of 6 = step 3
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert EVAL_ALT not in page and "<h2>Evaluation" not in page  # no evaluation ran: no plot, no table


def test_report_summary_scores_rounded_and_no_local_paths(run_dir, tmp_path):
    page = write_report(add_evaluations(run_dir)).read_text()
    text = body_text(page)
    summary = text.split("<h2>Summary", 1)[1].split("<h2>", 1)[0]
    final = json.loads((run_dir / "run.json").read_text())["final"]
    for row in ("<th>recipe</th><td>tiny</td>", "<th>data</th><td>toyfaces (size 64, seed 0), 16 px RGB</td>",
                "<th>images</th><td>64</td>", "<th>generator</th><td>dcgan, latent 8</td>", "<th>critic</th><td>dcgan</td>",
                "<th>objective</th><td>bce, n_critic 1</td>", "<th>steps</th><td>6 / 6</td>",
                "<th>best</th><td>KID 0.3100 at step 4 (N 1000 generated)</td>",
                "<th>last evaluation</th><td>FID 290.12, KID 0.2912 ± 0.0021, precision 0.1235, recall 0.04568 at step 6 (N 10000 generated)</td>",
                f"<th>last losses</th><td>step 6: critic {sig(final['d_loss'])}, generator {sig(final['g_loss'])}"):
        assert row in summary, row
    assert "img/s training (evaluation left out)" in summary
    # every number rounded: no more than 5 significant digits anywhere (FID 290.12 has 5)
    numbers = re.findall(r"(?<![\w.])\d+\.\d+", text)
    assert numbers and all(len(n.replace(".", "").lstrip("0")) <= 5 for n in numbers), numbers
    assert str(final["d_loss"]) not in page
    # evaluation table, not raw JSON
    for row in ("<th>FID</th><td>290.12</td>", "<th>KID</th><td>0.2912 ± 0.0021</td>",
                "<th>precision / recall</th><td>0.1235 / 0.04568</td>", "<th>N generated</th><td>10000 (step 6)</td>",
                "<th>N real</th><td>5000 of 63565 (images: anime-faces-64.zip)</td>",
                "<th>feature network</th><td>pt_inception-2015-12-05-6726825d.pth, sha256 6726825d0af5</td>"):
        assert row in text, row
    assert '"kid_mean"' not in page
    # no absolute path of this machine: run folder by its name, sources by their file name
    assert str(tmp_path) not in page and "/work/" not in page and "/root/" not in page and "/tmp/" not in page
    assert "run folder run<" in page and "(see else)" in text
    # the evaluations over time, as a PNG
    src = re.search(rf'<img alt="{EVAL_ALT}" src="data:image/png;base64,([^"]+)"', page)
    assert src and base64.b64decode(src.group(1)).startswith(b"\x89PNG")
    assert "4 evaluations, steps 2 to 6" in text
    # hyper-parameters as a table of dotted keys; the YAML folded away
    assert "<th>train.batch_size</th><td>8</td>" in text and "<th>generator.latent_dim</th><td>8</td>" in text
    assert "<th>output.dir</th><td>runs</td>" in text  # an absolute output.dir: its last part
    assert re.search(r"<details><summary>recipe.yaml \(as resolved\)</summary><pre>name: tiny\n", text)


def test_report_totals_are_over_every_segment_of_a_resumed_run(tiny, tmp_path):
    tiny["train"].update(steps=6, log_every=3)
    tiny["output"].update(samples=0, grid_size=4)
    run = train(load_recipe(tiny, ["train.steps=3"]), tmp_path / "run", progress=False).run_dir
    first = json.loads((run / "run.json").read_text())
    train(load_recipe(tiny), run, resume=run, progress=False)
    done = json.loads((run / "run.json").read_text())
    assert done["steps"] == 6 and done["resumed_from"] == 3
    assert done["seconds_total"] >= first["seconds_total"] + done["seconds"] - 0.02
    page = (run / "report.html").read_text()
    assert f"<th>time</th><td>{duration(done['seconds_total'])} in all segments" in page
    assert "<th>steps</th><td>6 / 6 (last resumed at step 3)</td>" in page
    # long runs: hours and minutes; evaluation time named, and left out of img/s
    done.update(seconds=100.0, seconds_total=3725.4, eval_seconds_total=600.0, images_per_second=35.25)
    (run / "run.json").write_text(json.dumps(done))
    page = write_report(run).read_text()
    assert "<th>time</th><td>1 h 02 min in all segments, of which evaluation 10 min 00 s</td>" in page
    assert "<th>speed</th><td>35.25 img/s training (evaluation left out) on cpu</td>" in page


@pytest.mark.parametrize("text, shown", [
    ("/work/shared/data/anime-faces-64.zip", "anime-faces-64.zip"),
    ("decoded from /work/shared/data/mnist/ (train)", "decoded from mnist (train)"),
    ("'C:\\Users\\me\\faces.zip'", "'faces.zip'"),
    ("~/data/faces", "faces"),
    ("data/anime-faces, 35 img/s, precision / recall, https://example.org/x", "data/anime-faces, 35 img/s, precision / recall, "
                                                                            "https://example.org/x"),
])
def test_strip_paths_keeps_the_last_part_of_absolute_paths_only(text, shown):
    assert strip_paths(text) == shown


def test_numbers_for_people():
    assert [sig(v) for v in (1.3519974946975708, 0.0014008624712005, 40.2, 123456.7, 0.0, 3)] == \
        ["1.352", "0.001401", "40.2", "123457", "0", "3"]
    assert [count_text(n) for n in (999, 1000, 12500, 2_000_000)] == ["999", "1k", "12.5k", "2M"]
    assert [duration(s) for s in (1.234, 42.4, 432, 7384)] == ["1.2 s", "42 s", "7 min 12 s", "2 h 03 min"]
    assert [duration(s, compact=True) for s in (42.4, 432, 7384)] == ["42s", "7m12s", "2h03m"]


def render_in_chromium(page, shot):
    """Open ``page`` in headless Chromium: its title, its images (alt, complete, width, height) and its console
    errors; a screenshot of the whole page goes to ``shot``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,1000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get(page.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        text = driver.execute_script("return document.body.innerText")
        title = driver.title
        driver.set_window_size(1200, driver.execute_script("return document.documentElement.scrollHeight"))
        driver.save_screenshot(str(shot))  # the whole page, kept in pytest's tmp folder to look at
    finally:
        driver.quit()
    return title, images, errors, text


BROWSER = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@BROWSER
def test_report_renders_in_headless_chromium_without_console_errors(run_dir, tmp_path):
    from PIL import Image

    write_report(add_evaluations(run_dir))
    title, images, errors, _ = render_in_chromium(run_dir / "report.html", tmp_path / "report.png")
    assert title == "ganzoo: tiny"
    assert len(images) == 5 + 3  # 5 timeline grids, loss curves, evaluations over time, final samples
    assert EVAL_ALT in [alt for alt, *_ in images]
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, alt
    assert not errors, errors
    shot = Image.open(tmp_path / "report.png").convert("L")
    assert shot.width >= 1000 and shot.height > 2000 and shot.getextrema()[0] < 100  # a long page with dark text on it


@BROWSER
def test_a_report_with_one_evaluation_shows_a_line_not_charts_in_chromium(run_dir, tmp_path):
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 6, "eval": {"fid": 300.0, "kid_mean": 0.4, "kid_std": None}, "eval_n": 500}) + "\n")
    write_report(run_dir)
    _, images, errors, text = render_in_chromium(run_dir / "report.html", tmp_path / "report.png")
    assert not errors, errors
    assert EVAL_ALT not in [alt for alt, *_ in images] and len(images) == 5 + 2
    assert "One evaluation during training: FID 300.00, KID 0.4000 (one subset) at step 6" in text


def test_compare_at_80_columns_short_table_with_n_and_side_by_side_grid(tiny, tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from ganzoo.cli import app

    tiny["output"].update(samples=0, grid_size=4)
    a = train(load_recipe(tiny), tmp_path / "gan", progress=False).run_dir
    b = train(load_recipe(tiny, ["objective.name=wgan_clip", "objective.n_critic=2", "data.resolution=32"]),
              tmp_path / "wgan_clip_with_a_rather_long_name-20250101-120000", progress=False).run_dir
    with (b / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 3, "eval": {"fid": 123.456789, "kid_mean": 0.0123456, "kid_std": 0.001},
                            "eval_n": 1000, "eval_n_real": 5000}) + "\n")
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "-o", str(tmp_path / "cmp.png")], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) <= 80, res.output
    head = next(line for line in lines if "objective" in line)
    assert all(col in head for col in ("run", "steps", "time", "img/s", "latest score"))
    row_b = next(line for line in lines if "FID 123.46 @1k" in line)
    assert "wgan_clip" in row_b and "…" in row_b and "3/3" in row_b  # a long run name abbreviated in the middle
    assert any("KID 0.0123 @1k" in line for line in lines)
    assert "bce" in res.output and "16px" in res.output and "32px" in res.output  # the details under the table
    img = Image.open(tmp_path / "cmp.png")
    assert img.height == 384 and img.width > 2 * 360  # two panels of one height
    res = CliRunner().invoke(app, ["compare", str(tmp_path)])
    assert res.exit_code == 2 and "not a ganzoo run directory" in res.output and "Traceback" not in res.output


def test_metrics_lines_that_are_not_json_are_named_and_a_torn_last_line_is_not(tmp_path, capsys):
    from ganzoo.rundir import read_lines as _read_lines

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\ngarbage\n[1, 2]\n{"step": 2}\n{"step": 3, "lo')  # a killed run's torn last line
    assert [line["step"] for line in _read_lines(path)] == [1, 2]
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "skipped 2 line(s)" in err and "(line 2, 3)" in err
    path.write_text('{"step": 1}\n{"step": 2, "lo')
    assert [line["step"] for line in _read_lines(path)] == [1]
    assert capsys.readouterr().err == ""
