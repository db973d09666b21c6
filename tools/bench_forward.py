"""Forward speed of archdsl-built models against their hand-written reference models.

For each network, builds the spec and its first ``reference:`` model (timm / torchvision), ports
the reference's weights into ours (so both compute the same function), and times both on the
same input in eval mode under ``no_grad``, eager and compiled (``torch.compile``), at each batch
size. The two models are timed alternately (ABBA), so that machine noise hits both alike, in
``--rounds`` rounds over each network's cells, so that a burst of load lands in one round's share
of a cell. The table gives median times per forward pass, the median of the paired ratios
archdsl / reference (robust to load that drifts during a row), the lowest and highest round's
ratio (how noisy the cell was) and the machine's one-minute load average (the machine may be
shared: a high load makes a row noisy).

    python tools/bench_forward.py                             # every network, batch 1 and 8
    python tools/bench_forward.py --nets resnet50 xception --repeats 5 --no-compile
    python tools/bench_forward.py --device cuda --dtype bfloat16
    python tools/bench_forward.py --model exported   # the file `archdsl export` writes
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.port import port_weights, reference_model  # noqa: E402
from archdsl.program import read_program  # noqa: E402
from archdsl.reference import references  # noqa: E402

NETWORKS = ["inception_v3", "inception_v4", "inception_resnet_v2", "resnet50", "mobilenet_v1",
            "xception", "mobilenet_v3_large"]
DTYPES = ("float32", "bfloat16", "channels_last")


Pair = tuple[str, nn.Module, nn.Module, tuple[int, ...]]


def pair(name: str, model: str = "built") -> Pair | str:
    """(reference name, ours, reference, input shape) with the same weights, or why not.
    ``model``: ours is the built model, or the exported file's (with the same weights)."""
    path = ROOT / "specs" / f"{name}.yaml"
    if not path.is_file():
        return f"no spec file {path.relative_to(ROOT)}"
    ref = next((r for r in references(read_program(path)) if r.model), None)
    if ref is None:
        return "the spec names no reference model"
    spec = archdsl.load(path, **ref.set)
    theirs = reference_model(ref.model, ref.kwargs)
    ours = port_weights(spec, theirs).model
    if model == "exported":
        ours = exported(spec, ours)
    return ref.model, ours, theirs, spec.input_shape


def exported(spec: archdsl.Spec, built: nn.Module) -> nn.Module:
    """The network of the file ``archdsl export`` writes for the spec, imported from a
    temporary folder, with the built model's weights."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{spec.name}_exported.py"
        path.write_text(archdsl.export_source(spec), encoding="utf-8")
        found = importlib.util.spec_from_file_location(path.stem, path)
        assert found is not None and found.loader is not None
        module = importlib.util.module_from_spec(found)
        found.loader.exec_module(module)
    network = getattr(module, module.__all__[0])()
    network.load_state_dict(built.state_dict())
    return network


def prepare(model: nn.Module, device: str, dtype: str) -> nn.Module:
    model = model.eval().to(device)
    if dtype == "bfloat16":
        return model.to(torch.bfloat16)
    if dtype == "channels_last":
        return model.to(memory_format=torch.channels_last)
    return model


def make_input(batch: int, shape: tuple[int, ...], device: str, dtype: str) -> torch.Tensor:
    x = torch.randn(batch, *shape, device=device)
    if dtype == "bfloat16":
        return x.to(torch.bfloat16)
    if dtype == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    return x


def time_once(model: Callable, x: torch.Tensor, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model(x)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved(ours: Callable, theirs: Callable, x: torch.Tensor, repeats: int, warmup: int,
                device: str) -> tuple[list[float], list[float]]:
    """Seconds per forward of each, timed alternately after ``warmup`` calls each: pairs that
    ran back to back, under about the same load."""
    a, b = [], []
    for _ in range(warmup):
        ours(x)
        theirs(x)
    for i in range(repeats):
        # Alternate which runs first (ABBA...), so that neither always follows the other
        # (warm caches) or always meets load that drifts within a pair first.
        if i % 2:
            b.append(time_once(theirs, x, device))
            a.append(time_once(ours, x, device))
        else:
            a.append(time_once(ours, x, device))
            b.append(time_once(theirs, x, device))
    return a, b


def summary(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median seconds of each and the median of the paired ratios ours / reference."""
    ratio = statistics.median(p / q for p, q in zip(a, b, strict=True))
    return statistics.median(a), statistics.median(b), ratio


