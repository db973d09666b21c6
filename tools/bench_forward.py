"""Forward speed of archdsl-built models against their hand-written reference models.

For each network, builds the spec and its first ``reference:`` model (timm / torchvision), ports
the reference's weights into ours (so both compute the same function), and times both on the
same input in eval mode under ``no_grad``, eager and compiled (``torch.compile``), at each batch
size. The two models are timed alternately (ABBA), so that machine noise hits both alike, in
``--rounds`` rounds over each network's cells, so that a burst of load lands in one round's share
of a cell. The table gives median times per forward pass, the median of the paired ratios
archdsl / reference (robust to load that drifts during a row), the lowest and highest round's
ratio (how noisy the cell was), the ratio of the process's CPU time (all threads), the machine's
one-minute load average (the machine may be shared: a high load makes a row noisy) and the page
faults per pass of each model.

On a virtual machine whose host is busy, the wall time of a pass includes the time the host gave
the virtual CPUs to others ("steal" in ``vmstat``), in bursts that can double a pass; the CPU time
leaves it out (Linux with paravirtual steal accounting), so its ratio is the steadier one there.
It counts both threads' work, spinning included, the same way for both models.

Page faults are how the memory allocator shows in the times: glibc's malloc returns freed
buffers of a few MB to the system and takes them back on the next pass, each page a fault,
depending on the order of earlier allocations. ``--malloc steady`` runs under glibc settings
that keep freed memory (``GLIBC_TUNABLES``), so that both models run without faults; the
default is what a user gets.

    python tools/bench_forward.py                             # every network, batch 1 and 8
    python tools/bench_forward.py --nets resnet50 xception --repeats 5 --no-compile
    python tools/bench_forward.py --device cuda --dtype bfloat16
    python tools/bench_forward.py --model exported   # the file `archdsl export` writes
    python tools/bench_forward.py --malloc steady     # no page faults from the allocator
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
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


# glibc malloc's settings for --malloc steady: no buffer is mapped from the system on its own
# (mmap_max 0: all come from the heap) and freed memory stays with the process (trim threshold
# 1 TiB), so that after the first passes no pass meets a page fault.
STEADY_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776"


MEASURES = ("wall", "cpu", "faults")


def time_once(model: Callable, x: torch.Tensor, device: str) -> tuple[float, float, int]:
    """One forward: wall seconds, the process's CPU seconds (all threads) and its minor page
    faults meanwhile."""
    if device == "cuda":
        torch.cuda.synchronize()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu = time.process_time()
    start = time.perf_counter()
    model(x)
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


# One cell's passes in one round: for each measure, (ours, reference) values pass by pass.
Runs = dict[str, tuple[list[float], list[float]]]


def interleaved(ours: Callable, theirs: Callable, x: torch.Tensor, repeats: int, warmup: int,
                device: str) -> Runs:
    """Each model's passes, timed alternately after ``warmup`` calls each: pairs that ran back
    to back, under about the same load."""
    runs: Runs = {m: ([], []) for m in MEASURES}
    for _ in range(warmup):
        ours(x)
        theirs(x)
    for i in range(repeats):
        # Alternate which runs first (ABBA...), so that neither always follows the other
        # (warm caches) or always meets load that drifts within a pair first.
        for which in ((1, 0) if i % 2 else (0, 1)):
            values = time_once((ours, theirs)[which], x, device)
            for measure, value in zip(MEASURES, values, strict=True):
                runs[measure][which].append(value)
    return runs


def paired_ratio(a: list[float], b: list[float]) -> float:
    """The median of the paired ratios ours / reference (robust to load that drifts)."""
    return statistics.median(p / q for p, q in zip(a, b, strict=True))


def cell(rounds: list[Runs] | None) -> str:
    """ours ms, reference ms, wall ratio and its lowest-highest round, CPU-time ratio."""
    if rounds is None:
        return f"{'-':>9}{'-':>9}{'-':>7}{'-':>12}{'-':>7}"
    joined = {m: tuple([v for run in rounds for v in run[m][k]] for k in (0, 1))
              for m in MEASURES}
    ours, theirs = (statistics.median(t) * 1e3 for t in joined["wall"])
    per_round = [paired_ratio(*run["wall"]) for run in rounds]
    return (f"{ours:>9.1f}{theirs:>9.1f}{paired_ratio(*joined['wall']):>7.3f}"
            f"{min(per_round):>6.3f}-{max(per_round):.3f}{paired_ratio(*joined['cpu']):>7.3f}")


def faults(rounds: list[Runs]) -> str:
    """Page faults per pass: ours/reference."""
    return "/".join(f"{statistics.mean(v for run in rounds for v in run['faults'][k]):.0f}"
                    for k in (0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=NETWORKS, metavar="SPEC",
                        help="spec names (files in specs/); default: %(default)s")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=4,
                        help="timed runs of each model per round")
    parser.add_argument("--rounds", type=int, default=10,
                        help="rounds over the network's cells: a cell's runs are spread over "
                        "the network's whole time, so that a burst of load on the shared "
                        "machine lands in one round's share, not in one cell. The state that "
                        "sways a ratio (load, where the allocator puts the buffers) changes "
                        "more between rounds than within one: many short rounds sample more "
                        "of it")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (compiled: "
                        "the first compiles)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="channels_last: float32 in channels-last memory format")
    parser.add_argument("--model", default="built", choices=("built", "exported"),
                        help="ours: the model archdsl builds, or the one its exported source "
                        "defines")
    parser.add_argument("--malloc", default="default", choices=("default", "steady"),
                        help="steady: rerun under glibc malloc settings that keep freed memory, "
                        "so that neither model meets page faults")
    parser.add_argument("--no-compile", action="store_true", help="eager only (compiling takes "
                        "about a minute a model on two CPU cores)")
    args = parser.parse_args()
    if args.malloc == "steady" and os.environ.get("GLIBC_TUNABLES") != STEADY_MALLOC:
        # glibc reads its tunables at start: the same command again, under them.
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  {**os.environ, "GLIBC_TUNABLES": STEADY_MALLOC})
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    torch.set_num_threads(args.threads)
    print(f"archdsl ({args.model}) / reference forward time: torch {torch.__version__}, "
          f"device {args.device}, malloc {args.malloc}, "
          f"dtype {args.dtype}, {torch.get_num_threads()} threads, eval, no_grad; medians of "
          f"{args.rounds} rounds x {args.repeats} interleaved runs (ratio: median of the paired "
          f"wall-time ratios; spread: lowest-highest round's ratio; cpu: the same of the "
          f"process's CPU time, which leaves out time the VM's host took); same weights "
          f"(ported)")
    print(f"{'network':<20}{'reference':<27}{'batch':>5} | {'eager: ours':>11}{'ref ms':>9}"
          f"{'ratio':>7}{'spread':>12}{'cpu':>7} | {'compiled: ours':>14}{'ref ms':>9}"
          f"{'ratio':>7}{'spread':>12}{'cpu':>7} | load1 | faults/pass ours/ref")
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
        runs: dict[tuple[int, str], list[Runs]] = {}
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
            cells = [runs[(batch, mode)] for mode, _, _ in modes]
            print(f"{name:<20}{ref_name:<27}{batch:>5} | "
                  + " | ".join(cell(c) for c in [*cells, None][:2])
                  + f" | {statistics.median(loads):5.2f} | "
                  + " ".join(faults(c) for c in cells), flush=True)
        torch._dynamo.reset()  # free the compiled graphs before the next network


if __name__ == "__main__":
    main()
