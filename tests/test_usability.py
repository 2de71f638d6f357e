"""Day-to-day use: progress in a terminal and in a log file, length on the command line, shipped recipes,
--version and completion, a compact `list`, a readable `show`, images that display in a notebook."""

import copy
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import ganzoo
from ganzoo.cli import app

from conftest import TINY, captured_log, copy_run

runner = CliRunner()

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def recipe_file(tmp_path, **train) -> Path:
    r = copy.deepcopy(TINY)
    r["output"].update(dir=str(tmp_path / "runs"), samples=0)
    r["train"].update(train)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(r))
    return path


def run_in_terminal(args, columns: int, timeout: float = 120) -> str:
    """Run a command in a pseudo-terminal of ``columns`` columns; everything it drew, escape codes removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(master)
    return ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def frames(text: str) -> list[str]:
    return [line for chunk in text.split("\n") for line in chunk.split("\r") if line.strip()]


def test_the_bar_in_a_terminal_keeps_total_and_eta(tmp_path, columns=120):
    """At 120 columns (the bar at 80 columns is on the screen of test_screens' run)."""
    recipe = recipe_file(tmp_path, steps=12, log_every=2)
    text = run_in_terminal([sys.executable, "-m", "ganzoo", "run", str(recipe)], columns)
    bars = [f for f in frames(text) if "/12" in f]
    assert bars, text
    assert all(len(f) <= columns for f in bars), [f for f in bars if len(f) > columns]
    assert any(re.search(r"\b\d+/12\b.*eta \d+:\d\d:\d\d", f) for f in bars), bars
    assert any("D " in f and "img/s" in f for f in bars), bars  # the losses too, where there is room


def test_a_redirected_run_logs_plain_progress_lines(tmp_path):
    recipe = recipe_file(tmp_path, steps=6, log_every=2)
    log = tmp_path / "train.log"
    with log.open("w") as f:
        done = subprocess.run([sys.executable, "-m", "ganzoo", "run", str(recipe)], stdout=f, stderr=f, timeout=300)
    assert done.returncode == 0
    lines = log.read_text().splitlines()
    progress = [line for line in lines if re.match(r"tiny step \d+/6 \(\d+%\)", line)]
    assert progress[0].startswith("tiny step 1/6") and progress[-1].startswith("tiny step 6/6 (100%)")
    assert all("elapsed" in line and "eta" in line for line in progress)
    assert any("D " in line and "img/s" in line for line in progress)
    assert not any("\r" in line or "\x1b" in line for line in lines)  # no bar drawn into the file


def test_plain_lines_come_every_few_seconds(tiny):
    from ganzoo.progress import ProgressBar

    tiny["train"]["steps"] = 5
    with captured_log() as messages:
        ganzoo.train(ganzoo.load_recipe(tiny), progress=ProgressBar(every_seconds=0))  # pytest's stderr: not a terminal
    assert [m.split()[2] for m in messages if m.startswith("tiny step")] == ["1/5", "2/5", "3/5", "4/5", "5/5"]


def test_length_on_the_command_line_just_works():
    epochs = Path(__file__).resolve().parents[1] / "recipes" / "dcgan_mnist.yaml"
    r = ganzoo.load_recipe(epochs, ["train.steps=300"])
    assert r.train.steps == 300 and r.train.epochs is None
    r = ganzoo.load_recipe(epochs.with_name("quick_toyfaces.yaml"), ["train.epochs=0.5"])
    assert r.train.epochs == 0.5 and r.train.steps is None


def test_resume_lengthens_a_finished_run_and_refuses_other_changes(tmp_path):
    recipe, run_dir = recipe_file(tmp_path, steps=3), tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(recipe), "--run-dir", str(run_dir), "-q"]).exit_code == 0
    res = runner.invoke(app, ["resume", str(run_dir), "-q"], env={"COLUMNS": "300"})
    assert res.exit_code == 2 and f"ganzoo resume {run_dir} --set train.steps=6" in res.output
    res = runner.invoke(app, ["resume", str(run_dir), "--set", "train.steps=6", "-q"])
    assert res.exit_code == 0, res.output
    assert ganzoo.load_checkpoint(run_dir).meta["step"] == 6
    res = runner.invoke(app, ["resume", str(run_dir), "--set", "train.batch_size=4", "-q"], env={"COLUMNS": "300"})
    assert res.exit_code == 2 and "a resume changes only the length, logging and outputs" in res.output


