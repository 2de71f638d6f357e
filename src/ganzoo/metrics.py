"""Scores: the one place that declares a metric, the maths from two feature sets, and the one record and wording of
an evaluation.

A metric is declared once in ``METRICS`` (its key in an evaluation's result, its label, how it is written, whether
lower is better, its type on a model card); ``scores`` computes them from generated and real features; ``Scores``
reads an evaluation's result (``ganzoo eval``'s metrics.json, a metrics.jsonl line, an in-training evaluation) and
words it the same way for the console, report.html, the model card and the log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
import torch

from .errors import GanzooError
from .fileio import last_part


# -- the metrics -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    key: str  # in an evaluation's result, metrics.json and metrics.jsonl's "eval"
    label: str  # what people read
    digits: int  # decimals (``fixed``) or significant digits (``sig``)
    style: str = "fixed"
    lower_is_better: bool = True
    card_type: str = ""  # the metric's type in a model card's model-index
    spread: str | None = None  # the key of its standard deviation, where it has one
    pair: str | None = None  # shown together with this one's metric (precision / recall)
    about: str = ""

    def text(self, value) -> str:
        """``value`` as this metric is written everywhere (``n/a`` when missing)."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return "n/a"
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{self.digits}f}" if self.style == "fixed" else f"{value:.{self.digits}g}"


METRICS = (
    Metric("fid", "FID", 2, card_type="fid", about="Fréchet distance between Inception feature statistics"),
    Metric("kid_mean", "KID", 4, card_type="kid", spread="kid_std", about="kernel (polynomial) MMD of Inception features, "
                                                                           "mean ± std over subsets"),
    Metric("precision", "precision", 4, "sig", lower_is_better=False, card_type="precision", pair="recall",
           about="share of generated images inside the real images' k-NN balls (fidelity)"),
    Metric("recall", "recall", 4, "sig", lower_is_better=False, card_type="recall",
           about="share of real images inside the generated images' k-NN balls (diversity)"),
    Metric("density", "density", 4, "sig", lower_is_better=False, card_type="density", pair="coverage",
           about="how many real images' k-NN balls a generated image lies in, over k (fidelity; 1 for a matching set)"),
    Metric("coverage", "coverage", 4, "sig", lower_is_better=False, card_type="coverage",
           about="share of real images whose k-NN ball holds a generated image (diversity)"),
)
BY_KEY = {m.key: m for m in METRICS}
PAIRED = {m.pair for m in METRICS if m.pair}


def text(key: str, value) -> str:
    """A value of the metric ``key`` as written everywhere."""
    return BY_KEY[key].text(value)


# -- the maths ---------------------------------------------------------------------------------------------------------------
def kid_subset(n_gen: int, n_real: int, size: int = 1000) -> tuple[int, bool]:
    """``(subset size, whether the subsets' spread means anything)`` for KID on ``n_gen`` and ``n_real`` images.

    Subsets of ``size`` when both sides have more images than that (the standard protocol); else subsets of half the
    smaller side, as torch-fidelity advises, since subsets holding every image of a side are all the same there and
    the ``±`` would show 0 (or only the other side's sampling). Under 4 images a side: one subset, no spread.
    """
    smaller = min(n_gen, n_real)
    if smaller > size:
        return size, True
    if smaller >= 4:
        return smaller // 2, True
    return smaller, False


