"""A trained generator outside ganzoo: ONNX, TorchScript, torch.export, or a model folder with a model card.

- ``onnx`` / ``torchscript`` / ``pt2``: one file, inputs ``z`` ``(N, latent_dim)`` float32 (and ``labels`` ``(N, A)`` int64
  class indices for a conditional generator), output ``images`` ``(N, C, H, W)`` float32 in [-1, 1]; the batch
  size is dynamic. Each export is checked against the torch generator on fixed latents at another batch size
  than the one traced (ONNX Runtime / torch.jit / torch.export); a difference above 1e-4 is refused. A negative class
  index fails in every format, as one past the last does (ONNX's lookup would wrap it round to the last class).
  ``pt2`` is ``torch.export``'s format (``torch.export.load(path).module()(z)``), the successor of TorchScript.
  A generator with noise inputs (StyleGAN-style) is exported with its noise at zero (deterministic; what
  StyleGAN calls noise mode "none"), and checked against itself run the same way.
- ``folder``: the Hugging Face layout: ``model.safetensors`` (the generator), ``config.json`` (how to rebuild it:
  component, parameters, image shape, latent size, label names, the resolved recipe), ``README.md`` (a model
  card: YAML metadata for the Hub, scores with their N and protocol, a sample grid, the recipe, the training
  budget and machine) and ``samples.png``. ``ganzoo.load_generator(folder)`` and every sampling command read it;
  ``huggingface_hub.upload_folder(repo_id=..., folder_path=folder)`` publishes it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import platform
from dataclasses import dataclass
import zipfile
from pathlib import Path

import torch

from .errors import GanzooError
from .fileio import atomic_write, last_part
from .metrics import Scores
from .rundir import ModelFiles, RunFiles, guard_output, is_model_folder, writing_into
from .trained import Trained, open_trained
from .version import INSTALL_COMMAND, INSTALL_NOTE, __version__

# Hub dataset ids of the data sets ganzoo reads by name (a card's ``datasets:``); image folders have none
HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion_mnist": "zalando-datasets/fashion_mnist"}

FORMATS = ("onnx", "torchscript", "pt2", "folder")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "pt2": ".pt2", "folder": ""}
NEGATIVE_LABEL_SHIFT = 2**40  # added to negative labels in exported graphs: out of range, so the lookup fails
TOLERANCE = 1e-4


@dataclass
class Exported:
    """What ``export`` wrote: the file or folder, its format, and the largest difference from the torch generator
    on the check's latents (None for a folder: it loads back into the same torch generator)."""

    path: Path
    format: str
    max_difference: float | None
    noise_zeroed: bool
    check_batch: int


class _Images(torch.nn.Module):
    """The generator as an exported graph sees it: ``(z[, labels]) -> images`` clamped to [-1, 1]."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator
        space = getattr(generator, "labels", None)
        self.classes = [len(c) for c in space.classes] if space is not None else []
        for a, k in enumerate(self.classes):  # class index -> itself: a lookup that fails for an index out of range
            self.register_buffer(f"classes_{a}", torch.arange(k), persistent=False)

    def forward(self, z, labels=None):
        if labels is not None:  # every format refuses a class out of range (ONNX's one-hot would give zeros, its
            labels = labels + (labels < 0).to(labels.dtype) * NEGATIVE_LABEL_SHIFT  # lookups wrap negatives round)
            labels = torch.stack([getattr(self, f"classes_{a}")[labels[:, a]] for a in range(len(self.classes))], 1)
        x = self.generator(z) if labels is None else self.generator(z, labels)
        return x.clamp(-1.0, 1.0)


class _NoNoise(torch.overrides.TorchFunctionMode):
    """Inside it, ``torch.randn``/``randn_like``/``normal`` give zeros: noise inputs switched off (and traced as zeros)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.randn:
            kwargs.pop("generator", None)
            return torch.zeros(*args, **kwargs)
        if func in (torch.randn_like, torch.Tensor.normal_):
            return torch.zeros_like(args[0]) if func is torch.randn_like else args[0].zero_()
        return func(*args, **kwargs)


