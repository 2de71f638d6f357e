"""``ganzoo explore``: a local web page (Gradio) to look around a trained generator.

The page draws an image for a seed (with truncation, and a class per label attribute for a conditional run),
walks between two seeds (slerp of their latents), projects an uploaded image into the latent space, and offers
each image as a PNG. Every image comes from ganzoo's own sampling functions (``generate``, ``latents``,
``render``, ``slerp``, ``project``), so what the page shows is what ``ganzoo sample`` writes for the same seed.

Gradio is an optional extra (``pip install -e ".[explore]"`` in the checkout), imported only when a page is built. The server
listens on 127.0.0.1 unless told otherwise, and never opens a public share link.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from .errors import GanzooError
from .sampling import generate, has_w_space, label_codes, latents, png_bytes, render, slerp

log = logging.getLogger("ganzoo")

RANDOM = "(random)"  # a label dropdown's choice that draws the class from the training data's frequencies
SEED_MAX = 99_999  # the seed slider's range (its number box takes any seed in it)
SHOWN = 256  # images are enlarged (whole pixels, nearest neighbour) to at least this many pixels a side
PROJECT_STEPS = 100  # the projection's default number of steps on the page (a few seconds for a small model)
# the browser keeps whole pixels if it scales an image further; an upload smaller than its box is enlarged to fill it,
# as the generated images beside it are
CSS = "img { image-rendering: pixelated; } #upload img { width: 100%; height: 100%; object-fit: contain; }"


def _gradio():
    """Gradio, imported here (it takes a second or two, and it is optional), with its telemetry off."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no network: nothing is sent anywhere
    try:
        import gradio
    except ImportError:
        raise GanzooError('the explorer needs Gradio 6: pip install "gradio>=6,<7"') from None
    return gradio


