"""Is ganzoo ready for a GPU? A short recipe on CUDA in each precision and memory mode, and under torchrun.

    python bench/gpu_check.py                                   # anime_fast's nets on toyfaces 64 px, batch 64
    python bench/gpu_check.py --recipe r3gan_anime --data path/to/anime-faces.zip --out bench/results/gpu_check.json

Modes, each a fresh run of the same recipe (``train.*`` overrides):

- ``fp32``: fp32, contiguous (NCHW) tensors
- ``fp32+cl``: fp32, channels-last (the recipes' default)
- ``bf16+cl``: autocast bfloat16
- ``fp16+cl``: autocast float16 with a gradient scaler per optimizer
- ``fp32+cl+compile``: torch.compile on both networks (``train.compile``); a recipe whose nets or penalties do not
  compile is reported as failed with the error's first line
- ``torchrun fp32+cl``: under ``torchrun --standalone --nproc_per_node=1``: an all_reduce over nccl (the process
  group ganzoo joins on CUDA), then the fp32+cl run (ganzoo wraps in DDP from 2 processes on; a world of 1 trains
  as one process, which this row shows works under torchrun's environment)

For each: img/s over the steps after ``--warmup`` (the device synchronized at both ends; compile time and cuDNN's
first-call tuning left out), and the time to the first step. Resume: ``--resume-steps`` K steps, then K more from
that checkpoint, against 2K steps straight, with deterministic algorithms on (``torch.use_deterministic_algorithms``,
``CUBLAS_WORKSPACE_CONFIG``); "exact" means every weight of G, its average and the critic is bit-identical. A second
straight run tells whether the mode itself is deterministic (if two straight runs differ, a resume cannot be
compared bit for bit, and the largest difference is reported instead). The compile mode's resume is checked only with
``--resume-compile`` (three more compilations).

Without CUDA it prints one line and exits with status 1: nothing here is a GPU check on a CPU (tests/test_device.py
checks what can be checked there). ``--device cpu`` runs the same steps on the CPU anyway, as a test of this script
(bf16/fp16 then train in fp32, torchrun uses gloo: its numbers are no GPU's). Exit status 2: a mode failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.distributed as dist

import ganzoo
from ganzoo.shipped import resolve

ROOT = Path(__file__).resolve().parents[1]

MODES = {
    "fp32": {"precision": "fp32", "channels_last": False},
    "fp32+cl": {"precision": "fp32", "channels_last": True},
    "bf16+cl": {"precision": "bf16", "channels_last": True},
    "fp16+cl": {"precision": "fp16", "channels_last": True},
    "fp32+cl+compile": {"precision": "fp32", "channels_last": True, "compile": True},
}
TORCHRUN_MODE = "fp32+cl"


def recipe_dict(args, mode: str, steps: int, runs: Path) -> dict:
    raw = ganzoo.load_recipe(resolve(args.recipe)).to_dict()
    res = raw["data"]["resolution"]
    if args.data:
        raw["data"] = {"name": "images", "path": str(args.data), "resolution": res, "channels": raw["data"]["channels"]}
    else:  # procedural faces: nothing to download, nothing to carry to the GPU machine
        raw["data"] = {"name": "toyfaces", "size": 4096, "resolution": res, "channels": raw["data"]["channels"]}
    raw["train"].update(MODES[mode], device=args.device, steps=steps, epochs=None, batch_size=args.batch_size, time_limit=None,
                        log_every=10, checkpoint_every=None)
    raw["output"].update(dir=str(runs), samples=0, tensorboard=False, grid_every=None)
    raw["eval"]["every"] = None
    raw["name"] = "gpu_check_" + mode.replace("+", "_")
    return raw


class Clock(ganzoo.Callback):
    """Times the steps after ``warmup`` (synchronizing the device at both ends) and the first step; notes the process
    group's backend when there is one."""

    def __init__(self, warmup: int, device: str = "cuda"):
        self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        self.warmup, self.t0, self.t_first, self.t_start, self.t_end = warmup, None, None, None, None
        self.step0 = self.step1 = self.images_per_step = 0
        self.backend = None

    def on_start(self, run):
        if dist.is_available() and dist.is_initialized():
            self.backend = f"{dist.get_backend()} (DDP, world size {dist.get_world_size()})"
        self.sync()
        self.t_start = time.perf_counter()

    def on_step(self, run, record):
        if run.step == run.start + 1:
            self.sync()
            self.t_first = time.perf_counter() - self.t_start
        if run.step == run.start + self.warmup:
            self.sync()
            self.t0, self.step0 = time.perf_counter(), run.step
        if run.step == run.total:
            self.sync()
            self.t_end, self.step1, self.images_per_step = time.perf_counter(), run.step, run.images_per_step

    def img_per_s(self) -> float | None:
        if self.t0 is None or self.t_end is None or self.step1 <= self.step0:
            return None
        return (self.step1 - self.step0) * self.images_per_step / (self.t_end - self.t0)


