"""Label accuracy, the standard measure of a conditional generator: does an image asked for as ``hair=blue`` look
like blue hair? A small classifier is trained on the real labelled images (a seeded train split, once; cached
as safetensors), its accuracy on the held-out real images is the ceiling, and the score of a generator is the
fraction of its images that the classifier puts in the class they were asked for, per attribute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from .data import cache_dir, dataset_key, load_data, to_float
from .errors import GanzooError
from .fileio import file_sha256
from .labels import LabelSpace

log = logging.getLogger("ganzoo")

VERSION = 1  # of the network and its training below: part of the cache key and of every protocol
SIZE = 32  # images are classified at this size (larger ones are downscaled)
TEST_FRACTION = 0.1


class LabelClassifier(nn.Module):
    """Three conv blocks (3x3 conv, batch norm, ReLU, max-pool) at up to 32x32, a 128-channel conv, global average
    pool, one linear head per attribute: about 8M multiply-adds per image, so it trains in minutes on a CPU."""

    def __init__(self, channels: int, sizes, width: int = 32):
        super().__init__()
        layers, cin = [], channels
        for cout in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = cout
        layers += [nn.Conv2d(cin, cin, 3, padding=1, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
        self.heads = nn.ModuleList(nn.Linear(cin, k) for k in sizes)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Class logits per attribute for uint8 images ``(N, C, H, W)``."""
        x = to_float(images)
        if x.shape[-1] > SIZE:
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
        f = self.body(x)
        return [head(f) for head in self.heads]


def split(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, test)`` indices: a seeded random ``TEST_FRACTION`` of the images is held out."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n * TEST_FRACTION))
    return perm[n_test:], perm[:n_test]