def test_recipes_lists_the_shipped_ones_and_run_and_init_take_a_name(tmp_path, monkeypatch):
    runner = CliRunner()
    shipped = {"quick_toyfaces", "dcgan_anime", "dcgan_mnist", "gan_mlp_mnist", "wgan_clip_mnist", "wgan_gp_anime", "anime_fast"}
    res = runner.invoke(app, ["recipes"], env={"COLUMNS": "250"})  # wide enough: a table, a row per recipe
    assert res.exit_code == 0
    rows = {line.split()[0]: line for line in res.output.splitlines() if line.strip()}
    assert shipped <= set(rows)
    assert "E4" in rows["dcgan_mnist"] and "bce" in rows["dcgan_mnist"] and "min" in rows["dcgan_mnist"]
    assert all(len(line) <= 250 for line in res.output.splitlines())
    for columns in ("120", "80", "40"):  # too narrow for every cell whole: a block per recipe, its name whole on the first line
        res = runner.invoke(app, ["recipes"], env={"COLUMNS": columns})
        assert res.exit_code == 0 and all(len(line) <= int(columns) for line in res.output.splitlines())
        blocks: dict[str, str] = {}
        for line in res.output.splitlines():
            if line.startswith("  "):
                blocks[name] += line
            elif line and not line.startswith("("):
                name = line.split()[0]
                blocks[name] = line
        assert shipped <= set(blocks), res.output
        assert "E4" in blocks["dcgan_mnist"] and "bce" in blocks["dcgan_mnist"] and "min" in blocks["dcgan_mnist"]
    assert "e0_wgan_gp" in runner.invoke(app, ["recipes", "--all"], env={"COLUMNS": "250"}).output
    # a shipped recipe by name
    res = runner.invoke(app, ["check", "quick_toyfaces", "--set", "train.steps=2"])
    assert res.exit_code == 0 and "name: quick_toyfaces" in res.output
    res = runner.invoke(app, ["run", "quick_toyfce"], env={"COLUMNS": "300"})
    assert res.exit_code == 2 and "did you mean 'quick_toyfaces'" in res.output
    # init copies one to edit, under its new name, and never overwrites without --force
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["init", "my_faces", "--from", "quick_toyfaces"])
    assert res.exit_code == 0 and ganzoo.load_recipe("my_faces.yaml").name == "my_faces"
    assert runner.invoke(app, ["init", "my_faces", "--from", "quick_toyfaces"]).exit_code == 2
    assert runner.invoke(app, ["init", "dcgan_mnist"]).exit_code == 0 and Path("dcgan_mnist.yaml").is_file()


def test_the_shipped_recipes_are_installed_with_the_package():
    from ganzoo.shipped import recipes_dir, shipped_recipes

    assert (recipes_dir() / "quick_toyfaces.yaml").is_file() and "e2_dcgan" in shipped_recipes()


def test_version_and_shell_completion(monkeypatch):
    runner = CliRunner()
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"ganzoo {ganzoo.__version__}"
    # the shell named, not detected: detection reads the parent processes, which differ between a terminal and CI
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    res = runner.invoke(app, ["--show-completion", "bash"])
    assert res.exit_code == 0 and "complete" in res.output, (res.output, repr(res.exception))


def test_list_is_compact_at_80_columns_and_show_prints_required_and_choices():
    runner = CliRunner()
    res = runner.invoke(app, ["list"], env={"COLUMNS": "80"})
    lines = res.output.splitlines()
    n = len(ganzoo.get_registry().all())
    assert res.exit_code == 0 and len(lines) <= n + 7 and all(len(line) <= 80 for line in lines)
    assert lines[0].strip() == "generators" and any(line.startswith("  wgan_gp ") for line in lines)
    verbose = runner.invoke(app, ["list", "-v"], env={"COLUMNS": "200"}).output
    assert "0.1.0" in verbose and "gp_weight" in verbose
    shown = " ".join(runner.invoke(app, ["show", "images"], env={"COLUMNS": "200"}).output.split())
    assert "(required)" in shown and "PydanticUndefined" not in shown
    shown = " ".join(runner.invoke(app, ["show", "dcgan"], env={"COLUMNS": "200"}).output.split())
    assert "conv | linear" in shown and "batch | none" in shown


def test_generated_images_display_in_a_notebook(tiny):
    G, _ = ganzoo.build_models(ganzoo.load_recipe(tiny))
    images = ganzoo.generate(G, 4)
    png = images._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and images.shape == (4, 3, 16, 16)
    assert images[0]._repr_png_()[:4] == b"\x89PNG" and images.float()._repr_png_() is None


