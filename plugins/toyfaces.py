"""Procedural cartoon faces drawn from a seed: ganzoo's built-in default data, no download needed.

Each face draws its shape, skin tone, hair colour, back hair length, fringe
style, eye size/spacing/iris colour/highlight, mouth and background from
continuous random parameters (effectively unlimited combinations), at
twice the target size, then downsamples with a Lanczos filter.
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from PIL import Image, ImageDraw
from pydantic import Field

import ganzoo
from ganzoo import Dataset, Params, limits


class ToyFacesParams(Params):
    size: int = Field(20000, ge=1, le=2_000_000, description="number of faces")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the drawing (the same seed draws the same faces)")


def _hsv(h, s, v):
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1)))


def draw_face(rng: np.random.Generator, size: int) -> Image.Image:
    """One RGB face of ``size`` x ``size`` pixels."""
    S = 2 * size  # supersampled canvas
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    img = Image.new("RGB", (S, S), _hsv(u(0, 1), u(0.1, 0.5), u(0.55, 1.0)))
    d = ImageDraw.Draw(img)
    # background: a soft blob of a second colour
    bx, by, br = u(0, 1) * S, u(0, 1) * S, u(0.2, 0.6) * S
    d.ellipse([bx - br, by - br, bx + br, by + br], fill=_hsv(u(0, 1), u(0.1, 0.4), u(0.6, 1.0)))

    cx, cy = S * u(0.44, 0.56), S * u(0.5, 0.6)
    fw, fh = S * u(0.23, 0.3), S * u(0.27, 0.34)  # half width / height of the face
    hair = _hsv(u(0, 1), u(0.2, 0.9), u(0.15, 0.95))
    hair_dark = tuple(int(c * 0.7) for c in hair)
    t = u(0, 1)
    skin = tuple(int(a + (b - a) * t) for a, b in zip((255, 228, 206), (200, 150, 110)))

    # back hair: a cap around the head, long hair falls to a random length
    hw = fw * u(1.12, 1.35)
    d.ellipse([cx - hw, cy - fh * 1.25, cx + hw, cy + fh * 0.9], fill=hair)
    if rng.random() < 0.6:
        d.rectangle([cx - hw, cy - fh * 0.2, cx + hw, cy + fh * u(0.6, 2.0)], fill=hair)

    # face with a pointed chin
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh * 0.7], fill=skin)
    d.polygon([(cx - fw * 0.95, cy + fh * 0.1), (cx + fw * 0.95, cy + fh * 0.1), (cx + u(-0.08, 0.08) * fw, cy + fh * u(0.95, 1.1))], fill=skin)

    # fringe: straight, spiky or swept
    top, fringe_y = cy - fh * 1.2, cy - fh * u(0.25, 0.5)
    style = rng.integers(3)
    if style == 0:
        d.chord([cx - hw, top, cx + hw, fringe_y + fh * 0.6], 180, 360, fill=hair)
        d.rectangle([cx - fw * 1.02, top + fh * 0.3, cx + fw * 1.02, fringe_y], fill=hair)
    else:
        d.chord([cx - hw, top, cx + hw, cy], 180, 360, fill=hair)
        teeth = int(rng.integers(3, 7))
        xs = np.linspace(cx - fw * 1.05, cx + fw * 1.05, teeth + 1)
        lean = u(-0.6, 0.6) * fw / teeth if style == 1 else u(0.8, 1.6) * fw / teeth * rng.choice([-1, 1])
        pts = [(xs[0], top + fh * 0.4)]
        for a, b in zip(xs, xs[1:]):
            pts += [(a, cy - fh * 0.55), ((a + b) / 2 + lean, fringe_y + u(-0.1, 0.1) * fh), (b, cy - fh * 0.55)]
        pts.append((xs[-1], top + fh * 0.4))
        d.polygon(pts, fill=hair)

    # eyes: white, iris, pupil, highlight and a lash line
    ey, ex = cy + fh * u(0.0, 0.15), fw * u(0.38, 0.5)
    ew, eh = fw * u(0.2, 0.3), fh * u(0.2, 0.3)
    iris = _hsv(u(0, 1), u(0.4, 1.0), u(0.35, 0.9))
    look = u(-0.25, 0.25) * ew
    for side in (-1, 1):
        x = cx + side * ex
        d.ellipse([x - ew, ey - eh, x + ew, ey + eh], fill=(255, 255, 255))
        ix = x + look
        d.ellipse([ix - ew * 0.75, ey - eh * 0.85, ix + ew * 0.75, ey + eh * 0.95], fill=iris)
        d.ellipse([ix - ew * 0.38, ey - eh * 0.35, ix + ew * 0.38, ey + eh * 0.5], fill=tuple(c // 3 for c in iris))
        hr = ew * u(0.2, 0.32)
        hx, hy = ix - ew * 0.3, ey - eh * 0.4
        d.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=(255, 255, 255))
        d.line([(x - ew * 1.1, ey - eh * (0.8 - 0.15 * side)), (x + ew * 1.1, ey - eh * (0.8 + 0.15 * side))], fill=hair_dark, width=max(2, S // 40))

    # mouth: a line, a smile or an open mouth
    my, mw = cy + fh * u(0.55, 0.7), fw * u(0.08, 0.22)
    kind = rng.integers(3)
    mouth = (int(u(120, 200)), int(u(40, 80)), int(u(50, 90)))
    if kind == 0:
        d.line([(cx - mw, my), (cx + mw, my)], fill=mouth, width=max(1, S // 64))
    elif kind == 1:
        d.arc([cx - mw, my - mw * 0.6, cx + mw, my + mw * 0.6], 10, 170, fill=mouth, width=max(1, S // 64))
    else:
        d.pieslice([cx - mw, my - mw * 0.5, cx + mw, my + mw * 0.9], 0, 180, fill=mouth)
    if rng.random() < 0.5:  # blush
        for side in (-1, 1):
            x, r = cx + side * fw * 0.6, fw * 0.12
            d.ellipse([x - r * 1.5, ey + eh * 1.6 - r * 0.6, x + r * 1.5, ey + eh * 1.6 + r * 0.6], fill=(250, 170, 170))
    return img.resize((size, size), Image.Resampling.LANCZOS)


class ToyFaces(Dataset):
    name = "toyfaces"
    description = "Built-in procedural cartoon faces (any resolution, no files needed): the default data"
    Params = ToyFacesParams

    def fingerprint(self):
        return {"drawing": 1}  # the params decide every pixel; bump when draw_face changes

    def load(self, resolution, channels, report):
        params = self.params
        limits.require_memory(limits.image_bytes(params.size, channels, resolution), f"{params.size:,} toy faces of "
                              f"{channels}x{resolution}x{resolution}", "lower data.size or data.resolution")
        report.source = f"toyfaces (seed {params.seed})"
        mode = "RGB" if channels == 3 else "L"
        out = np.empty((params.size, resolution, resolution, channels), dtype=np.uint8)
        for i in range(params.size):
            face = draw_face(np.random.default_rng((params.seed, i)), resolution).convert(mode)
            out[i] = np.asarray(face).reshape(resolution, resolution, channels)
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


@ganzoo.hookimpl
def register_datasets(register):
    register(ToyFaces)
