"""Spaces: choices in the spec, their dimensions and conditions, candidates, concrete specs,
hashes, `archdsl space`, `archdsl sample` and `archdsl validate` over every choice.

Costs are never hard-coded: a candidate's cost is compared with the cost of its concrete spec,
read back and resolved independently, or of the space loaded with the same knobs."""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SPECS

import archdsl
from archdsl.cli import main
from archdsl.cost import totals
from archdsl.errors import SpecErrors
from archdsl.program import read_program
from archdsl.search.space import SearchSpace, network_key
from archdsl.search.survey import survey

SPACES = sorted((SPECS / "search").glob("*.yaml"))

SMALL = """
name: small
input: [1, 8, 8]
params:
  num_classes: 10
  w: {choice: [4, 8]}
  n: {int: [1, 3]}
defaults:
  conv: {norm: batchnorm, act: relu}
network:
  - {conv: {filters: $w, kernel: 3}, repeat: $n, name: body}
  - {conv: {filters: {choice: [8, 16]}, kernel: 3}, name: mid}
  - name: tail
    choice:
      plain: [conv 3x3 16]
      wide:
        - {conv: {filters: {int: [8, 32], step: 8}, kernel: 3}}
  - gap
  - linear $num_classes as fc
search:
  budget: {macs: 60K}
  train: {lr: {float: [0.001, 0.1], log: true}, epochs: 2}
"""


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def small(write_spec: Callable[..., Path]) -> SearchSpace:
    return SearchSpace.read(write_spec(SMALL))


# --- dimensions --------------------------------------------------------------------------------
def test_dimensions_global_inline_and_conditional(small: SearchSpace) -> None:
    dims = {d.name: d for d in small.dimensions}
    assert list(dims) == ["w", "n", "mid.filters", "tail", "tail.wide.0.filters", "lr"]
    assert dims["w"].kind == "categorical" and dims["w"].choices == (4, 8)
    assert (dims["n"].kind, dims["n"].low, dims["n"].high) == ("int", 1, 3)
    assert dims["tail"].choices == ("plain", "wide")
    assert dims["tail.wide.0.filters"].condition == ("tail", ("wide",))
    assert dims["tail.wide.0.filters"].step == 8
    assert dims["lr"].architecture is False and dims["lr"].log
    assert all(d.architecture for n, d in dims.items() if n != "lr")
    # where: the line of each choice in the file
    assert dims["mid.filters"].where.endswith(":11:22")
    # the inline dimension is named after the module it sets: the resolved network has it
    spec = small.resolve({"w": 4, "n": 1, "mid.filters": 8, "tail": "wide",
                          "tail.wide.0.filters": 16})
    paths = {n.path for n in spec.ir.walk()}
    assert {"mid", "tail.wide.0"} <= paths


def test_shipped_block_kinds_space_has_conditional_se() -> None:
    space = SearchSpace.read(SPECS / "search" / "cifar_blocks.yaml")
    cond = {d.name: d.condition for d in space.dimensions}
    assert cond["stage2"] is None
    assert cond["stage2.bottleneck.bottleneck_stage.se"] == ("stage2", ("bottleneck",))
    assert cond["stage2.basic.basic_stage.se"] == ("stage2", ("basic",))


def test_size_equals_brute_force_enumeration(small: SearchSpace) -> None:
    # independent count: every combination of the values, the conditional one only when
    # `tail` is `wide`
    brute = 0
    for _w, _n, _m, tail in itertools.product((4, 8), (1, 2, 3), (8, 16), ("plain", "wide")):
        brute += 4 if tail == "wide" else 1
    assert small.size(architecture_only=True) == brute
    assert len(list(small.enumerate())) == brute
    assert small.size() == float("inf")  # lr is a continuous range


def test_active_and_complete(small: SearchSpace) -> None:
    plain = {"w": 4, "n": 2, "mid.filters": 8, "tail": "plain", "tail.wide.0.filters": 24,
             "lr": 0.01}
    assert [d.name for d in small.active(plain)] == ["w", "n", "mid.filters", "tail", "lr"]
    done = small.complete(plain)
    assert "tail.wide.0.filters" not in done and done["tail"] == "plain"
    wide = {k: v for k, v in plain.items() if k != "tail.wide.0.filters"} | {"tail": "wide"}
    with pytest.raises(SpecErrors, match="no value for dimension 'tail.wide.0.filters'"):
        small.complete(wide)
    with pytest.raises(SpecErrors, match=r"n=7 is not a value"):
        small.complete({**plain, "n": 7})
    with pytest.raises(SpecErrors, match=r"tail.wide.0.filters=12 is not a value"):
        small.complete({**plain, "tail": "wide", "tail.wide.0.filters": 12})
    with pytest.raises(SpecErrors, match="did you mean 'w'"):
        small.complete({**plain, "ww": 4})
    # the knob spelling of an inline dimension is accepted
    assert small.complete({**plain, "mid_filters": 16})["mid.filters"] == 16