def speed(args, mode: str, runs: Path) -> dict:
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = args.device == "cuda"
    clock = Clock(args.warmup, args.device)
    result = ganzoo.train(ganzoo.load_recipe(recipe_dict(args, mode, args.steps, runs)), runs / f"speed-{mode}", progress=False,
                          callbacks=[clock])
    torch.backends.cudnn.benchmark = False
    out = {"img_per_s": round(clock.img_per_s(), 1) if clock.img_per_s() else None, "first_step_s": round(clock.t_first, 2),
           "steps": result.steps, "timed_steps": clock.step1 - clock.step0}
    if clock.backend:
        out["backend"] = clock.backend
    return out


def _weights(checkpoint) -> dict:
    t = ganzoo.load_checkpoint(checkpoint).tensors
    return {k: v for k, v in t.items() if k.startswith(("generator.", "generator_ema.", "critic."))}


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


def resume_check(args, mode: str, runs: Path) -> dict:
    torch.use_deterministic_algorithms(True, warn_only=True)
    k = args.resume_steps
    try:
        straight = [ganzoo.train(ganzoo.load_recipe(recipe_dict(args, mode, 2 * k, runs)), runs / f"straight{i}-{mode}",
                                 progress=False) for i in (1, 2)]
        ganzoo.train(ganzoo.load_recipe(recipe_dict(args, mode, k, runs)), runs / f"resumed-{mode}", progress=False)
        resumed = ganzoo.train(ganzoo.load_recipe(recipe_dict(args, mode, 2 * k, runs)), runs / f"resumed-{mode}",
                               resume=runs / f"resumed-{mode}", progress=False)
    finally:
        torch.use_deterministic_algorithms(False)
    a, b, c = (_weights(r.checkpoint) for r in (*straight, resumed))
    deterministic = all(torch.equal(a[x], b[x]) for x in a)
    exact = all(torch.equal(a[x], c[x]) for x in a)
    return {"resume_exact": exact, "straight_runs_identical": deterministic, "resume_max_diff": _max_diff(a, c),
            "straight_max_diff": _max_diff(a, b), "resume_steps": f"{k} + {k} vs {2 * k}"}


def check_mode(args, mode: str, runs: Path) -> dict:
    row = {"mode": mode}
    try:
        row.update(speed(args, mode, runs))
        if MODES[mode].get("compile") and not args.resume_compile:
            row["resume_note"] = "not checked (each compiled run compiles again; --resume-compile checks it)"
        else:
            row.update(resume_check(args, mode, runs))
    except Exception as exc:  # a mode that fails is a result, not the end of the check
        row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        if args.verbose:
            traceback.print_exc()
    return row


def torchrun_row(args, runs: Path) -> dict:
    """The fp32+cl speed run as one torchrun process (DDP with nccl), through this script's --worker mode."""
    out = runs / "torchrun.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", str(Path(__file__).resolve()),
           "--worker", str(out), "--recipe", args.recipe, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--batch-size", str(args.batch_size), "--device", args.device, "--runs", str(runs / "torchrun")] + (["--data", str(args.data)] if args.data else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.torchrun_timeout)
    row = {"mode": f"torchrun {TORCHRUN_MODE}"}
    if proc.returncode != 0 or not out.is_file():
        lines = (proc.stderr + proc.stdout).strip().splitlines()
        errors = [line.strip() for line in lines if "Error" in line and "elastic" not in line] or lines[-1:]
        if args.verbose:
            print(proc.stderr, file=sys.stderr)
        return {**row, "error": f"torchrun exit {proc.returncode}: {errors[-1] if errors else ''}"}
    return {**row, **json.loads(out.read_text())}


