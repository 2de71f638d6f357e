"""ganzoo: a plugin-based, modular GAN zoo.

Everything the CLI does is a plain call here::

    import ganzoo
    recipe = ganzoo.load_recipe("recipes/quick_toyfaces.yaml", ["train.steps=200"])
    result = ganzoo.train(recipe)
    G = ganzoo.load_generator(result.checkpoint)   # a run folder, a checkpoint or an exported model folder
    model = ganzoo.open_trained(result.run_dir)     # everything a trained run holds: .generator(), .critic(), .recipe
    images = ganzoo.generate(G, 16)            # uint8 (16, C, H, W)
    scores = ganzoo.evaluate(result.run_dir, n=1000)   # FID, KID, precision/recall + protocol
"""

from .version import __version__

from .errors import GanzooError
from .errors import quiet_interrupts_while_starting as _quiet_interrupts_while_starting
from .errors import require_current_folder as _require_current_folder

_require_current_folder()  # before torch loads: without a current folder it dies in its native libraries, unexplained
_quiet_interrupts_while_starting()  # the command only: Ctrl-C while torch loads is one line, not a traceback
from . import log as _log  # noqa: F401  (the plain stderr channel for the ganzoo logger)
from .hookspecs import hookimpl
from .compat import Architecture
from .interfaces import (Callback, Conditioning, Critic, CriticBuilder, DataReport, Dataset, Generator,
                         GeneratorBuilder, ImageShape, Objective, OptimizerSpec, Params, Regularizer)
from .labels import LabelSpace
from .registry import Component, Registry, get_registry
from .recipe import Recipe, load_recipe
from .checkpoint import compare_checkpoints, load_checkpoint, save_checkpoint
from .models import build_models, dcgan_init, pyramid
from .trained import Trained, load_generator, load_models, open_trained
from .observers import Run, StepRecord
from .data import load_data, load_dataset
from .sampling import class_grid, generate, write_grid, write_samples
from .conditional import ConditionalCritic, ConditionalGenerator
from .train import Interrupted, RunResult, resume, train
from .evaluation import evaluate

__all__ = [
    "Architecture", "Callback", "CriticBuilder", "GeneratorBuilder", "pyramid", "Component", "Conditioning", "ConditionalCritic", "ConditionalGenerator", "LabelSpace", "class_grid", "load_data", "Run", "StepRecord", "dcgan_init", "Interrupted", "evaluate", "Critic", "DataReport", "Dataset", "GanzooError", "Generator", "ImageShape", "Objective",
    "OptimizerSpec", "Params", "Recipe", "Regularizer", "Registry", "RunResult", "build_models", "generate", "get_registry",
    "hookimpl", "load_checkpoint", "load_dataset", "load_generator", "load_models", "load_recipe",
    "resume", "save_checkpoint", "compare_checkpoints", "train", "write_grid", "write_samples", "Trained", "open_trained",
]