def has_noise(generator, z, y) -> bool:
    """Whether the generator's output depends on random draws besides its inputs (noise inputs)."""
    from . import rng

    with torch.no_grad():
        with rng.isolated(0):
            a = generator(z) if y is None else generator(z, y)
        with rng.isolated(1):
            b = generator(z) if y is None else generator(z, y)
    return not torch.equal(a, b)


def check_inputs(generator, n: int, seed: int = 0):
    """Fixed latents (and label codes) for the export and its check."""
    from .sampling import latents

    z = latents(n, generator.latent_dim, seed, None, generator).float()
    space = getattr(generator, "labels", None)
    y = None if space is None else space.draw(n, seed, {}).long()
    return z, y


def export(source, format: str, output=None, ema: bool = True, force: bool = False, half: bool = False,
           name: str | None = None) -> Exported:
    """Export the generator of ``source`` (a run folder, a checkpoint or a model folder: ``ganzoo.trained``) as
    ``format`` (``onnx``, ``torchscript``, ``pt2``, ``folder``) to ``output`` (default: ``RUN/export/generator.onnx``, ``.pt``, ``.pt2``
    or ``RUN/export/model/``). A folder's weights are stored in fp16 with ``half`` (half the size; loaded back
    into fp32), and ``name`` (default: the folder's name) is what its config and card call the model."""
    if half and format != "folder":
        raise GanzooError(f"--half stores a model folder's weights in fp16; {format} files keep fp32")
    if name is not None and format != "folder":
        raise GanzooError(f"--name names a model folder (its config and card); a {format} file is named by -o")
    if name is not None and not re.fullmatch(ModelFiles.NAME, name):
        raise GanzooError(f"--name {name!r}: a model name is letters, digits, '_', '.' and '-', starting with a letter or "
                          "digit (it becomes a Hub repository name and a folder name)")
    if format not in FORMATS:
        raise GanzooError(f"--format {format}: choose one of {', '.join(FORMATS)}")
    trained = open_trained(source)
    default = f"{RunFiles.EXPORTS}/{'model' if format == 'folder' else 'generator' + SUFFIX[format]}"
    output = trained.output(output, default, "the export")
    other = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript", ".pt2": "pt2"}.get(Path(output).suffix.lower())
    if format != "folder" and other and other != format:
        raise GanzooError(f"-o {output}: a {Path(output).suffix} name says {other}, but --format is {format}: name the file "
                          f"{Path(output).with_suffix(SUFFIX[format]).name}, or choose --format {other}")
    if trained.kind == "model" and Path(output).resolve() == Path(trained.source).resolve():
        raise GanzooError(f"-o {output} is the model folder being exported: give another folder")
    _may_write(output, format, force)
    generator = trained.generator(ema)
    if format == "folder":
        return write_folder(generator, trained, output, ema, half=half, name=name)
    return _export_graph(generator, format, output, onnx_metadata(trained, generator, ema) if format == "onnx" else None, force)


def _may_write(output: Path, format: str, force: bool) -> None:
    """Refuse what an export must not write over: anything without ``--force``; a folder where a file goes; and, for a
    model folder, any folder but an empty one or a model folder an export wrote (nothing is ever deleted: its files
    are written over)."""
    if format != "folder":
        if output.is_dir() and not output.is_symlink():
            raise GanzooError(f"-o {output} is a folder: give a file name, e.g. {output / ('generator' + SUFFIX[format])}")
        guard_output(output, force, hint="pick another name with -o")
        return
    if not output.exists() and not output.is_symlink():
        return
    if not output.is_dir():
        raise GanzooError(f"-o {output} is a file: a model folder goes into a new or empty folder (nothing was written)")
    if not any(output.iterdir()):
        return
    other = sorted(p.name for p in output.iterdir() if p.name not in ModelFiles.NAMES)
    if other or not is_model_folder(output):
        raise GanzooError(f"-o {output} holds {', '.join(other[:5]) or 'files'}{' ...' if len(other) > 5 else ''}, which an "
                          "export does not write: a model folder goes into an empty or new folder, or replaces (--force) "
                          "one that an export wrote; nothing was deleted")
    if not force:
        raise GanzooError(f"{output} exists: pick another name with -o or pass --force to replace it")