def worker(args) -> int:
    """Inside torchrun: a collective over the device's backend (nccl on CUDA), then the speed run of TORCHRUN_MODE;
    rank 0 writes its numbers. ganzoo joins a process group and wraps the nets in DDP only from 2 processes on (a
    world of 1 trains as a single process), so the collective is what checks nccl itself at --nproc_per_node=1."""
    backend = "nccl" if args.device == "cuda" else "gloo"
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if args.device == "cuda" else torch.device("cpu")
    dist.init_process_group(backend=backend)
    x = torch.full((4,), float(dist.get_rank() + 1), device=device)
    dist.all_reduce(x)
    expected = sum(range(1, dist.get_world_size() + 1))
    collective = f"{dist.get_backend()} all_reduce over {dist.get_world_size()} process(es): " + \
        ("ok" if torch.all(x == expected) else f"wrong ({x.tolist()}, expected {expected})")
    dist.destroy_process_group()
    numbers = speed(args, TORCHRUN_MODE, Path(args.runs))
    numbers["collective"] = collective
    numbers.setdefault("backend", "none: ganzoo trains a world of 1 as a single process (DDP from 2 processes)")
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.worker).write_text(json.dumps(numbers))
    return 0


def machine(device: str) -> dict:
    gpu = device == "cuda"
    return {"gpu": torch.cuda.get_device_name() if gpu else f"none (CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
            "capability": ".".join(map(str, torch.cuda.get_device_capability())) if gpu else "-",
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if gpu else None, "torch": torch.__version__,
            "ganzoo": ganzoo.__version__, "platform": platform.platform(), "python": platform.python_version()}


def table(rows: list[dict]) -> str:
    lines = ["| mode | img/s | first step (s) | resume exact | two straight runs identical | max diff resumed / straight |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r and "img_per_s" not in r:
            lines.append(f"| {r['mode']} | failed: {r['error']} | | | | |")
            continue
        exact = {True: "yes", False: "no", None: "-"}[r.get("resume_exact")]
        same = {True: "yes", False: "no", None: "-"}[r.get("straight_runs_identical")]
        diffs = f"{r['resume_max_diff']:.2e} / {r['straight_max_diff']:.2e}" if "resume_max_diff" in r else "-"
        error = f" ({r['error']})" if "error" in r else ""
        lines.append(f"| {r['mode']} | {r.get('img_per_s')} | {r.get('first_step_s')} | {exact}{error} | {same} | {diffs} |")
    notes = [f"{r['mode']}: {r['collective']}; training: {r['backend']}" for r in rows if "collective" in r]
    notes += [f"{r['mode']}: resume {r['resume_note']}" for r in rows if "resume_note" in r]
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="anime_fast", help="a shipped recipe's name or a recipe file")
    ap.add_argument("--data", type=Path, default=None, help="a folder or zip of images (default: procedural toy faces)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=60, help="steps of each speed run")
    ap.add_argument("--warmup", type=int, default=15, help="steps left out of the img/s (compilation, cuDNN tuning)")
    ap.add_argument("--resume-steps", type=int, default=5, help="K: K + K resumed steps against 2K straight")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--resume-compile", action="store_true", help="also check resume in the compile mode (3 more compiles)")
    ap.add_argument("--no-torchrun", action="store_true")
    ap.add_argument("--torchrun-timeout", type=int, default=300)
    ap.add_argument("--runs", type=Path, default=None, help="run folders (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=None, help="JSON with every number and the machine")
    ap.add_argument("--verbose", action="store_true", help="tracebacks of failed modes")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a test of this script, not a GPU check")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.steps <= args.warmup:
        ap.error("--steps must be larger than --warmup")
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}): "
              "nothing checked; run it on a machine with a GPU", file=sys.stderr)
        return 1
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS for the resume check
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        runs = Path(args.runs or tmp)
        rows = []
        for mode in args.modes:
            rows.append(check_mode(args, mode, runs))
            print(f"{mode}: {json.dumps(rows[-1])}", flush=True)
        if not args.no_torchrun:
            rows.append(torchrun_row(args, runs))
            print(f"torchrun: {json.dumps(rows[-1])}", flush=True)
    info = machine(args.device)
    print(f"\n{info['gpu']} (capability {info['capability']}), CUDA {info['cuda']}, torch {info['torch']}; recipe {args.recipe}, "
          f"batch {args.batch_size}, {args.steps} steps ({args.warmup} warm-up), data {args.data or 'toyfaces'}\n")
    print(table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": info, "recipe": args.recipe, "batch_size": args.batch_size, "steps": args.steps,
                                        "warmup": args.warmup, "data": str(args.data or "toyfaces"), "rows": rows}, indent=2) + "\n")
    failed = [r["mode"] for r in rows if "error" in r]
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
