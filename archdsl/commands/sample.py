"""Draw candidates of a search space and write each as a plain spec that ``archdsl build`` and
``archdsl cost`` accept wherever it is written (included libraries are written in).

Only feasible candidates are written (valid, constraints hold, inside the budget), one per
distinct network (by architecture hash). The same space, seed and -n give the same files: named
``<space>-<i>-<hash>.yaml``, each with a header naming the space and its sha256, the values, the
training knobs and the architecture's sha256. Imports no torch.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..program import read_program
from ..search.space import SearchSpace, assignments, network_key, word
from ..search.survey import refusal, survey
from ..usage import UsageError, spec_file

HELP = "write n feasible candidates of a search space as plain, buildable specs (no torch)"
EXAMPLES = """\
  archdsl sample specs/search/cifar_resnet.yaml -n 5 --seed 0 -o samples/
  archdsl build samples/cifar_resnet-01-*.yaml                  # each one builds as it is"""
DRAWS_PER_SAMPLE = 200  # draws allowed per sample asked for before giving up



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="a space: a spec whose values are choices (docs/search.md)")
    p.add_argument("-n", type=int, default=5, help="how many candidates (default 5)")
    p.add_argument("--seed", type=int, help="the draw's seed (default: search.seed, else 0)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the specs")
    p.add_argument("--library", action="append", default=[], metavar="DIR",
                   help="another folder includes may come from (repeatable)")
    p.add_argument("--allow-large", action="store_true",
                   help="lift the size limits of every candidate (see archdsl validate)")


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UsageError("-n is 1 or more")
    space = SearchSpace.read(spec_file(args.spec), args.library, args.allow_large)
    seed = args.seed if args.seed is not None else (space.seed or 0)
    picked = draw_feasible(space, args.n, seed)
    if not picked:
        err = refusal(space, survey(space))
        if err is not None:
            raise err
        raise UsageError(f"no feasible candidate in {DRAWS_PER_SAMPLE * args.n:,} draws "
                         f"(seed {seed}): the feasible share is too small to sample blindly")
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make {out}: {exc.strerror or exc}") from None
    stem = space.path.stem
    for i, (values, digest) in enumerate(picked, 1):
        target = out / f"{stem}-{i:02d}-{digest[:12]}.yaml"
        header = sample_header(space, values, digest, f"sample {i} of {args.n}, seed {seed}")
        text = space.concrete_spec(values, header)
        try:
            write_text_atomic(target, text)
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        check_written(space, values, target)
        print(f"{target}: {_kv(values)}")
    if len(picked) < args.n:
        print(f"only {len(picked)} distinct feasible networks found in "
              f"{DRAWS_PER_SAMPLE * args.n:,} draws")
        return 1
    return 0


def draw_feasible(space: SearchSpace, n: int, seed: int) -> list[tuple[dict[str, Any], str]]:
    """Up to ``n`` feasible candidates with distinct architecture hashes, seeded."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    for _ in range(DRAWS_PER_SAMPLE * n):
        values = space.sample_values(rng)
        if not space.feasible(values):
            continue
        network = space.network_hash(values)  # one file per network, whatever its training
        if network in seen:
            continue
        seen.add(network)
        out.append((values, space.arch_hash(values)))
        if len(out) == n:
            break
    return out


def sample_header(space: SearchSpace, values: dict[str, Any], digest: str, what: str) -> str:
    arch = {k: v for k, v in values.items() if space.choice(k).architecture}
    sets = " ".join(f"--set {k}={word(v)}" for k, v in arch.items())
    lines = [f"A candidate of the space {space.path} ({what}).",
             f"space sha256: {space.sha256()}",
             f"values: {_kv(arch)}",
             f"training: {_kv(space.training_knobs(values))}",
             f"architecture sha256: {digest}",
             f"the same network: archdsl build {space.path} {sets}".rstrip()]
    return "".join(f"# {line}\n" for line in lines)


def check_written(space: SearchSpace, values: dict[str, Any], target: Path) -> None:
    """The written spec must be the candidate's network (an internal error otherwise)."""
    written = read_program(target).resolve({}, allow_large=space.allow_large)
    if network_key(written.ir) != network_key(space.resolve(values).ir):
        raise RuntimeError(f"{target} does not resolve to the candidate it was written for")


_kv = assignments