def _export_graph(generator, format: str, output: Path, metadata: dict[str, str] | None = None, force: bool = False) -> Exported:
    from . import rng

    generator = generator.float().eval()
    wrapped = _Images(generator).eval()
    z2, y2 = check_inputs(generator, 2, seed=1)
    z, y = check_inputs(generator, 5, seed=0)  # another batch size than the traced one: the batch is dynamic
    noise = has_noise(generator, z2, y2)
    args2 = (z2,) if y2 is None else (z2, y2)
    args = (z,) if y is None else (z, y)
    quiet = _NoNoise() if noise else contextlib.nullcontext()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.export.tmp")  # two exports of one file: each its own, the last kept
    try:
        with torch.no_grad(), rng.isolated(0), quiet:
            expected = wrapped(*args).numpy()
            if format == "onnx":
                _onnx(wrapped, args2, y2 is not None, tmp, metadata)
            elif format == "pt2":
                _pt2(wrapped, args2, tmp)
            else:
                _torchscript(wrapped, args2, tmp)
        try:
            got = _run_exported(format, tmp, args)
        except Exception as exc:  # the graph runs at the traced batch only: a size baked in by the architecture
            raise GanzooError(f"the {format} export does not run at a batch of {len(z)} (traced at 2): the generator's code fixes "
                              f"a size from its input (len(z) or a Python int in a view/reshape; use -1 there). "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from exc
        diff = float(abs(got - expected).max())
        if not diff <= TOLERANCE:
            raise GanzooError(f"the {format} export differs from the torch generator by {diff:.3g} (more than {TOLERANCE:g}) "
                              "on the check's latents: not written")
        if force:
            tmp.replace(output)
        else:  # created only if still absent: another command's file, written meanwhile, is never replaced
            try:
                os.link(tmp, output)
            except FileExistsError:
                raise GanzooError(f"{output} was written by another command while this export ran: not replaced "
                                  "(pass --force to replace it)") from None
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(output, format, diff, noise, len(z))


def onnx_metadata(trained: Trained, generator, ema: bool) -> dict[str, str]:
    """What an ONNX file says of itself (``metadata_props``, read with onnxruntime's ``get_modelmeta().custom_metadata_map``):
    the latent size, the output's range and shape, the labels' attributes and classes, how ganzoo draws z from a seed,
    which weights these are, the recipe and ganzoo's version."""
    s = generator.shape
    labels = getattr(generator, "labels", None)
    return {"ganzoo_version": __version__, "format": "ganzoo-generator-onnx", "recipe": trained.recipe.name,
            "generator": trained.recipe.generator.name, "latent_dim": str(generator.latent_dim),
            "image_shape": json.dumps([s.channels, s.resolution, s.resolution]), "output_range": "[-1, 1]",
            "to_uint8": "round((images + 1) * 127.5), clipped to [0, 255]",
            "labels": json.dumps(None if labels is None else labels.to_dict()),
            "labels_input": "none" if labels is None else "int64 (N, attributes): class indices in the order of labels",
            "seed_convention": "z = torch.randn(N, latent_dim, generator=torch.Generator().manual_seed(seed)); "
                               "`ganzoo sample --save-latents` writes the z of each image to latents.npy",
            "weights": "ema" if trained.uses_ema(ema) else "raw", "step": str(trained.step)}


def _onnx(wrapped, args, conditional: bool, path: Path, metadata: dict[str, str] | None = None) -> None:
    import warnings

    names = ["z", "labels"] if conditional else ["z"]
    axes = {name: {0: "batch"} for name in names + ["images"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notes
        try:
            torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=["images"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
        except OSError as exc:  # the disk, not the model: no other format would help
            raise GanzooError(f"could not write {path.name} in {path.parent}: {exc.strerror or exc}") from exc
        except Exception as exc:  # an operator ONNX lacks, a shape the tracer cannot follow: one line naming it
            raise GanzooError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                              " (try --format torchscript)") from exc
    if metadata:
        import onnx

        model = onnx.load(str(path))
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(path))


def _torchscript(wrapped, args, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(wrapped, args, check_trace=False)
        except Exception as exc:
            raise GanzooError(f"TorchScript export failed: {type(exc).__name__}: {exc}") from exc
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's note that TorchScript is deprecated
        torch.jit.save(traced, buffer)
    atomic_write(path, without_debug_files(buffer.getvalue()))


def _pt2(wrapped, args, path: Path) -> None:
    """``torch.export``'s program (load: ``torch.export.load(path).module()``), batch dynamic, without the source
    lines of the exporting machine (each node's stack trace)."""
    batch = torch.export.Dim("batch", min=1, max=2**20)
    try:
        program = torch.export.export(wrapped, args, dynamic_shapes=tuple({0: batch} for _ in args), strict=False)
    except Exception as exc:
        raise GanzooError(f"torch.export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                          " (try --format torchscript or onnx)") from exc
    for node in program.graph.nodes:
        node.meta.pop("stack_trace", None)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    atomic_write(path, buffer.getvalue())


def without_debug_files(archive: bytes) -> bytes:
    """A TorchScript archive without its ``*.debug_pkl`` members: they hold the source file paths of the exporting
    machine (torch.jit.load does not need them; an error inside the graph then names no source line)."""
    source = zipfile.ZipFile(io.BytesIO(archive))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as kept:
        for info in source.infolist():
            if not info.filename.endswith(".debug_pkl"):
                kept.writestr(info, source.read(info))
    return out.getvalue()


def _run_exported(format: str, path: Path, args):
    """The exported file's output on ``args``, run by ONNX Runtime or torch.jit (as a user elsewhere would)."""
    if format == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {"z": args[0].numpy()}
        if len(args) > 1:
            feeds["labels"] = args[1].numpy()
        return session.run(["images"], feeds)[0]
    import warnings

    if format == "pt2":
        with torch.no_grad():
            return torch.export.load(str(path)).module()(*args).numpy()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's note that TorchScript is deprecated: not the user's concern here
        return torch.jit.load(str(path), map_location="cpu")(*args).numpy()


# -- model folders --------------------------------------------------------------------------------------------------
def write_folder(generator, trained: Trained, output: Path, ema: bool, half: bool = False, name: str | None = None) -> Exported:
    recipe = trained.recipe
    weights = "ema" if trained.uses_ema(ema) else "raw"
    files = ModelFiles(output)
    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    name = name or output.name
    metrics = scores_of(trained, trained.uses_ema(ema))
    labels = getattr(generator, "labels", None)
    config = {
        "library_name": "ganzoo", "format": ModelFiles.FORMAT, "format_version": ModelFiles.VERSION, "ganzoo_version": __version__,
        "name": name,
        "generator": {"name": recipe.generator.name, "params": recipe.generator.params.model_dump(mode="json")},
        "condition": None if recipe.condition is None else recipe.condition.name,
        "image": {"channels": recipe.data.channels, "resolution": recipe.data.resolution},
        "latent_dim": generator.latent_dim, "output_range": [-1, 1],
        "labels": None if labels is None else labels.to_dict(),
        "weights": weights, "weights_dtype": "float16" if half else "float32", "step": trained.step,
        "images_seen": images_seen(trained), "evaluation": Scores.of(metrics).summary() if metrics else None,
        "recipe": portable(recipe.to_dict()),
    }
    with writing_into(output):  # an empty folder, or a model folder whose files are written over
        _write_folder_files(generator, files, state, config, trained, name, labels)
    return Exported(output, "folder", None, False, 64)


def _write_folder_files(generator, files: ModelFiles, state, config, trained, name, labels) -> None:
    from safetensors.torch import save

    from .sampling import generate, grid_image, png_bytes

    atomic_write(files.weights, save(state, {"format": "pt", "ganzoo": json.dumps({"format": ModelFiles.FORMAT})}))
    atomic_write(files.config, (json.dumps(config, indent=2) + "\n").encode())
    images = generate(generator, 64, seed=0, labels="random" if labels is not None else None)
    atomic_write(files.samples, png_bytes(grid_image(images.as_subclass(torch.Tensor), 8)))
    atomic_write(files.recipe, (_yaml(config["recipe"]) + "\n").encode())
    atomic_write(files.card, model_card(config, trained, name).encode())


def images_seen(trained: Trained) -> int | None:
    """Real images the critic saw up to the weights' step: steps x batch x critic steps x processes."""
    if not isinstance(trained.step, int):
        return None
    train = trained.recipe.train
    world = (trained.checkpoint.meta.get("world_size") if trained.checkpoint is not None else None) or 1
    return trained.step * train.batch_size * (train.n_critic or 1) * world


def portable(value):
    """``value`` (a recipe as a dict) with every local path shortened to its last part (``/home/me/data/faces.zip`` ->
    ``faces.zip``, ``../shared/data/mnist`` -> ``mnist``): what a model folder carries is published as it is."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith(("~", "./", "../", ".\\", "..\\"))):
        return last_part(value)
    return value


def _yaml(value) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip()


def model_card(config: dict, trained: Trained, name: str) -> str:
    """README.md of a model folder: Hub metadata (YAML front matter), then what a user of the model needs. Scores
    appear only when they were measured on exactly the weights the folder ships (same weights file, same choice of
    the weight average); otherwise the card says the model was not evaluated."""
    from .report import duration, strip_paths

    recipe = trained.recipe
    metrics = scores_of(trained, config["weights"] == "ema")
    run = trained.files.summary() if trained.files is not None else {}
    conditional = config["labels"] is not None
    data = recipe.data
    data_name = data.name if data.name != "images" else Path(str(data.params.model_dump().get("path", "images"))).name
    meta = {"library_name": "ganzoo", **({} if conditional else {"pipeline_tag": "unconditional-image-generation"}),
            "tags": ["gan", "ganzoo", recipe.generator.name, recipe.objective.name,
                     "conditional-image-generation" if conditional else "unconditional-image-generation"],
            "license": "other", "license_name": "same-as-training-data",
            "license_link": "https://huggingface.co/docs/hub/repositories-licenses"}
    hub_id = HUB_DATASETS.get(data.name)
    if hub_id:
        meta["datasets"] = [hub_id]
    scores = Scores.of(metrics) if metrics else None
    if scores is not None:
        task = "unconditional-image-generation" if not conditional else "image-generation"
        dataset = {"name": data_name, "type": hub_id or data_name,
                   "args": {"n_generated": scores.n, "n_real": scores.n_real, "resolution": data.resolution}}
        meta["model-index"] = [{"name": name, "results": [{"task": {"type": task}, "dataset": dataset,
                                                           "metrics": scores.card_metrics()}]}]
    lines = ["---", _yaml(meta), "---", "", f"# {recipe.name}: a {recipe.generator.name} generator trained with ganzoo", ""]
    shape = config["image"]
    lines += [f"A GAN generator: {config['latent_dim']}-d latent -> {shape['channels']}x{shape['resolution']}x{shape['resolution']} "
              f"images in [-1, 1]; {'conditional on ' + _labels_text(config['labels']) if conditional else 'unconditional'}. "
              f"Weights: {'the exponential moving average of the generator' if config['weights'] == 'ema' else 'the generator as trained'} "
              f"at step {config['step']}.", "", "![64 samples (seed 0)](samples.png)", "", "## Use", "",
              f"{INSTALL_NOTE}; huggingface_hub downloads this folder:", "", "```bash", INSTALL_COMMAND,
              f"hf download USER/{name} --local-dir {name}   # this folder, from the Hub (pip install huggingface_hub)",
              f"ganzoo sample {name} -n 64 -o samples/"]
    if conditional:
        a, entry = next(iter(config["labels"].items()))
        c = entry["classes"][0]
        lines.append(f"ganzoo sample {name} --label {a}={c} -n 16 -o {c}/")
    lines += ["```", "", "```python", "import ganzoo", f'G = ganzoo.load_generator("{name}")   # the folder\'s path',
              "images = ganzoo.generate(G, 16, seed=0" + (', labels="random")' if conditional else ")") + "   # uint8 (16, C, H, W)",
              "```", "", "## Evaluation", ""]
    if scores is not None:
        p, net, what = scores.protocol, scores.protocol.get("feature_network") or {}, scores.protocol.get("evaluated") or {}
        lines += [f"{scores.line()} {scores.n_text()}.", "",
                  f"Protocol: {p.get('library')}; features: {net.get('name')} (sha256 {str(net.get('sha256'))[:16]}…), "
                  f"{net.get('resize')}; evaluated at step {what.get('step')}{' with the EMA weights' if what.get('ema') else ''}; "
                  f"seed {p.get('seed')}.", ""]
    else:
        lines += ["Not evaluated: run `ganzoo eval RUN` before exporting to have the scores here.", ""]
    lines += ["## Training", ""]
    if run:
        seen = run["steps"] * recipe.train.batch_size * (run.get("world_size") or 1) if isinstance(run.get("steps"), int) else None
        lines += [f"{run.get('steps')} steps at batch {recipe.train.batch_size}" + (f", {seen:,} images seen" if seen else "")
                  + (f" ({run['n_images']:,} training images)" if isinstance(run.get("n_images"), int) else "")
                  + (f", {duration(run['seconds_total'])}" if run.get("seconds_total") else "")
                  + (f" at {run['images_per_second']:.1f} img/s" if run.get("images_per_second") else "")
                  + f" on {run.get('device', 'cpu')}" + (f" x{run['world_size']}" if (run.get("world_size") or 1) > 1 else "") + ".", ""]
    versions = (trained.checkpoint.meta.get("versions") if trained.checkpoint is not None else None) or {}
    lines += [f"Data: {data_name} ({data.name}), {shape['resolution']} px. Objective: {recipe.objective.name}. "
              f"Critic: {recipe.critic.name}. Written by ganzoo {config['ganzoo_version']}"
              + (f" (torch {versions['torch']})" if versions.get("torch") else "") + f" on {platform.machine() or 'an unknown machine'}.",
              "", "The recipe that trained it (also `recipe.yaml` here: `ganzoo run recipe.yaml` trains it again):", "", "```yaml",
              _yaml(config["recipe"]), "```", "", "## Files", "",
              "- `model.safetensors`: the generator's weights", "- `config.json`: how to rebuild it (component, parameters, "
              "image shape, latent size, labels, recipe)", "- `recipe.yaml`: the recipe that trained it",
              "- `samples.png`: 64 samples, seed 0", ""]
    return strip_paths("\n".join(lines))  # a card is for publishing: no local folders in it


def _labels_text(labels: dict) -> str:
    return "; ".join(f"{a} ({', '.join(entry['classes'])})" for a, entry in labels.items())


def scores_of(trained: Trained, ema: bool) -> dict | None:
    """The latest evaluation kept with ``trained`` when it scored exactly these weights (digest and weight average)."""
    metrics = trained.files.evaluation() if trained.files is not None else None
    if not metrics or metrics.get("fid") is None:
        return None
    scored = (metrics.get("protocol") or {}).get("evaluated") or {}
    if scored.get("checkpoint_sha256") != trained.digest or bool(scored.get("ema")) != bool(ema):
        return None
    return metrics