def cell(result: tuple[tuple[float, float, float], float, float] | None) -> str:
    """ours ms, reference ms, ratio and its spread over the rounds."""
    if result is None:
        return f"{'-':>9}{'-':>9}{'-':>7}{'-':>12}"
    (ours, theirs, ratio), low, high = result
    return f"{ours * 1e3:>9.1f}{theirs * 1e3:>9.1f}{ratio:>7.3f}{low:>6.3f}-{high:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=NETWORKS, metavar="SPEC",
                        help="spec names (files in specs/); default: %(default)s")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed runs of each model per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over the network's cells: a cell's runs are spread over "
                        "the network's whole time, so that a burst of load on the shared "
                        "machine lands in one round's share, not in one cell")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (compiled: "
                        "the first compiles)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="channels_last: float32 in channels-last memory format")
    parser.add_argument("--model", default="built", choices=("built", "exported"),
                        help="ours: the model archdsl builds, or the one its exported source "
                        "defines")
    parser.add_argument("--no-compile", action="store_true", help="eager only (compiling takes "
                        "about a minute a model on two CPU cores)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    torch.set_num_threads(args.threads)
    print(f"archdsl ({args.model}) / reference forward time: torch {torch.__version__}, "
          f"device {args.device}, "
          f"dtype {args.dtype}, {torch.get_num_threads()} threads, eval, no_grad; medians of "
          f"{args.rounds} rounds x {args.repeats} interleaved runs (ratio: median of the paired "
          f"ratios; spread: lowest-highest round's ratio); same weights (ported)")
    print(f"{'network':<21}{'reference':<28}{'batch':>5} | {'eager: ours':>11}{'ref ms':>9}"
          f"{'ratio':>7}{'spread':>12} | {'compiled: ours':>14}{'ref ms':>9}{'ratio':>7}"
          f"{'spread':>12} | load1")
    for name in args.nets:
        built = pair(name, args.model)
        if isinstance(built, str):
            print(f"{name:<21}skipped: {built}")
            continue
        ref_name, ours, theirs, shape = built
        ours, theirs = (prepare(m, args.device, args.dtype) for m in (ours, theirs))
        fast = (torch.compile(ours, dynamic=False), torch.compile(theirs, dynamic=False))
        modes = [("eager", (ours, theirs), args.warmup)]
        if not args.no_compile:
            modes.append(("compiled", fast, max(args.warmup, 2)))
        inputs = {batch: make_input(batch, shape, args.device, args.dtype)
                  for batch in args.batches}
        runs: dict[tuple[int, str], list[tuple[list[float], list[float]]]] = {}
        loads: list[float] = []
        with torch.no_grad():
            for r in range(args.rounds):
                for batch in args.batches:
                    for mode, models, warmup in modes:
                        runs.setdefault((batch, mode), []).append(interleaved(
                            *models, inputs[batch], args.repeats, warmup if r == 0 else 1,
                            args.device))
                loads.append(os.getloadavg()[0])
        for batch in args.batches:
            cells = []
            for mode, _, _ in modes:
                rounds = runs[(batch, mode)]
                a = [t for ra, _ in rounds for t in ra]
                b = [t for _, rb in rounds for t in rb]
                per_round = [summary(ra, rb)[2] for ra, rb in rounds]
                cells.append((summary(a, b), min(per_round), max(per_round)))
            cells += [None] * (2 - len(cells))
            print(f"{name:<21}{ref_name:<28}{batch:>5} | "
                  + " | ".join(cell(c) for c in cells)
                  + f" | {statistics.median(loads):5.2f}", flush=True)
        torch._dynamo.reset()  # free the compiled graphs before the next network


if __name__ == "__main__":
    main()