# --- candidates --------------------------------------------------------------------------------
def _random_feasible(space: SearchSpace, n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        v = space.sample_values(rng)
        if space.feasible(v):
            out.append(v)
    return out


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_cost_and_network_equal_the_concrete_spec_read_back(path: Path, tmp_path: Path) -> None:
    space = SearchSpace.read(path)
    for i, values in enumerate(_random_feasible(space, 3)):
        text = space.concrete_spec(values)
        assert "choice:" not in text and "\ninclude:" not in text and "\nsearch:" not in text
        written = tmp_path / f"c{i}.yaml"  # outside the spec library: nothing to include
        written.write_text(text, encoding="utf-8")
        spec = archdsl.load(written)
        assert spec.cost().total == space.cost(values)
        assert network_key(spec.ir) == network_key(space.resolve(values).ir)
        # and the space loaded as a plain spec with the same knobs (--set) is the same network
        knobs = {k: v for k, v in values.items() if space.choice(k).architecture}
        assert totals(archdsl.load(path, **knobs).ir) == space.cost(values)


def test_equal_networks_hash_equal_and_different_ones_do_not() -> None:
    space = SearchSpace.read(SPECS / "search" / "cifar_resnet.yaml")
    base = {"residual": False, "shortcut": "A", "stage1.c": 16, "stage1.n": 2, "stage2.c": 32,
            "stage2.n": 2, "stage3.c": 64, "stage3.n": 2}
    # plain units have no shortcut: A and B are the same network
    assert space.arch_hash(base) == space.arch_hash({**base, "shortcut": "B"})
    residual = {**base, "residual": True}
    assert space.arch_hash(residual) != space.arch_hash({**residual, "shortcut": "B"})
    assert space.arch_hash(base) != space.arch_hash(residual)
    blocks = SearchSpace.read(SPECS / "search" / "cifar_blocks.yaml")
    v = blocks.fill({"stage1": "basic"})
    # an inactive dimension's value changes nothing
    inactive = {**v, "stage1.bottleneck.bottleneck_stage.se": 4}
    assert blocks.arch_hash(v) == blocks.arch_hash(inactive)
    assert blocks.arch_hash(v) != blocks.arch_hash(blocks.fill({"stage1": "bottleneck"}))


def test_training_knobs_and_the_hash(small: SearchSpace) -> None:
    v = small.fill({"lr": 0.01})
    assert small.training_knobs(v) == {"epochs": 2, "lr": 0.01}
    assert small.network_hash(v) == small.network_hash({**v, "lr": 0.02})
    assert small.arch_hash(v) != small.arch_hash({**v, "lr": 0.02})


def test_feasible_means_valid_constraints_and_budget() -> None:
    space = SearchSpace.read(SPECS / "search" / "digits_cnn.yaml")
    assert space.budget is not None and space.budget.low is None
    seen = {"constraint": 0, "budget": 0, "ok": 0}
    for v in space.enumerate():
        ok = space.feasible(v)
        if v["c2"] < v["c1"]:
            assert not ok
            seen["constraint"] += 1
        elif space.cost(v).macs > space.budget.high:
            assert not ok
            seen["budget"] += 1
        else:
            assert ok
            seen["ok"] += 1
    assert all(seen.values())
    # the shipped digits space keeps between 10% and 50% of its candidates
    assert 0.1 <= seen["ok"] / sum(seen.values()) <= 0.5


def test_sampling_costs_about_a_millisecond() -> None:
    space = SearchSpace.read(SPECS / "search" / "digits_cnn.yaml")
    rng = random.Random(0)
    for _ in range(50):  # warm the caches as a search would
        space.feasible(space.sample_values(rng))
    start = time.perf_counter()
    n = 300
    for _ in range(n):
        v = space.sample_values(rng)
        if space.feasible(v):
            space.arch_hash(v)
    per = (time.perf_counter() - start) / n
    assert per < 0.02, f"{per * 1000:.2f} ms per candidate"  # about 1 ms; slack for busy CI


# --- the survey against brute force ------------------------------------------------------------
def test_survey_figures_equal_brute_force(write_spec: Callable[..., Path]) -> None:
    path = write_spec(SMALL)
    space = SearchSpace.read(path)
    s = survey(space)
    assert s.method == "exhaustive"
    # brute force, independently: every combination loaded from the file with its knobs
    macs = []
    for w, n, m in itertools.product((4, 8), (1, 2, 3), (8, 16)):
        for tail, f in [("plain", None), *[("wide", f) for f in (8, 16, 24, 32)]]:
            knobs = {"w": w, "n": n, "mid_filters": m, "tail": tail}
            if f is not None:
                knobs["tail_wide_0_filters"] = f
            macs.append(archdsl.load(path, **knobs).cost().total.macs)
    assert s.evaluated == len(macs)
    assert (s.low["macs"].value, s.high["macs"].value) == (min(macs), max(macs))
    assert s.inside == sum(x <= 60_000 for x in macs)


# --- located errors ----------------------------------------------------------------------------
BAD = [
    ("params: {w: {choice: []}}", "2:22", "choice takes a non-empty list"),
    ("params: {w: {int: [4, 1]}}", "2:19", "low is above high"),
    ("params: {w: {int: [1, 4], lgo: true}}", "2:27", "did you mean 'log'"),
    ("params: {w: {chioce: [1, 2]}}", "2:14", "did you mean 'choice'"),
    ("params: {w: {choice: [1, 2], default: 3}}", "2:39", "default 3 is not one"),
    ("params: {w: {float: [0, 1], log: true}}", "2:21", "log range needs a positive low"),
    ("params: {w: {choice: [1, $k]}}", "2:26", "choices are literal values"),
    ("params: {w: {int: [1, 2.5]}}", "2:23", "not an integer"),
    ("params: {w: {choice: [1, 1]}}", "2:26", "listed twice"),
    ("params: {w: 1}\nsearch: {sampler: tpx}", "3:19", "did you mean 'tpe'"),
    ("params: {w: 1}\nsearch: {budgte: {macs: 1M}}", "3:10", "did you mean 'budget'"),
    ("params: {w: 1}\nsearch: {budget: {mac: 1M}}", "3:19", "did you mean 'macs'"),
    ("params: {w: 1}\nsearch: {budget: {macs: [2M, 1M]}}", "3:25", "low <= high"),
    ("params: {w: 1}\nsearch: {constraints: [$(ww > 1)]}", "3:24", "did you mean 'w'"),
]


@pytest.mark.parametrize(("params", "where", "message"), BAD)
def test_malformed_choices_are_located(write_spec: Callable[..., Path], params: str,
                                       where: str, message: str) -> None:
    path = write_spec(f"input: [1, 8, 8]\n{params}\nnetwork: [gap]\n")
    with pytest.raises(SpecErrors) as exc:
        SearchSpace.read(path)
    first = exc.value.errors[0]
    assert f"{first.loc.line}:{first.loc.col}" == where, str(exc.value)
    assert message in first.message


def test_choices_where_none_is_allowed(write_spec: Callable[..., Path]) -> None:
    path = write_spec("input: {choice: [[1, 8, 8], [1, 16, 16]]}\nnetwork: [gap]\n")
    with pytest.raises(SpecErrors, match=r"spec.yaml:1:8: a choice is not allowed in 'input'"):
        read_program(path)
    write_spec("blocks:\n  b: [{conv: {filters: {choice: [1, 2]}, kernel: 3}}]\n", "lib.yaml")
    path = write_spec("""
        input: [1, 8, 8]
        include: [lib.yaml]
        network:
          - b
          - name: alt
            choice: [gap, gap]
        """)
    with pytest.raises(SpecErrors) as exc:
        read_program(path).check()
    text = str(exc.value)
    assert "lib.yaml:2:24: a choice in b.0.filters of an included library" in text
    assert "spec.yaml:6:13: a node choice names its alternatives" in text


def test_validate_checks_every_alternative(write_spec: Callable[..., Path],
                                           capsys: pytest.CaptureFixture) -> None:
    path = write_spec("""
        input: [1, 8, 8]
        network:
          - name: head
            choice:
              ok: [conv 3x3 8]
              broken: [conv 9x9 8 V]
          - {conv: {filters: 8, kernel: {choice: [3, 5, 9]}, padding: valid}, name: tail}
          - gap
        """)
    code, out, err = run(capsys, "validate", str(path))
    assert code == 2
    assert "spec.yaml:6:" in err and "(with head=broken)" in err
    assert "(with tail.kernel=9)" in err
    assert "tail.kernel=5" not in err
    ok = write_spec(SMALL, "ok.yaml")
    code, out, _ = run(capsys, "validate", str(ok))
    assert code == 0 and "every choice checked" in out


# --- commands ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_space_command_on_every_shipped_space(path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "space", str(path), "--samples", "300", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    space = SearchSpace.read(path)
    assert [d["name"] for d in data["dimensions"]] == [d.name for d in space.dimensions]
    assert 0 < data["share"] <= 1 and data["inside"] > 0
    if data["method"] == "exhaustive":
        assert data["evaluated"] == space.size(architecture_only=True)
    lo = data["cost"]["macs"]["argmin"]
    assert space.cost(space.fill(lo)).macs == data["cost"]["macs"]["min"]


def test_space_text_says_how_it_counted(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "space", str(SPECS / "search" / "cifar_resnet.yaml"),
                       "--limit", "100", "--samples", "200")
    assert code == 0
    assert "a sample of 200 candidates, seed 0" in out and "about" in out
    code, out, _ = run(capsys, "space", str(SPECS / "search" / "digits_cnn.yaml"))
    assert "every candidate evaluated (exact)" in out and "exact) inside" in out


def test_space_refuses_a_budget_nothing_fits(write_spec: Callable[..., Path],
                                             capsys: pytest.CaptureFixture) -> None:
    path = write_spec(SMALL.replace("budget: {macs: 60K}", "budget: {macs: 1K}"))
    code, out, err = run(capsys, "space", str(path))
    assert code == 2
    cheapest = min(SearchSpace.read(path).cost(v).macs
                   for v in SearchSpace.read(path).enumerate())
    assert "spec.yaml:20:11: nothing in the space is inside the budget macs <= 1 K" in err
    from archdsl.cost.units import human
    assert f"raise the budget's maximum to at least {human(cheapest)}" in err
    band = write_spec(SMALL.replace("budget: {macs: 60K}", "budget: {macs: [1G, 2G]}"), "b.yaml")
    code, _, err = run(capsys, "space", str(band))
    assert code == 2 and "lower the budget's low end" in err


def test_sample_is_deterministic_feasible_and_buildable(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    space_path = SPECS / "search" / "cifar_resnet.yaml"
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run(capsys, "sample", str(space_path), "-n", "4", "--seed", "0", "-o", str(a))[0] == 0
    assert run(capsys, "sample", str(space_path), "-n", "4", "--seed", "0", "-o", str(b))[0] == 0
    assert run(capsys, "sample", str(space_path), "-n", "4", "--seed", "1", "-o", str(c))[0] == 0
    files = sorted(p.name for p in a.iterdir())
    assert len(files) == 4 and files == sorted(p.name for p in b.iterdir())
    assert all((a / f).read_text() == (b / f).read_text() for f in files)
    assert files != sorted(p.name for p in c.iterdir())
    space = SearchSpace.read(space_path)
    hashes = set()
    for f in files:
        text = (a / f).read_text()
        assert text.startswith(f"# A candidate of the space {space_path}")
        assert f"# space sha256: {space.sha256()}" in text
        values_line = next(ln for ln in text.splitlines() if ln.startswith("# values: "))
        values = {k: _scalar(v) for k, v in
                  (kv.split("=") for kv in values_line[len("# values: "):].split())}
        assert space.feasible(values)
        digest = space.arch_hash(values)
        assert digest[:12] in f and f"# architecture sha256: {digest}" in text
        hashes.add(digest)
        assert archdsl.load(a / f).cost().total == space.cost(values)
    assert len(hashes) == 4


def _scalar(text: str) -> object:
    from archdsl.layers.base import parse_scalar

    return parse_scalar(text)


def test_set_reproduces_a_sample_with_the_same_module(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    space_path = SPECS / "search" / "cifar_blocks.yaml"
    assert run(capsys, "sample", str(space_path), "-n", "1", "--seed", "3", "-o",
               str(tmp_path))[0] == 0
    sample = next(tmp_path.iterdir())
    text = sample.read_text()
    sets = next(ln for ln in text.splitlines() if ln.startswith("# the same network: "))
    argv = sets[len("# the same network: archdsl "):].split()
    assert argv[0] == "build"
    knobs = dict(a.split("=", 1) for a in argv[3::2])
    from_space = archdsl.load(space_path, **{k: _scalar(v) for k, v in knobs.items()})
    from_sample = archdsl.load(sample)
    sd1 = {k: tuple(v.shape) for k, v in from_space.build().state_dict().items()}
    sd2 = {k: tuple(v.shape) for k, v in from_sample.build().state_dict().items()}
    assert sd1 == sd2
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert f"total: {from_sample.param_count():,} trainable parameters" in out


def test_a_plain_spec_has_no_dimensions() -> None:
    prog = read_program(SPECS / "resnet20.yaml")
    assert prog.choices == [] and prog.search is None
    assert SearchSpace(prog).size() == 1


def test_two_choices_with_one_name_are_refused(write_spec: Callable[..., Path]) -> None:
    path = write_spec("""
        input: [1, 8, 8]
        blocks:
          unit:
            args: {c: {choice: [4, 8]}}
            seq: [conv 3x3 $c]
        network:
          - {unit: {c: {choice: [4, 8]}}}
          - {int: [1, 2]}
          - gap
        """)
    with pytest.raises(SpecErrors) as exc:
        SearchSpace.read(path)
    text = str(exc.value)
    assert "spec.yaml:7:16: a second choice named 'unit.c'" in text
    assert "spec.yaml:8:6: a node cannot be an int range" in text