@torch.no_grad()
def predict(model: LabelClassifier, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Predicted class codes ``(N, A)``."""
    model.eval()
    out = [torch.stack([logits.argmax(1) for logits in model(images[i : i + batch])], 1) for i in range(0, len(images), batch)]
    return torch.cat(out)


def accuracy(predicted: torch.Tensor, codes: torch.Tensor, space: LabelSpace) -> dict:
    """Accuracy per attribute, and per class of each attribute."""
    out = {}
    for a, attr in enumerate(space.attributes):
        hit = predicted[:, a] == codes[:, a]
        per_class = {c: round(float(hit[codes[:, a] == i].float().mean()), 4) for i, c in enumerate(space.classes[a]) if (codes[:, a] == i).any()}
        out[attr] = {"accuracy": round(float(hit.float().mean()), 4), "per_class": per_class}
    return out


def train_classifier(images: torch.Tensor, codes: torch.Tensor, space: LabelSpace, *, epochs: int, seed: int = 0,
                     batch: int = 128, lr: float = 2e-3) -> tuple[LabelClassifier, dict]:
    """A classifier trained on the train split of uint8 ``images`` with class ``codes`` ``(N, A)``; its accuracy on the
    held-out split."""
    train_idx, test_idx = split(len(images), seed)
    batch = min(batch, len(train_idx))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LabelClassifier(images.shape[1], space.sizes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(train_idx) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    flip = images.shape[1] == 3  # colours survive a mirror image; digits do not
    t0, loss = time.perf_counter(), torch.zeros(())
    model.train()
    for epoch in range(epochs):
        order = train_idx[torch.randperm(len(train_idx), generator=g)]
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i : i + batch]
            x = images[idx]
            if flip:
                mirror = torch.rand(len(x), generator=g) < 0.5
                x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
            loss = sum(F.cross_entropy(logits, codes[idx, a]) for a, logits in enumerate(model(x)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log.info(f"label classifier: epoch {epoch + 1}/{epochs}, loss {float(loss.detach()):.3f} ({time.perf_counter() - t0:.0f}s)")
    result = accuracy(predict(model, images[test_idx]), codes[test_idx], space)
    info = {"version": VERSION, "epochs": epochs, "seed": seed, "size": SIZE, "n_train": len(train_idx), "n_test": len(test_idx),
            "split": f"seeded random {TEST_FRACTION:.0%} held out (seed {seed})", "test_accuracy": result,
            "train_seconds": round(time.perf_counter() - t0, 1)}
    return model, info


def default_epochs(n_images: int) -> int:
    """About 200k training images seen, between 3 and 30 epochs."""
    return int(min(30, max(3, round(200_000 / max(n_images, 1)))))


def classifier_for(section, registry=None, epochs: int | None = None, seed: int = 0):
    """``(classifier, info, test images, test codes, label space)`` for a recipe's labelled ``data`` section: read
    from the classifier cache when it was trained before on the same data, labels and settings, else trained
    now (and cached)."""
    if not section.labels:
        raise GanzooError("label accuracy needs labels: the recipe's data.labels is empty")
    data = load_data(section, registry)
    epochs = epochs or default_epochs(len(data.images))
    _, test_idx = split(len(data.images), seed)
    key = dataset_key(section, registry)
    path = None
    if key is not None:
        tag = hashlib.sha256(json.dumps([key, list(section.labels), VERSION, epochs, seed, data.labels.to_dict()]).encode()).hexdigest()[:16]
        path = cache_dir("classifiers") / f"{key}-{tag}.safetensors"
    model = LabelClassifier(data.images.shape[1], data.labels.sizes)
    if path is not None and path.is_file():
        try:
            model.load_state_dict(load_file(str(path)))
            info = json.loads(path.with_suffix(".json").read_text())
            log.info(f"label classifier from cache {path} (held-out accuracy {_summary(info)})")
            return model.eval(), dict(info, sha256=file_sha256(str(path)), cache=str(path)), data.images[test_idx], data.codes[test_idx], data.labels
        except Exception as exc:  # noqa: BLE001 - a damaged cache costs a retraining, nothing else
            log.warning(f"unreadable classifier cache {path} ({type(exc).__name__}: {exc}); training again")
    log.info(f"label classifier: training on {len(data.images) - len(test_idx)} real images for {epochs} epochs (once; cached)")
    model, info = train_classifier(data.images, data.codes, data.labels, epochs=epochs, seed=seed)
    log.info(f"label classifier: held-out accuracy {_summary(info)}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(model.state_dict(), str(path))
        path.with_suffix(".json").write_text(json.dumps(info, indent=2))
        info = dict(info, sha256=file_sha256(str(path)), cache=str(path))
    return model.eval(), info, data.images[test_idx], data.codes[test_idx], data.labels


def _summary(info: dict) -> str:
    return ", ".join(f"{a} {v['accuracy']:.1%}" for a, v in info["test_accuracy"].items())


def label_accuracy(generator, section=None, n: int = 1000, seed: int = 0, registry=None, device=None, classifier=None) -> dict:
    """The fraction of ``n`` generated images the classifier puts in the class they were asked for, per attribute
    (and per class), beside the classifier's own accuracy on held-out real images. The labels asked for are those
    of the held-out real images (drawn with ``seed``), so the generated and the real figures share one label
    distribution. ``classifier``: a ``classifier_for`` result to reuse."""
    from .sampling import generate

    space = getattr(generator, "labels", None)
    if space is None:
        raise GanzooError("label accuracy needs a conditional generator (trained with data.labels)")
    model, info, _, test_codes, data_space = classifier or classifier_for(section, registry)
    if data_space.attributes != space.attributes or data_space.classes != space.classes:
        raise GanzooError(f"the data's labels ({data_space.describe()}) are not those the generator was trained on ({space.describe()})")
    pick = torch.randint(len(test_codes), (n,), generator=torch.Generator().manual_seed(seed + 31))
    asked = test_codes[pick]
    images = generate(generator, n, seed=seed, labels=asked, device=device)
    got = accuracy(predict(model, images.as_subclass(torch.Tensor)), asked, space)
    return {"generated": got, "n_generated": n,
            "classifier": {k: info.get(k) for k in ("sha256", "version", "epochs", "seed", "size", "split", "n_train", "n_test",
                                                    "test_accuracy")},
            "labels_asked": "the labels of held-out real images, drawn with the seed"}