def scores(gen: torch.Tensor, real: torch.Tensor, *, kid_subset_size: int = 1000, kid_subsets: int = 100,
           prc: bool = True, seed: int = 0) -> dict:
    """Every metric of ``METRICS`` between two feature sets: FID, KID (mean, std over subsets: ``kid_std`` None where
    there is one subset) with torch-fidelity's functions, and, with ``prc``, the metrics of nearest neighbours
    (precision/recall) on equal-size sets. ``protocol_extra`` says how each was computed."""
    import torch_fidelity as tf
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    if len(gen) < 2 or len(real) < 2:
        raise GanzooError(f"need at least 2 images on each side to score (generated {len(gen)}, real {len(real)})")
    fid = fid_statistics_to_metric(fid_features_to_statistics(gen), fid_features_to_statistics(real), verbose=False)
    out = {"fid": fid[tf.KEY_METRIC_FID]}
    subset, spread = kid_subset(len(gen), len(real), kid_subset_size)
    kid = kid_features_to_metric(gen, real, kid_subsets=kid_subsets if spread else 1, kid_subset_size=subset, rng_seed=seed,
                                 verbose=False, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1)
    out.update(kid_mean=kid[tf.KEY_METRIC_KID_MEAN], kid_std=kid[tf.KEY_METRIC_KID_STD] if spread else None)
    protocol = {"kid": {"subsets": kid_subsets if spread else 1, "subset_size": subset, "kernel": "poly degree 3, gamma 1/d, coef0 1"}}
    if subset < kid_subset_size:
        protocol["kid"]["note"] = (f"subsets of {subset}: half the smaller side, so that every subset draws other images on both "
                                   f"sides (subsets of all {min(len(gen), len(real))} would all be alike and give a spread of 0)"
                                   if spread else "one subset of every image: too few images for a spread")
    if prc and min(len(gen), len(real)) < 5:  # k = 3 nearest neighbours need at least k + 2 images a side
        protocol["precision_recall"] = {"skipped": f"needs at least 5 images on each side (got {len(gen)} and {len(real)})"}
        prc = False
    if prc:
        # equal sizes: a random real subset as large as the generated set (k-NN radii depend on N)
        n = min(len(gen), len(real))
        pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n]
        g, r = gen[:n].float(), real[pick].float()
        pr = prc_features_to_metric(g, r, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=True, verbose=False)
        out.update(precision=pr[tf.KEY_METRIC_PRECISION], recall=pr[tf.KEY_METRIC_RECALL])
        protocol["precision_recall"] = {"k": 3, "n_each": n, "features": "the same 2048-d Inception features"}
        out.update(density_coverage(g, r, DENSITY_K))
        protocol["density_coverage"] = {"k": DENSITY_K, "n_each": n, "features": "the same 2048-d Inception features",
                                        "reference": "Naeem et al. 2020, real images' k-NN balls only"}
    out["protocol_extra"] = protocol
    return out


DENSITY_K = 5  # Naeem et al. 2020's choice


def density_coverage(gen: torch.Tensor, real: torch.Tensor, k: int = DENSITY_K, chunk: int = 1024) -> dict:
    """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"),
    from the real images' k-NN balls only (each real image's ball reaches its k-th nearest other real image):
    density = (1 / kM) * sum over generated images of the number of real balls it lies in; coverage = the share of
    real images whose ball holds at least one generated image. Unlike precision/recall they do not grow with
    outliers among the generated images. Distances in chunks of ``chunk`` rows (float32, as precision/recall)."""
    gen, real = gen.float(), real.float()
    if len(real) <= k or not len(gen):
        return {"density": None, "coverage": None}
    radii = torch.cat([torch.cdist(real[i:i + chunk], real).topk(k + 1, dim=1, largest=False).values[:, k]
                       for i in range(0, len(real), chunk)])  # the k + 1-th smallest: the ball leaves the image itself out
    inside, nearest = 0, torch.full((len(real),), float("inf"))
    for i in range(0, len(gen), chunk):
        d = torch.cdist(gen[i:i + chunk], real)
        inside += int((d <= radii[None, :]).sum())
        nearest = torch.minimum(nearest, d.min(dim=0).values)
    return {"density": inside / (k * len(gen)), "coverage": float((nearest <= radii).double().mean())}