def enlarge(image: torch.Tensor, size: int = SHOWN) -> np.ndarray:
    """A uint8 ``(C, H, W)`` image as an ``(H', W', C)`` array (``(H', W')`` for gray), each pixel repeated to make
    it at least ``size`` pixels a side (a 16 px image becomes 256 px of sharp squares)."""
    scale = max(1, -(-size // image.shape[-1]))
    big = image.repeat_interleave(scale, -2).repeat_interleave(scale, -1).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(big[..., 0] if big.shape[2] == 1 else big)


class Explorer:
    """What the page does, as plain calls: images for a seed, a walk between two seeds, a projection. ``blocks()``
    builds the Gradio page around them. ``critic`` (the run's) lets the projection compare critic features;
    without it the projection compares pixels."""

    def __init__(self, generator, critic=None, name: str = "generator"):
        self.generator = generator.eval()
        self.critic = None if critic is None else critic.eval()
        self.name = name
        self.space = getattr(generator, "labels", None)
        self.w_space = has_w_space(generator)
        self._lock = threading.Lock()  # one model call at a time: render forks torch's global RNG
        self._files = tempfile.TemporaryDirectory(prefix="ganzoo-explore-")

    # -- the controls' values -------------------------------------------------------------------------------
    @property
    def truncation_range(self) -> tuple[float, float, float]:
        """``(lowest, highest, step)`` of the truncation slider; its highest value means no truncation."""
        return (0.0, 1.0, 0.05) if self.w_space else (0.1, 3.0, 0.1)

    def truncation(self, value) -> float | None:
        """The slider's value as ``generate`` takes it: None (off) at the slider's right end."""
        if value is None:
            return None
        value = float(value)
        return None if value >= self.truncation_range[1] - 1e-9 else value

    def labels(self, choices) -> dict[str, str] | str | None:
        """One dropdown value per label attribute as ``label_codes`` takes labels: the classes chosen (the others
        drawn), ``"random"`` when none is, None for an unconditional generator."""
        if self.space is None:
            return None
        fixed = {a: c for a, c in zip(self.space.attributes, choices) if c not in (None, "", RANDOM)}
        return fixed or "random"

    def _codes(self, choices, seed: int):
        return label_codes(self.generator, 1, self.labels(choices), seed)

    def _caption(self, head: str, y, truncation=None) -> str:
        s = self.generator.shape
        psi = self.truncation(truncation)
        parts = ([head] + ([self.space.names(y)[0]] if y is not None else [])
                 + ([f"truncation {psi:g}"] if psi is not None else []) + [f"{s.resolution}×{s.resolution}"])
        return " · ".join(parts)

    def _psi_stem(self, truncation) -> str:
        psi = self.truncation(truncation)
        return "" if psi is None else f"-t{psi:g}"

    # -- images ---------------------------------------------------------------------------------------------
    def sample(self, seed: int, truncation=None, choices=()) -> tuple[torch.Tensor, str]:
        """The image for ``seed`` (uint8 ``(C, H, W)``, the first of ``ganzoo.generate(G, n, seed)`` with the same
        truncation and labels) and a caption naming its seed and classes."""
        seed, t = int(seed), self.truncation(truncation)
        with self._lock:
            y = self._codes(choices, seed)
            image = generate(self.generator, 1, seed=seed, truncation=t, labels=y)[0].as_subclass(torch.Tensor)
        return image, self._caption(f"seed {seed}", y, truncation)

    def mix(self, seed_a: int, seed_b: int, t: float, truncation=None, choices=()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
        """The images of seeds ``a`` and ``b`` and of the spherical interpolation (slerp) of their latents at ``t``
        in [0, 1], all three with one label (drawn with seed ``a`` where the dropdown says random)."""
        seed_a, seed_b, t, psi = int(seed_a), int(seed_b), float(t), self.truncation(truncation)
        g = self.generator
        with self._lock:
            y = self._codes(choices, seed_a)
            za, zb = (latents(1, g.latent_dim, s, psi, g) for s in (seed_a, seed_b))
            z = torch.cat([za, slerp(za, zb, torch.tensor([[t]])), zb])
            images = render(g, z, y=None if y is None else y.expand(3, -1), truncation=psi, seed=seed_a)
        return images[0], images[1], images[2], self._caption(f"seed {seed_a} → {seed_b} at t = {t:.2f}", y, truncation)

    def project(self, image, steps: int = PROJECT_STEPS, choices=(), progress=None):
        """``(target, projection)``: ``image`` (a PIL image or a path) centre-cropped and resized to the generator's
        images, and its ``ganzoo.projection.project`` (the labels chosen, or the best of a few draws)."""
        from .projection import prepare_image, project

        target = prepare_image(image, self.generator.shape)
        labels = self.labels(choices)
        with self._lock:
            result = project(self.generator, target, labels=None if labels == "random" else labels, steps=int(steps),
                             critic=self.critic, features="critic" if self.critic is not None else "pixels",
                             progress=progress)
        return target, result

    def _download_path(self, stem: str, suffix: str) -> Path:
        """A new file name ``STEM.SUFFIX`` (stem made safe) in a folder of its own in this page's temporary folder:
        two sessions never share a file."""
        return Path(tempfile.mkdtemp(dir=self._files.name)) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', stem).strip('-')}{suffix}"

    def png(self, image: torch.Tensor, stem: str) -> str:
        """``image`` as a PNG at the generator's resolution, in this page's temporary folder: its path."""
        path = self._download_path(stem, ".png")
        path.write_bytes(png_bytes(image))
        return str(path)

    # -- the page's callbacks: the controls' values in, what the page shows out ------------------------------
    def show_sample(self, seed, truncation, *choices):
        image, caption = self.sample(seed, truncation, choices)
        return enlarge(image), caption, self.png(image, f"{self.name}-seed{int(seed)}{self._psi_stem(truncation)}-{self._stem(choices)}")

    def show_mix(self, seed_a, seed_b, t, truncation, *choices):
        a, mid, b, caption = self.mix(seed_a, seed_b, t, truncation, choices)
        stem = (f"{self.name}-seed{int(seed_a)}-seed{int(seed_b)}-at{float(t):.2f}{self._psi_stem(truncation)}-"
                f"{self._stem(choices)}")
        return enlarge(a), enlarge(mid), enlarge(b), caption, self.png(mid, stem)

    def show_projection(self, upload, steps, *choices, progress=None):
        if upload is None:
            raise GanzooError("upload an image to project first")
        t0 = time.perf_counter()
        target, result = self.project(upload, steps, choices, progress)
        y = result.labels
        caption = (f"distance {result.distance:.4f} (RMS pixel difference on [0, 1]; {result.start_distance:.4f} "
                   f"before the first step) · {result.steps} steps in {time.perf_counter() - t0:.1f}s · "
                   f"{result.space}-space, {result.features} features"
                   + (f" · {self.space.names(y)[0]}" if y is not None else ""))
        source = Path(upload).stem if isinstance(upload, (str, Path)) else "upload"
        stem = f"{self.name}-{source}-projection"
        return enlarge(target), enlarge(result.image), caption, self.png(result.image, stem), self.latent_file(result, stem)

    def latent_file(self, result, stem: str) -> str:
        """A projection's latent (and labels) as ``ganzoo project`` saves it (``ganzoo.load_projection`` reads it)."""
        return str(result.save(self._download_path(stem, ".latent.safetensors")))

    def _stem(self, choices) -> str:
        labels = self.labels(choices)
        return "" if not isinstance(labels, dict) else "-".join(f"{a}-{c}" for a, c in labels.items())

    # -- the page ---------------------------------------------------------------------------------------------
    def blocks(self):
        """The Gradio page (a ``gradio.Blocks``; ``launch`` it, or use ``explore``)."""
        gr = _gradio()
        s, g = self.generator.shape, self.generator
        facts = [f"{s.resolution}×{s.resolution} {'gray' if s.channels == 1 else 'RGB'}", f"latent {g.latent_dim}",
                 "w-space" if self.w_space else "no w-space"]
        if self.space is not None:
            facts.append("conditional on " + ", ".join(f"{a} ({len(c)} classes)" for a, c in zip(self.space.attributes, self.space.classes)))

        def image(label, elem_id=None):
            return gr.Image(label=label, type="numpy", format="png", image_mode=None, interactive=False, height=SHOWN + 40,
                            buttons=["fullscreen"], elem_id=elem_id)

        with gr.Blocks(title=f"ganzoo explore: {self.name}", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
            gr.Markdown(f"## ganzoo explore: {self.name}\n{' · '.join(facts)}")
            with gr.Row():
                with gr.Column(scale=1, min_width=240):
                    dropdowns = []
                    if self.space is not None:
                        for attribute, classes in zip(self.space.attributes, self.space.classes):
                            dropdowns.append(gr.Dropdown([RANDOM, *classes], value=RANDOM, label=attribute,
                                                         info=f"{RANDOM}: drawn with the seed from the training data's frequencies",
                                                         elem_id=f"label-{attribute}"))
                    lo, hi, step = self.truncation_range
                    trunc = gr.Slider(lo, hi, value=hi, step=step, label="truncation",
                                      info=("ψ: pulls w toward the average image; 1 = off" if self.w_space else
                                            "draws z from N(0, 1) cut to [-t, t]: typical but less varied images; "
                                            f"{hi:g} = off"), elem_id="truncation")
                with gr.Column(scale=3):
                    with gr.Tabs():
                        with gr.Tab("Seed", id="seed"):
                            with gr.Row():
                                seed = gr.Slider(0, SEED_MAX, value=0, step=1, label="seed", elem_id="seed", scale=4)
                                dice = gr.Button("random seed", scale=1, min_width=120)
                            shown = image("generated", "sample-image")
                            caption = gr.Markdown(elem_id="sample-caption")
                            download = gr.DownloadButton(f"Download PNG ({s.resolution}×{s.resolution})", elem_id="sample-download")
                        with gr.Tab("Interpolate", id="interpolate"):
                            with gr.Row():
                                seed_a = gr.Number(0, label="seed A", precision=0, minimum=0, maximum=2**32 - 1)
                                seed_b = gr.Number(1, label="seed B", precision=0, minimum=0, maximum=2**32 - 1)
                            t = gr.Slider(0, 1, value=0.5, step=0.01, label="t (0 = seed A, 1 = seed B)", elem_id="mix-t")
                            with gr.Row():
                                img_a, img_mid, img_b = image("seed A"), image("between", "mix-image"), image("seed B")
                            mix_caption = gr.Markdown(elem_id="mix-caption")
                            mix_download = gr.DownloadButton(f"Download PNG ({s.resolution}×{s.resolution})")
                        with gr.Tab("Project", id="project"):
                            gr.Markdown("Upload an image: the latent whose image is closest to it. The image is "
                                        f"centre-cropped to a square and resized to {s.resolution}×{s.resolution}."
                                        + (" Labels: those chosen on the left, or the best of a few draws." if self.space else ""))
                            with gr.Row():
                                upload = gr.Image(label="your image", type="pil", sources=["upload", "clipboard"], height=SHOWN + 40,
                                                  elem_id="upload")
                                target = image("as the generator sees it")
                                recon = image("projection", "projection-image")
                            steps = gr.Slider(0, 1000, value=PROJECT_STEPS, step=10, label="steps",
                                              info="more: closer, slower")
                            go = gr.Button("Project", variant="primary", elem_id="project-button")
                            proj_caption = gr.Markdown(elem_id="project-caption")
                            with gr.Row():  # nothing to download before the first projection: the buttons wait for it
                                proj_download = gr.DownloadButton(f"Download PNG ({s.resolution}×{s.resolution})",
                                                                  interactive=False, elem_id="project-download")
                                latent_download = gr.DownloadButton(f"Download latent ({'w' if self.w_space else 'z'}, safetensors)",
                                                                    interactive=False, elem_id="latent-download")

            sample_in, sample_out = [seed, trunc, *dropdowns], [shown, caption, download]
            mix_in, mix_out = [seed_a, seed_b, t, trunc, *dropdowns], [img_a, img_mid, img_b, mix_caption, mix_download]
            quiet = {"trigger_mode": "always_last", "show_progress": "hidden"}
            show_sample, show_mix = _shown_errors(gr, self.show_sample), _shown_errors(gr, self.show_mix)
            for control in (seed, trunc, *dropdowns):
                control.change(show_sample, sample_in, sample_out, api_visibility="private", **quiet)
            for control in (seed_a, seed_b, t, trunc, *dropdowns):
                control.change(show_mix, mix_in, mix_out, api_visibility="private", **quiet)
            dice.click(lambda: int(np.random.default_rng().integers(0, SEED_MAX + 1)), None, seed, api_visibility="private")

            def projection(*values):  # the last value is Gradio's progress bar (``named``'s signature asks for it)
                *values, progress = values

                def report(step, total, distance):
                    progress((step, total), desc=f"distance {distance:.4f}")

                try:
                    *shown, png, latent = self.show_projection(*values, progress=report)
                except GanzooError as exc:
                    raise gr.Error(str(exc)) from None
                return (*shown, gr.DownloadButton(value=png, interactive=True), gr.DownloadButton(value=latent, interactive=True))

            labels = [re.sub(r"\W+", "_", a).strip("_") or f"label_{i}" for i, a in enumerate(self.space.attributes if self.space else ())]
            named(projection, ["image", "steps", *labels], progress=gr.Progress())
            go.click(projection, [upload, steps, *dropdowns], [target, recon, proj_caption, proj_download, latent_download],
                     api_name="project")
            app.load(named(_shown_errors(gr, self.show_sample), ["seed", "truncation", *labels]), sample_in, sample_out, api_name="sample")
            app.load(named(_shown_errors(gr, self.show_mix), ["seed_a", "seed_b", "t", "truncation", *labels]), mix_in, mix_out,
                     api_name="interpolate")
        app.explorer = self
        return app


def named(fn, names: list[str], progress=None):
    """``fn`` (which takes ``*values``) with a signature naming its inputs, so the page's API lists ``seed``,
    ``truncation``, ... instead of ``param_0``, ``param_1``. With ``progress`` (a ``gr.Progress``), Gradio passes
    its progress bar as the last value."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(n, kind) for n in names]
    if progress is not None:
        params.append(inspect.Parameter("progress", kind, default=progress))
    fn.__signature__ = inspect.Signature(params)
    return fn


def _shown_errors(gr, fn):
    """``fn`` with a ``GanzooError`` shown on the page as a message (Gradio's ``Error``), not a bare "Error"."""
    def call(*values):
        try:
            return fn(*values)
        except GanzooError as exc:
            raise gr.Error(str(exc)) from None

    return call


def _load(source, device):
    """``(generator, critic, name)`` of a run folder, checkpoint or exported model folder (no critic there: the
    projection then compares pixels)."""
    from .trained import open_trained

    trained = open_trained(source)
    g, critic = trained.networks(True, device)
    return g, critic, trained.name


def build_app(source, device="cpu"):
    """The explorer page (a ``gradio.Blocks``) for a run folder, a checkpoint, an exported model folder, a
    ``Generator`` or an ``Explorer``. The page keeps its ``Explorer`` as ``.explorer``."""
    _gradio()  # the missing-Gradio message before any model is loaded
    if isinstance(source, Explorer):
        return source.blocks()
    if isinstance(source, torch.nn.Module):
        return Explorer(source).blocks()
    g, critic, name = _load(source, torch.device(device))
    return Explorer(g, critic, name).blocks()


def _check_host(host: str) -> None:
    """A host that is not an address of this machine is one line before anything starts (a server that cannot bind
    there would otherwise retry port after port)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address[0], 0))
    except (OSError, UnicodeError, IndexError) as exc:
        raise GanzooError(f"--host {host}: not an address of this machine ({getattr(exc, 'strerror', None) or exc}); "
                          "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from None


def explore(run, host: str = "127.0.0.1", port: int | None = None, open_browser: bool = True, device="cpu",
            block: bool = True):
    """Serve the explorer page of ``run`` (as ``build_app`` takes it) on ``host``:``port`` (the first free port from
    7860 when None) and open it in the browser. ``block``: serve until Ctrl-C; else return the running
    ``gradio.Blocks`` at once (``.close()`` stops it; its address is ``.local_url``)."""
    _check_host(host)
    app = build_app(run, device)
    try:
        app.launch(server_name=host, server_port=port, inbrowser=open_browser, share=False, prevent_thread_lock=True,
                   quiet=True, ssr_mode=False, show_error=True, css=CSS, footer_links=["api", "settings"])
    except OSError:  # the port is taken, or the host is not this machine's
        where = f"{host}:{port}" if port else f"{host} (no free port from 7860 to 7959)"
        raise GanzooError(f"cannot serve the explorer on {where}: the port is in use, or {host} is not an address of "
                          "this machine; give another port or host") from None
    log.info(f"the explorer is at {app.local_url}" + ("" if not block else " (Ctrl-C stops it)"))
    if not block:
        return app
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return None
