"""Same weights before and after a change to the loop: 20 steps of the E0/E4 recipes (and two more) on a fixed seed.

    python bench/loop_equivalence.py bench/results/loop_equivalence_after.json
    git stash; git checkout OLD; python bench/loop_equivalence.py before.json; ...   # the same on the old code

Each case trains 20 generator steps (threads 2, no samples, no TensorBoard) and records the sha256 of the final
checkpoint's generator, critic and EMA weights and the last logged losses. Two runs agree when the digests match.
The script only uses what both versions of the API share: load_recipe, to_dict and train(progress=False).
"""

import hashlib
import json
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

import ganzoo

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CASES = {
    "e0_wgan_gp": ("recipes/reference/e0_wgan_gp.yaml", [f"data.path={DATA}/anime-faces-64.zip"]),
    "dcgan_mnist": ("recipes/dcgan_mnist.yaml", [f"data.root={DATA}/mnist"]),
    "gan_mlp_mnist": ("recipes/gan_mlp_mnist.yaml", [f"data.root={DATA}/mnist"]),
    "wgan_clip_mnist": ("recipes/wgan_clip_mnist.yaml", [f"data.root={DATA}/mnist"]),
    "anime_fast": ("recipes/anime_fast.yaml", [f"data.path={DATA}/anime-faces-64.zip"]),  # hinge + SN + EMA
    "e1_dcgan_smooth": ("recipes/reference/e1_dcgan_smooth.yaml", [f"data.path={DATA}/anime-faces-64.zip"]),
    "cgan_mnist": ("recipes/cgan_mnist.yaml", [f"data.root={DATA}/mnist"]),  # conditional: labels, concat, mismatch term
}


def digest(tensors: dict, prefix: str) -> str:
    names = sorted(k for k in tensors if k.startswith(prefix + "."))
    return hashlib.sha256(b"".join(tensors[k].contiguous().numpy().tobytes() for k in names)).hexdigest()[:16]


def main(out: Path, names: list[str]) -> None:
    results = {}
    for name in names or CASES:
        path, overrides = CASES[name]
        raw = ganzoo.load_recipe(ROOT / path, overrides).to_dict()
        raw["train"].update(epochs=None, steps=20, log_every=5, checkpoint_every=None, threads=2, time_limit=None, keep_every=None)
        raw["output"].update(samples=0, tensorboard=False)
        raw["eval"]["every"] = None
        with tempfile.TemporaryDirectory() as tmp:
            raw["output"]["dir"] = tmp
            result = ganzoo.train(ganzoo.load_recipe(raw), Path(tmp) / "run", progress=False)
            tensors = load_file(str(result.checkpoint))
        results[name] = {"digests": {k: digest(tensors, k) for k in ("generator", "critic", "generator_ema")},
                         "final": {k: result.metrics[k] for k in ("d_loss", "g_loss", "penalty")}}
        print(name, results[name], flush=True)
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