# -- the record and its wording --------------------------------------------------------------------------------------------
@dataclass
class Scores:
    """One evaluation: the metrics' values (by key, spreads included), its protocol (what was scored against what,
    with which network, N on each side), label accuracy and per-class rows of a conditional model."""

    values: dict = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)
    label_accuracy: dict | None = None
    per_class: dict | None = None
    n: int | None = None
    n_real: int | None = None

    @classmethod
    def of(cls, result: dict | None) -> "Scores":
        """An evaluation's result (``evaluate``), metrics.json, or a metrics.jsonl evaluation (``n``, ``n_real`` and
        the values side by side)."""
        result = result if isinstance(result, dict) else {}
        proto = result.get("protocol") if isinstance(result.get("protocol"), dict) else {}
        keys = set(BY_KEY) | {m.spread for m in METRICS if m.spread}
        values = {k: v for k, v in result.items() if k in keys}
        return cls(values, proto, result.get("label_accuracy"), result.get("per_class"), result.get("n", proto.get("n_generated")),
                   result.get("n_real", proto.get("n_real")))

    def measured(self) -> list[Metric]:
        return [m for m in METRICS if self.values.get(m.key) is not None]

    # -- numbers ------------------------------------------------------------------------------------------------------
    def flat(self) -> dict:
        """The numbers as one flat mapping, as metrics.jsonl keeps them (label accuracy as ``label_acc_ATTRIBUTE``)."""
        out = dict(self.values)
        for attr, v in (self.label_accuracy or {}).get("generated", {}).items():
            out[f"label_acc_{attr}"] = v["accuracy"]
        return out

    # -- words --------------------------------------------------------------------------------------------------------
    def value_text(self, m: Metric) -> str:
        """One metric's value with its spread (``0.2912 ± 0.0021``)."""
        value = m.text(self.values.get(m.key))
        if m.spread is None or self.values.get(m.key) is None:
            return value
        std = self.values.get(m.spread)
        return f"{value} ± {m.text(std)}" if std is not None else f"{value} (one subset)"

    def line(self, at_n: bool = False) -> str:
        """The scores in a line: ``FID 290.12, KID 0.2912 ± 0.0021, precision 0.1235, recall 0.04568`` (``at_n``:
        ``FID@1000 ...``)."""
        suffix = f"@{self.n}" if at_n and self.n else ""
        return ", ".join(f"{m.label}{suffix} {self.value_text(m)}" for m in self.measured())

    def n_text(self) -> str:
        """What was compared: ``on 1000 generated images against 5000 real images (faces.zip), at 64 px``."""
        proto = self.protocol
        source = (proto.get("reference") or {}).get("source")
        return (f"on {self.n} generated images against {self.n_real} real images"
                + (f" ({last_part(source)})" if source else "")
                + (f", at {proto['image_resolution']} px" if proto.get("image_resolution") else ""))

    def rows(self) -> dict[str, str]:
        """The scores and their protocol as rows of a two-column table (the console's and report.html's)."""
        rows: dict[str, str] = {}
        for m in self.measured():
            if m.key in PAIRED:
                continue
            partner = BY_KEY.get(m.pair) if m.pair else None
            if partner is not None:
                rows[f"{m.label} / {partner.label}"] = f"{self.value_text(m)} / {self.value_text(partner)}"
            else:
                rows[m.label] = self.value_text(m)
        proto = self.protocol
        if not proto:
            return rows
        ref, net, what = proto.get("reference") or {}, proto.get("feature_network") or {}, proto.get("evaluated") or {}
        rows["N generated"] = str(proto.get("n_generated", "?"))
        if "step" in what:
            rows["N generated"] += (f" ({'model folder, ' if 'model_folder' in what else ''}step {what['step']}"
                                    + (", weight average" if what.get("ema") else "") + ")")
        elif "images" in what:
            rows["N generated"] += f" (images in {last_part(what['images'])})"
        rows["N real"] = f"{proto.get('n_real', '?')} of {ref.get('size', '?')}" + (
            f" ({ref.get('dataset')}: {last_part(ref['source'])})" if ref.get("source") else "")
        if net:
            rows["feature network"] = f"{last_part(net.get('file', '?'))}, sha256 {str(net.get('sha256', '?'))[:12]}"
        rows["protocol"] = f"{proto.get('library', '?')}, {proto.get('image_resolution', '?')} px, seed {proto.get('seed', '?')}"
        acc = self.label_accuracy
        if acc:
            real = (acc.get("classifier") or {}).get("test_accuracy") or {}
            for attr, v in acc.get("generated", {}).items():
                rows[f"label accuracy: {attr}"] = (f"{v['accuracy']:.2%} of {acc.get('n_generated')} generated (the classifier "
                                                   f"on held-out real images: {real.get(attr, {}).get('accuracy', float('nan')):.2%})")
            c = acc.get("classifier") or {}
            rows["classifier"] = (f"sha256 {str(c.get('sha256'))[:16]}..., {c.get('split')}, trained on {c.get('n_train')}, "
                                  f"tested on {c.get('n_test')}")
        if self.per_class:
            pc = self.per_class
            rows[f"FID per {pc['attribute']} (@{pc['n_generated_per_class']} each)"] = ", ".join(
                f"{k} {text('fid', v['fid'])}" for k, v in pc["classes"].items())
        return rows

    def summary(self) -> dict:
        """The numbers with their N and reference, for a model folder's config.json (``ganzoo models`` reads it)."""
        source = (self.protocol.get("reference") or {}).get("source")
        return {**{k: (round(float(v), 6) if isinstance(v, float) else v) for k, v in self.flat().items()},
                "n": self.n, "n_real": self.n_real, "reference": last_part(source) if source else None,
                "seed": self.protocol.get("seed")}

    def card_metrics(self) -> list[dict]:
        """The model-index entries of a model card: type, name with N, value."""
        return [{"type": m.card_type, "name": f"{m.label}@{self.n}", "value": round(float(self.values[m.key]), 6)}
                for m in self.measured() if m.card_type]
