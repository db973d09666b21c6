"""Forward speed of archdsl-built models against the hand-written reference models.

For each network with a timm twin, builds both, runs them on the same input in eval mode and
prints the median time per forward pass and the ratio (archdsl / reference), measured side by
side in one run, alternating the two so that machine noise hits both alike.

    python tools/bench_forward.py [--repeats 10] [--batch 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import timm
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402

PAIRS = [
    ("inception_v3", "inception_v3"),
    ("inception_v4", "inception_v4"),
    ("inception_resnet_v2", "inception_resnet_v2"),
]


def time_once(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"median forward time, batch {args.batch}, {args.threads} threads, eval, no_grad")
    print(f"{'network':<22}{'archdsl ms':>12}{'timm ms':>10}{'ratio':>8}")
    for spec_name, timm_name in PAIRS:
        spec = archdsl.load(ROOT / "specs" / f"{spec_name}.yaml")
        ours = spec.build().eval()
        ref = timm.create_model(timm_name, pretrained=False).eval()
        x = torch.randn(args.batch, *spec.input_shape)
        a, b = [], []
        with torch.no_grad():
            for model in (ours, ref):  # warm-up
                model(x)
            for _ in range(args.repeats):
                a.append(time_once(ours, x))
                b.append(time_once(ref, x))
        ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        print(f"{spec_name:<22}{ma:>12.1f}{mb:>10.1f}{ma / mb:>8.2f}")


if __name__ == "__main__":
    main()