@pytest.mark.parametrize("where", ["-o", "output.dir", "data.path"])
def test_a_home_folder_that_cannot_be_found_is_one_line(tmp_path, where):
    r = copy.deepcopy(TINY)
    r["output"]["dir"] = str(tmp_path / "runs")
    if where == "data.path":
        r["data"] = {"name": "images", "path": "~nosuchuser/faces", "resolution": 16}
    if where == "output.dir":
        r["output"]["dir"] = "~nosuchuser/runs"
    import yaml

    (tmp_path / "r.yaml").write_text(yaml.safe_dump(r))
    args = ["run", str(tmp_path / "r.yaml")] + (["--run-dir", "~nosuchuser/x"] if where == "-o" else [])
    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "cannot expand '~nosuchuser'" in res.output, res.output
    assert "Traceback" not in res.output and not isinstance(res.exception, RuntimeError)


def _cli(args, cwd=None, **env):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=120)


def test_a_width_no_output_fits_still_prints_everything(tmp_path, monkeypatch):
    from ganzoo.cli.common import sane_columns as _sane_columns

    for given, read in (("0", "80"), ("abc", "80"), ("-5", "80"), ("5", "40"), ("39", "40"), ("40", "40"), ("200", "200")):
        monkeypatch.setenv("COLUMNS", given)
        _sane_columns()
        assert __import__("os").environ["COLUMNS"] == read, given
    listed = _cli(["list"], COLUMNS="0")  # the consoles read COLUMNS when the command starts: a real process
    assert listed.returncode == 0 and "generators" in listed.stdout and "wgan_gp" in listed.stdout, listed
    error = _cli(["check", str(tmp_path / "nosuch.yaml")], COLUMNS="0")
    assert error.returncode == 2 and "error:" in error.stderr and "nosuch.yaml" in error.stderr, error


def test_a_deleted_current_folder_is_named_before_torch_loads(tmp_path):
    import os
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    script = (f"import os, runpy, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); sys.argv = ['ganzoo', 'list']; "
              "runpy.run_module('ganzoo', run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert res.returncode == 2 and "current folder no longer exists" in res.stderr and "MKL" not in res.stderr, res
    assert res.stderr.count("\n") == 1


def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "ganzoo", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.6)  # torch is loading
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the command finished before the signal arrived")
    assert proc.returncode == 130 and "Traceback" not in stderr and stderr.strip().count("\n") <= 1, stderr
    assert "aborted" in stderr


def test_outputs_that_are_folders_or_runs_are_named_plainly(finished_run, tmp_path):
    (tmp_path / "w.gif").mkdir()
    res = runner.invoke(app, ["interpolate", str(finished_run), "-o", str(tmp_path / "w.gif"), "--force"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "is a folder; give a file name" in res.output and ".tmp" not in res.output, res.output
    run = copy_run(finished_run, tmp_path / "run")
    res = runner.invoke(app, ["sample", str(run), "-n", "2", "-o", str(run)], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "is a run folder" in res.output and not (run / "00000.png").exists(), res.output
    res = runner.invoke(app, ["run", str(run / "recipe.yaml"), "--run-dir", str(run / "checkpoints" / "nested")], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "inside the run folder" in res.output and not (run / "checkpoints" / "nested").exists()
    res = runner.invoke(app, ["check", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "is a folder, not a recipe file" in res.output
    res = runner.invoke(app, ["eval", str(run / "samples" / "grid.png"), "-n", "4"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "single file" in res.output and "--ref" not in res.output, res.output


def test_ctrl_c_while_sampling_leaves_only_whole_images_and_says_how_many(finished_run, tmp_path, monkeypatch):
    from ganzoo import sampling

    real, calls = sampling._pil, []

    def interrupted_at_the_fifth(img):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(img)

    monkeypatch.setattr(sampling, "_pil", interrupted_at_the_fifth)
    res = runner.invoke(app, ["sample", str(finished_run), "-n", "12", "-o", str(tmp_path / "s")], env={"COLUMNS": "200"})
    assert res.exit_code == 130 and "4 of 12 images were written" in res.output, res.output
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == [f"{i:05d}.png" for i in range(4)]  # no temporary, no torn file
    from PIL import Image as I

    for f in files:
        I.open(tmp_path / "s" / f).load()
