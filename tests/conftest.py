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
    """Tests never touch ~/.cache: one data cache for the session (so real data decodes once)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GANZOO_CACHE_DIR", str(tmp_path_factory.mktemp("data-cache")))
    yield
    mp.undo()


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
