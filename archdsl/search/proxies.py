"""Zero-cost proxies: scores of an untrained network from one mini-batch, and how they rank.

- ``synflow`` (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
  conserving synaptic flow"; as a NAS proxy: Abdelfattah et al. 2021, "Zero-Cost Proxies for
  Lightweight NAS"): every weight replaced by its absolute value, an all-ones input (no data),
  double precision, R = sum of the outputs; the score is sum |theta * dR/dtheta| over the
  weights of convolutions and linear layers. Batch norm runs in eval mode with its initial
  statistics (near identity), as Abdelfattah et al. remove it.
- ``naswot`` (Mellor et al. 2021, "Neural Architecture Search without Training"): the binary
  codes c_i of every ReLU unit for the N images of the batch, the kernel
  K_H[i, j] = N_A - hamming(c_i, c_j), the score log|det K_H|.
- ``grad_norm`` (Abdelfattah et al. 2021): the sum over conv and linear weights of the L2 norm of
  the cross-entropy loss's gradient on the batch.
- ``params`` and ``macs``: archdsl's exact count (no torch needed).

The literature finds params and MACs hard to beat, so whenever proxies are used their rank
correlation with params and MACs on the same candidates is printed: :func:`rank_correlations`,
:func:`correlation_table`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..table import render

PROXIES = ("synflow", "naswot", "grad_norm", "params", "macs")
COST_PROXIES = ("params", "macs")
BATCH = 64


def synflow(model: Any, input_shape: Sequence[int]) -> float:
    """Synaptic flow of ``model`` (left unchanged: a copy is scored)."""
    import torch

    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            t.abs_()
    net.zero_grad(set_to_none=True)
    out = _main(net(torch.ones((1, *input_shape), dtype=torch.float64)))
    out.sum().backward()
    with torch.no_grad():
        return float(sum((m.weight * m.weight.grad).abs().sum()
                         for m in _weighted(net) if m.weight.grad is not None))


def naswot_kernel(codes: np.ndarray) -> np.ndarray:
    """K_H for binary codes (N x N_A): agreements, i.e. N_A minus the Hamming distance."""
    c = codes.astype(np.float64)
    return c @ c.T + (1 - c) @ (1 - c).T


def naswot(model: Any, images: Any) -> float:
    """log|det K_H| over the ReLU codes of ``images`` (train mode, as Mellor et al.)."""
    import torch

    net = copy.deepcopy(model).train()
    codes: list[Any] = []

    def hook(_m: Any, _inp: Any, out: Any) -> None:
        codes.append((out.detach() > 0).flatten(1))

    relus = (torch.nn.ReLU, torch.nn.ReLU6)
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, relus)]
    try:
        with torch.no_grad():
            net(images)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return float("nan")  # no ReLU: the score is not defined
    kernel = naswot_kernel(torch.cat(codes, 1).numpy())
    sign, logdet = np.linalg.slogdet(kernel)
    return float(logdet) if sign != 0 else float("-inf")


def grad_norm(model: Any, images: Any, labels: Any) -> float:
    """Sum of the L2 norms of the loss gradient of each conv and linear weight."""
    import torch

    net = copy.deepcopy(model).train()
    net.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(_main(net(images)), labels).backward()
    return float(sum(m.weight.grad.norm() for m in _weighted(net)
                     if m.weight.grad is not None))


def compute(model: Any, spec: Any, images: Any, labels: Any,
            names: Iterable[str] = PROXIES) -> dict[str, float]:
    """The named proxies of one candidate on one mini-batch."""
    names = list(names)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"unknown proxy {unknown[0]!r} (known: {', '.join(PROXIES)})")
    total = spec.cost().total
    out: dict[str, float] = {}
    for name in names:
        if name == "synflow":
            out[name] = synflow(model, spec.input_shape)
        elif name == "naswot":
            out[name] = naswot(model, images)
        elif name == "grad_norm":
            out[name] = grad_norm(model, images, labels)
        else:
            out[name] = float(total.get(name))
    return out


def batch(dataset: str, size: int = BATCH, seed: int = 0) -> tuple[Any, Any]:
    """A mini-batch of the training part of a built-in data set (see archdsl.search.train)."""
    import torch

    from .train import load_data

    data = load_data(dataset)
    idx = np.random.default_rng(seed).choice(len(data.x_train), size, replace=False)
    return torch.from_numpy(data.x_train[idx]), torch.from_numpy(data.y_train[idx])


def evaluate(model: Any, spec: Any, context: Any) -> dict[str, float]:
    """An evaluation function (``--eval archdsl.search.proxies:evaluate``): every proxy on one
    batch of ``context.dataset``, no training."""
    import torch

    from .train import check_shapes

    dataset = getattr(context, "dataset", "digits") or "digits"
    check_shapes(spec, dataset)
    seed = int(getattr(context, "seed", 0))
    images, labels = batch(dataset, seed=seed)
    torch.manual_seed(seed)
    return compute(model, spec, images, labels)


@dataclass(frozen=True)
class Correlation:
    proxy: str
    against: str
    n: int
    spearman: float
    kendall: float


def rank_correlations(records: Sequence[Mapping[str, Any]], proxies: Iterable[str],
                      against: Iterable[str] = ("params", "macs", "accuracy"),
                      ) -> list[Correlation]:
    """Spearman's rho and Kendall's tau (tau-b) of each proxy with each reference metric, over
    the records that have both as finite numbers (pairs with fewer than 3 records are left out)."""
    from scipy.stats import kendalltau, spearmanr

    rows = []
    for p in proxies:
        for a in against:
            if a == p:
                continue
            pairs = [(float(r[p]), float(r[a])) for r in records
                     if _finite(r.get(p)) and _finite(r.get(a))]
            if len(pairs) < 3:
                continue
            x, y = np.array(pairs).T
            rho = spearmanr(x, y).statistic
            tau = kendalltau(x, y).statistic
            rows.append(Correlation(p, a, len(pairs), float(rho), float(tau)))
    return rows


def correlation_table(rows: Sequence[Correlation]) -> str:
    """The rank correlations as a plain-text table (NaN: one side is constant)."""
    return render(["proxy", "vs", "n", "spearman", "kendall"],
                  [[r.proxy, r.against, r.n, round(r.spearman, 3), round(r.kendall, 3)]
                   for r in rows])


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _weighted(net: Any) -> list[Any]:
    import torch

    kinds = (torch.nn.Conv2d, torch.nn.Linear)
    return [m for m in net.modules() if isinstance(m, kinds)]


def _main(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) else out
