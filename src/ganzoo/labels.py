"""Class labels: from a dataset's per-image class names to integer codes, and from ``hair=blue`` back to a code.

A dataset may give, beside its images, one or more categorical attributes (``{"hair": ["blonde", ...],
"eyes": [...]}``, one class name per image, ``None`` where an image has none). The recipe's ``data.labels``
picks the attributes that condition the model; ``encode`` turns them into codes ``(N, A)`` and a
``LabelSpace`` (attribute names, sorted class names, training counts). The label space travels with the
checkpoint, so sampling knows what ``--label hair=blue`` means and what the training data's frequencies were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .errors import GanzooError


def _natural(value: str):
    return [int(t) if t.isdecimal() else t for t in re.split(r"(\d+)", value)]  # isdecimal: "²" is a digit, not a number


@dataclass(frozen=True)
class LabelSpace:
    """The attributes a conditional model takes, each attribute's classes (sorted) and their training counts."""

    attributes: tuple[str, ...]
    classes: tuple[tuple[str, ...], ...]
    counts: tuple[tuple[int, ...], ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.classes)

    def to_dict(self) -> dict:
        return {a: {"classes": list(c), "counts": list(n)} for a, c, n in zip(self.attributes, self.classes, self.counts)}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelSpace":
        return cls(tuple(d), tuple(tuple(v["classes"]) for v in d.values()), tuple(tuple(v["counts"]) for v in d.values()))

    def describe(self) -> str:
        return "; ".join(f"{a} ({len(c)}: {', '.join(c[:12])}{' ...' if len(c) > 12 else ''})" for a, c in zip(self.attributes, self.classes))

    def index(self, attribute: str | None) -> int:
        """The position of ``attribute`` (the first when None); an unknown one is an error listing the known ones."""
        attribute = self.attributes[0] if attribute is None else attribute
        if attribute not in self.attributes:
            raise GanzooError(f"unknown label attribute {attribute!r}; this model is conditioned on: {self.describe()}")
        return self.attributes.index(attribute)

    def parse(self, spec) -> dict[int, int]:
        """``{"hair": "blue"}`` or ``["hair=blue", ...]`` as ``{attribute index: class code}``; an unknown attribute
        or value is an error listing the valid ones. With one attribute, a bare value (``"7"``) names it."""
        if isinstance(spec, (list, tuple)):
            pairs = {}
            for item in spec:
                key, sep, value = str(item).partition("=")
                if not sep:
                    if len(self.attributes) != 1:
                        raise GanzooError(f"label {item!r}: give ATTRIBUTE=VALUE (attributes: {', '.join(self.attributes)})")
                    key, value = self.attributes[0], key
                if key.strip() in pairs:
                    raise GanzooError(f"label {key.strip()!r} given twice")
                pairs[key.strip()] = value.strip()
            spec = pairs
        out = {}
        for key, value in dict(spec).items():
            a = self.index(key)
            value = str(value)
            if value not in self.classes[a]:
                raise GanzooError(f"unknown value {value!r} for label {key!r}; valid values: {', '.join(self.classes[a])}")
            out[a] = self.classes[a].index(value)
        return out

    def draw(self, n: int, seed: int = 0, fixed: dict[int, int] | None = None) -> torch.Tensor:
        """Codes ``(n, A)``: the ``fixed`` attributes as given, every other one drawn from its training frequencies."""
        g = torch.Generator().manual_seed(seed + 104_729)
        out = torch.empty(n, len(self.attributes), dtype=torch.long)
        for a, counts in enumerate(self.counts):
            if fixed and a in fixed:
                out[:, a] = fixed[a]
            else:
                out[:, a] = torch.multinomial(torch.tensor(counts, dtype=torch.float), n, replacement=True, generator=g)
        return out

    def names(self, codes: torch.Tensor) -> list[str]:
        """``"hair=blue, eyes=red"`` for each row of codes."""
        return [", ".join(f"{a}={self.classes[i][int(c)]}" for i, (a, c) in enumerate(zip(self.attributes, row))) for row in codes]

    def check_same(self, other: "LabelSpace", what: str) -> None:
        """Raise when ``other`` (e.g. the data of a resume) has other attributes, classes or counts."""
        if self == other:
            return
        problems = []
        if self.attributes != other.attributes:
            problems.append(f"attributes {list(self.attributes)} -> {list(other.attributes)}")
        else:
            for a, c1, c2, n1, n2 in zip(self.attributes, self.classes, other.classes, self.counts, other.counts):
                if c1 != c2:
                    gone, new = sorted(set(c1) - set(c2)), sorted(set(c2) - set(c1))
                    problems.append(f"{a}: classes " + ", ".join(filter(None, [f"removed {gone}" if gone else "",
                                                                              f"added {new}" if new else ""])) or f"{a}: class order")
                elif n1 != n2:
                    changed = [f"{c} {x}->{y}" for c, x, y in zip(c1, n1, n2) if x != y]
                    problems.append(f"{a}: image counts {', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''}")
        raise GanzooError(f"{what}: the labels differ from those the model was trained on ({'; '.join(problems)}); "
                          "a conditional model continues only on the labels it began with")


def encode(columns: dict, wanted: list[str], n: int, where: str) -> tuple[torch.Tensor, torch.Tensor, LabelSpace, int]:
    """The ``wanted`` attributes of a dataset's label columns as ``(keep, codes, space, dropped)``: ``keep`` indexes
    the images that have a class for every wanted attribute, ``codes`` ``(len(keep), A)`` their class codes."""
    if not columns:
        raise GanzooError(f"data.labels {wanted}: {where} gives no labels (give images in class sub-folders, a labels "
                          "file such as data.labels_file: tags.csv, or a labelled dataset such as mnist)")
    missing = [w for w in wanted if w not in columns]
    if missing:
        raise GanzooError(f"data.labels: {', '.join(repr(m) for m in missing)} not in {where}; its label columns are: "
                          f"{', '.join(columns)}")
    present = torch.ones(n, dtype=torch.bool)
    for w in wanted:
        values = columns[w]
        if len(values) != n:
            raise GanzooError(f"{where}: label column {w!r} has {len(values)} values for {n} images")
        present &= torch.tensor([v is not None and str(v) != "" for v in values], dtype=torch.bool)
    keep = present.nonzero().view(-1)
    if len(keep) == 0:
        raise GanzooError(f"{where}: no image has a value for every label in data.labels {wanted}")
    classes, codes, counts = [], [], []
    for w in wanted:
        values = [str(columns[w][i]) for i in keep.tolist()]
        names = sorted(set(values), key=_natural)
        if len(names) < 2:
            raise GanzooError(f"{where}: label {w!r} has only one class ({names[0]!r}); conditioning needs at least two")
        index = {c: i for i, c in enumerate(names)}
        code = torch.tensor([index[v] for v in values], dtype=torch.long)
        classes.append(tuple(names))
        codes.append(code)
        counts.append(tuple(torch.bincount(code, minlength=len(names)).tolist()))
    return keep, torch.stack(codes, 1), LabelSpace(tuple(wanted), tuple(classes), tuple(counts)), n - len(keep)


def summary(columns: dict) -> dict:
    """``{attribute: {class: count}}`` of a dataset's label columns (``ganzoo data inspect``)."""
    out = {}
    for name, values in columns.items():
        counts: dict = {}
        for v in values:
            key = "(none)" if v is None or str(v) == "" else str(v)
            counts[key] = counts.get(key, 0) + 1
        out[name] = dict(sorted(counts.items(), key=lambda kv: _natural(kv[0])))
    return out
