import contextlib
import copy
import logging
import os
from pathlib import Path

import pytest
import torch

# The CLI's rich consoles are made when ganzoo.cli is imported, and a Console made while COLUMNS is set keeps that
# width for good; tests give each CliRunner call its own COLUMNS, so none may be set when the consoles are made
# (pytest-xdist's workers inherit one).
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ANIME_ZIP = SHARED_DATA / "anime-faces-64.zip"
MNIST_ROOT = SHARED_DATA / "mnist"

needs_anime = pytest.mark.skipif(not ANIME_ZIP.is_file(), reason=f"real anime data not found at {ANIME_ZIP}")
needs_mnist = pytest.mark.skipif(not (MNIST_ROOT / "MNIST" / "raw").is_dir(), reason=f"real MNIST not found at {MNIST_ROOT}")

TINY = {
    "name": "tiny",
    "seed": 1,
    "data": {"name": "toyfaces", "size": 64, "resolution": 16, "channels": 3},
    "generator": {"name": "dcgan", "latent_dim": 8, "base_channels": 8},
    "critic": {"name": "dcgan", "base_channels": 8},
    "objective": {"name": "bce"},
    "train": {"batch_size": 8, "steps": 3, "log_every": 1, "threads": 1},
    "output": {"samples": 10, "tensorboard": False},
}


@pytest.fixture
def tiny(tmp_path):
    """A tiny recipe dict (toyfaces 16 px, 8-channel nets) writing into tmp_path."""
    r = copy.deepcopy(TINY)
    r["output"]["dir"] = str(tmp_path / "runs")
    return r


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _data_cache(tmp_path_factory):
    """Tests never touch ~/.cache: one data cache for the session (so real data decodes once). The ONNX export of
    the evaluation network (about 7 s) is made once for all of the session's workers, not once per worker."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GANZOO_CACHE_DIR", str(tmp_path_factory.mktemp("data-cache")))
    from ganzoo import features

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # pytest-N/ holds every worker's folder
    mp.setattr(features, "_export_onnx", _shared_onnx_export(features._export_onnx, shared / "onnx-export"))
    yield
    mp.undo()


def _shared_onnx_export(export, folder: Path):
    """``features._export_onnx`` that exports a network once into ``folder`` (under a lock) and copies it from there."""
    import fcntl

    def shared_export(net, target: Path) -> bytes:
        folder.mkdir(parents=True, exist_ok=True)
        kept = folder / target.name
        with open(folder / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not kept.is_file():
                kept.write_bytes(export(net, target))
        model = kept.read_bytes()
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(model)
        return model

    return shared_export


@contextlib.contextmanager
def captured_log():
    """The ganzoo logger's messages while the block runs (warnings prefixed 'warning: ', as the plain channel shows them)."""
    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(("warning: " if record.levelno >= logging.WARNING else "") + record.getMessage())

    handler = Collect()
    logger = logging.getLogger("ganzoo")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def build_net(role: str, name: str, shape, initialize: bool = False, **params):
    """A built-in generator or critic component built for ``shape`` with ``params`` (the registry's way)."""
    import ganzoo

    comp = ganzoo.get_registry().get(role, name)
    builder = comp.create(comp.cls.Params(**params))
    net = builder.build(shape)
    if initialize:
        builder.initialize(net)
    return net


# -- a finished tiny run, and a tiny stand-in for the Inception network --------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One tiny finished run (toyfaces 16 px), shared by the tests of a module that only read it or copy it."""
    import ganzoo

    r = copy.deepcopy(TINY)
    base = tmp_path_factory.mktemp("finished_run")
    r["output"].update(dir=str(base / "runs"), samples=4)
    return ganzoo.train(ganzoo.load_recipe(r), base / "run", progress=False).run_dir


def copy_run(run, to):
    import shutil

    shutil.copytree(run, to)
    return to


def tiny_feature_network(tmp_path, features: int = 2048):
    """A TorchScript stand-in for the Inception network (299x299 in, ``features`` out): for tests of what is scored,
    not of the network. Fewer features make FID's matrix square root instant (2048: about 3 s)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 9, stride=30)
            self.fc = torch.nn.Linear(4, features)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    path = tmp_path / f"tiny-{features}.pt"
    torch.jit.script(Net().eval()).save(str(path))
    return str(path)


def write_faces(folder, n=6, size=8):
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 30 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def write_recipe(tmp_path, recipe) -> str:
    import yaml

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def registry_with(package: str = "author-pkg", name: str = "author_plugin", **hooks):
    """A registry of the built-ins and one plugin of ``package`` whose hooks register the given classes:
    ``registry_with(register_objectives=[MyLoss])`` (as ``add_plugin`` takes a notebook's own plugin)."""
    import ganzoo

    class Plugin:
        pass

    for hook, classes in hooks.items():
        def impl(register, classes=classes):
            for cls in classes:
                register(cls)
        setattr(Plugin, hook, staticmethod(ganzoo.hookimpl(impl, specname=hook)))
    reg = ganzoo.Registry().load_plugins()
    reg.add_plugin(Plugin, name=name, package=package)
    return reg

