"""Broken and hostile input: never a traceback, a hang or a blow-up; every refusal located.

One test per cause found by fuzzing the shipped specs (the issue "Never a traceback, never a
hang, never a silently wrong port"), each run through the command line as a user would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from archdsl import cli
from archdsl.atomic import SUFFIX, remove_stale, write_text_atomic
from archdsl.layers.base import MAX_SIZE
from archdsl.names import MODULE_ATTRIBUTES
from archdsl.resolve import MAX_DEPTH, MAX_NODES
from archdsl.source import MAX_NESTING
from archdsl.spec import MAX_TENSOR

HEAD = "name: t\ninput: [3, 32, 32]\n"
LOCATED = re.compile(r"^[^:\n]+:\d+:\d+: .+")
COUNT = re.compile(r"^\d+ errors?$|^.+: \d+ errors?$")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *expect: str,
            command: str = "validate", at: str | None = None, extra: tuple[str, ...] = ()) -> str:
    """Write the spec, run the command, and check it is refused with located errors only."""
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    rc, _, err = run(capsys, command, *extra, str(path))
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert lines and all(LOCATED.match(x) or COUNT.match(x) for x in lines), err
    for e in expect:
        assert e in err, err
    if at is not None:
        assert f"{path}:{at}: " in err, err
    return err


# --- deep or self-referencing YAML -------------------------------------------------------------
def test_alias_cycle(tmp_path, capsys) -> None:
    refused(tmp_path, capsys, HEAD + "network: &a [*a]\n", "alias refers to a node that contains",
            at="3:10")


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 400])
def test_deep_nesting_flow_and_block(tmp_path, capsys, depth) -> None:
    refused(tmp_path, capsys, HEAD + "network: " + "[" * depth + "relu" + "]" * depth + "\n",
            f"nests deeper than {MAX_NESTING}", at="1:1")
    block = "".join("  " * i + "- \n" for i in range(1, depth))
    refused(tmp_path, capsys, HEAD + "network:\n" + block, f"nests deeper than {MAX_NESTING}")


def test_nesting_that_kills_libyaml_is_refused_before_parsing(tmp_path) -> None:
    # 30,000 levels crash the interpreter inside libyaml: run it in a child, it must answer.
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "network: " + "[" * 30_000 + "]" * 30_000 + "\n")
    r = subprocess.run([sys.executable, "-m", "archdsl", "validate", str(path)],
                       capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == 2 and "nests deeper than" in r.stderr, r.stderr


def test_nesting_just_under_the_limit_is_read(tmp_path, capsys) -> None:
    depth = MAX_NESTING - 5
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "network: " + "[" * depth + "relu" + "]" * depth + "\n")
    rc, out, err = run(capsys, "validate", str(path))
    assert rc == 0 and "ok" in out, err


# --- characters, tags, unicode -----------------------------------------------------------------
def test_control_character(tmp_path, capsys) -> None:
    refused(tmp_path, capsys, "name: a\x01b\ninput: [3, 32, 32]\nnetwork: [relu]\n",
            "control character", at="1:8")


@pytest.mark.parametrize("tagged", ["!!int abc", "!!bool maybe", "!!python/object:os.system x"])
def test_standard_tags_with_bad_values(tmp_path, capsys, tagged) -> None:
    refused(tmp_path, capsys, HEAD + f"params: {{a: {tagged}}}\nnetwork: [relu]\n",
            "tags (!...) are not allowed", at="3:13")


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\x01", "\\0"])
def test_escaped_surrogate_or_control_in_name(tmp_path, capsys, escape) -> None:
    refused(tmp_path, capsys, f'name: "{escape}"\ninput: [3, 32, 32]\nnetwork: [relu]\n',
            "not allowed in a spec", at="1:7")


@pytest.mark.parametrize("command", ["validate", "cost", "build"])
def test_any_printable_name_prints_on_any_terminal(tmp_path, command) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text('name: "ré😀\u202e"\ninput: [3, 8, 8]\nnetwork: [relu]\n', encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "archdsl", command, str(path)], capture_output=True,
                       timeout=120, env={**_env(), "PYTHONIOENCODING": "latin-1"})
    assert r.returncode == 0, r.stderr
    assert b"\\U0001f600" in r.stdout or b"\\U0001f600" in r.stderr


# --- includes ----------------------------------------------------------------------------------
def test_include_symlink_loop(tmp_path, capsys) -> None:
    os.symlink("b.yaml", tmp_path / "a.yaml")
    os.symlink("a.yaml", tmp_path / "b.yaml")
    refused(tmp_path, capsys, HEAD + "include: [a.yaml]\nnetwork: [relu]\n", "include 'a.yaml'",
            at="3:11")


@pytest.mark.parametrize("name", ['"a\\0b.yaml"', "x" * 300 + ".yaml", "/".join(["d"] * 600)])
def test_include_unusable_name(tmp_path, capsys, name) -> None:
    refused(tmp_path, capsys, HEAD + f"include: [{name}]\nnetwork: [relu]\n", "include",
            at="3:11")


def test_include_of_itself_and_a_loop_is_read_once(tmp_path, capsys) -> None:
    (tmp_path / "lib.yaml").write_text("include: [spec.yaml]\nblocks: {r: [relu]}\n")
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "include: [spec.yaml, lib.yaml]\nnetwork: [r]\n")
    rc, out, err = run(capsys, "validate", str(path))
    assert rc == 0, err


# --- names and one-line forms ------------------------------------------------------------------
def test_block_named_like_a_layer_kind(tmp_path, capsys) -> None:
    refused(tmp_path, capsys, HEAD + "blocks:\n  conv: [relu]\nnetwork: [relu]\n",
            "block name 'conv' is taken by a layer kind", at="4:3")


@pytest.mark.parametrize("line", ["as NAME", "as x"])
def test_line_that_is_only_as_name(tmp_path, capsys, line) -> None:
    refused(tmp_path, capsys, HEAD + f"network:\n  - relu\n  - {line}\n", "names no layer or block",
            at="5:5")


@pytest.mark.parametrize("name", ["forward", "train", "parameters", "training", "_modules",
                                  "append", "to"])
def test_names_that_clash_with_module_attributes(tmp_path, capsys, name) -> None:
    refused(tmp_path, capsys, HEAD + f"network:\n  - conv 3x3 8 as {name}\n",
            f"{name!r} cannot name a layer or block", at="4:19")
    refused(tmp_path, capsys, HEAD + f"blocks:\n  {name}: [relu]\nnetwork: [{name}]\n",
            f"{name!r} cannot name a layer or block", at="4:3")


def test_the_reserved_names_cover_the_installed_torch() -> None:
    from collections import OrderedDict

    from torch import nn

    from archdsl.torch_build import Concat, Product, Sequence, SplitConcat, Sum, WithAux

    made = [nn.Sequential(), Sequence(), Concat(), Sum(OrderedDict()), Product(),
            SplitConcat(OrderedDict(), [1]),
            WithAux(OrderedDict(), [], [])]
    attributes = {a for m in made for a in dir(m) if not a.startswith("__")}
    assert attributes <= MODULE_ATTRIBUTES, sorted(attributes - MODULE_ATTRIBUTES)


def test_a_name_torch_accepts_builds(tmp_path, capsys) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "blocks:\n  stem: [conv 3x3 8 as entry]\nnetwork: [stem, relu]\n")
    rc, out, err = run(capsys, "build", str(path))
    assert rc == 0, err


# --- values torch would refuse -----------------------------------------------------------------
@pytest.mark.parametrize(("layer", "field", "problem"), [
    ("conv 3x3 8 /0", "stride", "greater than 0"),
    ("conv: {filters: 8, kernel: 3, stride: 0}", "stride", "greater than 0"),
    ("maxpool 3x3 /0", "stride", "greater than 0"),
    ("avgpool 2x2 stride=0", "stride", "greater than 0"),
    ("conv 0x0 8", "kernel", "greater than 0"),
    ("conv: {filters: 8, kernel: -3}", "kernel", "greater than 0"),
    ("conv: {filters: 8, kernel: 3, padding: -1}", "padding", "greater than or equal to 0"),
    ("conv: {filters: 8, kernel: 3, padding: [1, -1]}", "padding", "greater than or equal to 0"),
    (f"conv 3x3 8 /{2**63}", "stride", f"less than or equal to {MAX_SIZE}"),
    (f"conv 3x3 8 dilation={2**63}", "dilation", f"less than or equal to {MAX_SIZE}"),
    ("conv 3x3 8 dilation=0", "dilation", "greater than 0"),
    ("conv 3x3 8 width=inf", "width", "finite"),
    ("conv 3x3 8 width=1e308", "width", "less than or equal to 1000"),  # fuzz seed 2, case 2796
    ("conv 3x3 8 groups=0", "groups", "greater than 0"),
    ("conv 3x3 $(2**40)", "filters", f"less than or equal to {MAX_SIZE}"),
    ("sepconv 3x3 8 /0", "stride", "greater than 0"),
])
def test_values_torch_refuses_are_refused_where_written(tmp_path, capsys, layer, field,
                                                        problem) -> None:
    refused(tmp_path, capsys, HEAD + f"network:\n  - {layer}\n", f": {field}: ", problem)


def test_negative_kernel_no_longer_counts_negative_parameters(tmp_path, capsys) -> None:
    err = refused(tmp_path, capsys, HEAD + "network:\n  - conv: {filters: 8, kernel: -3}\n")
    assert "parameters" not in err


def test_concat_whose_every_branch_is_left_out(tmp_path, capsys) -> None:
    refused(tmp_path, capsys, HEAD + "network:\n  - concat:\n    - {seq: [relu], when: false}\n"
            "    - {seq: [relu], when: false}\n", "every branch is left out", at="4:5")


# --- expression bombs --------------------------------------------------------------------------
@pytest.mark.parametrize("expr", ["round(1, -10**9)", "'a' * 10**9", "[0] * 10**9",
                                  "'%0999999999d' % 1", "+".join(["1"] * 5000),
                                  "10**10**10", "(" * 500 + "1" + ")" * 500,
                                  "[j for j in range(10**4) for k in range(10**4)]"])
def test_expression_bombs(tmp_path, capsys, expr) -> None:
    start = time.perf_counter()
    refused(tmp_path, capsys, HEAD + f"params:\n  a: $({expr})\nnetwork: [relu]\n",
            "expression", at="4:6")
    assert time.perf_counter() - start < 5


# --- size limits -------------------------------------------------------------------------------
NESTED = HEAD + "blocks:\n  a: [relu x10000]\n  b: [a x10000]\nnetwork: [b x10000]\n"


def test_nested_repeats_are_refused_before_expanding(tmp_path, capsys) -> None:
    start = time.perf_counter()
    refused(tmp_path, capsys, NESTED, f"more than {MAX_NODES:,} layers", at="5:7")
    assert time.perf_counter() - start < 15  # 10**12 layers: refused after the budget


@pytest.mark.slow
def test_allow_large_raises_the_node_budget_but_keeps_one(tmp_path, capsys) -> None:
    refused(tmp_path, capsys, NESTED, f"more than {10 * MAX_NODES:,} layers",
            extra=("--allow-large",))


def test_buffers_count_towards_the_limit(tmp_path, capsys) -> None:
    # 10 units x 150,000,000 features of RBF centres: buffers, not parameters.
    refused(tmp_path, capsys, "name: t\ninput: [6, 5000, 5000]\nnetwork: [flatten, rbf 10]\n",
            "rbf at rbf: 1,500,000,000 weights", at="3:20")


def test_the_input_tensor_counts(tmp_path, capsys) -> None:
    refused(tmp_path, capsys, "name: t\ninput: [3, 20000, 20000]\nnetwork: [gap]\n",
            "the input 3x20000x20000 has 1,200,000,000 values", at="2:8")


def test_one_layer_over_the_tensor_limit(tmp_path, capsys) -> None:
    # 1.85e9 values in one linear layer (7.4 GB), under the 2e9 total.
    err = refused(tmp_path, capsys, "name: t\ninput: [3, 8, 8]\n"
                  "network: [flatten, linear 60000, linear 30000]\n", at="3:34")
    assert f"over the limit of {MAX_TENSOR:,} values for one layer" in err


def test_allow_large_lifts_the_tensor_limits(tmp_path, capsys) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: t\ninput: [3, 8, 8]\nnetwork: [flatten, linear 60000, linear 30000]\n")
    rc, out, err = run(capsys, "validate", "--allow-large", str(path))
    assert rc == 0 and "1,811,610,000 parameters" in out, err


def test_every_command_that_reads_a_spec_takes_allow_large() -> None:
    parser = cli.make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    for name, p in sub.choices.items():
        if any(a.dest in ("spec", "specs") for a in p._actions):  # noqa: SLF001
            assert "--allow-large" in p.format_help(), name


def test_a_huge_file_is_refused_before_it_is_read(tmp_path, capsys) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "network: [" + ", ".join(["relu"] * 2_100_000) + "]\n")
    start = time.perf_counter()
    rc, _, err = run(capsys, "validate", str(path))
    assert rc == 2 and f"{path}:1:1: " in err and "over the limit" in err, err
    assert time.perf_counter() - start < 1


# --- interrupted writes ------------------------------------------------------------------------
WRITER = """
import os, signal, sys, time
from archdsl.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half")
    print(tmp, flush=True)
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    time.sleep(30)
"""


def test_sigterm_during_a_write_leaves_nothing(tmp_path) -> None:
    target = tmp_path / "model.pt"
    r = subprocess.run([sys.executable, "-c", WRITER, str(target), "SIGTERM"],
                       capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == 128 + signal.SIGTERM, r.stderr
    assert r.stdout.strip().endswith(SUFFIX)  # the temporary file existed ...
    assert list(tmp_path.iterdir()) == []  # ... and is gone, with no half target


def test_sigkill_leaves_a_named_temp_file_that_the_next_write_removes(tmp_path) -> None:
    target = tmp_path / "model.pt"
    r = subprocess.run([sys.executable, "-c", WRITER, str(target), "SIGKILL"],
                       capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".model.pt.") and left.name.endswith(SUFFIX)
    write_text_atomic(target, "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    assert target.read_text() == "whole"


def test_a_live_writers_temp_file_is_left_alone(tmp_path) -> None:
    mine = tmp_path / f".model.pt.{os.getpid()}.abc{SUFFIX}"
    mine.write_text("being written")
    assert remove_stale(tmp_path / "model.pt") == []
    assert mine.exists()


# --- exit status -------------------------------------------------------------------------------
def test_exit_status_ok_check_failed_and_bad_spec(tmp_path, capsys) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(HEAD + "network: [conv 3x3 8]\n")
    assert run(capsys, "validate", str(good))[0] == 0
    assert run(capsys, "cost", str(good), "--budget", "params=10")[0] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "network: [conv 3x3 0]\n")
    assert run(capsys, "validate", str(bad))[0] == 2
    assert run(capsys, "cost", str(tmp_path / "missing.yaml"))[0] == 2


def test_an_internal_error_is_one_line_asking_for_a_report(tmp_path, capsys,
                                                         monkeypatch) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(HEAD + "network: [conv 3x3 8]\n")

    def broken(*args: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("archdsl.cost.cost_report", broken)
    rc, _, err = run(capsys, "cost", str(good))
    assert rc == cli.EXIT_INTERNAL == 3
    (line,) = err.strip().splitlines()
    assert "internal error (ZeroDivisionError: division by zero)" in line
    assert "report" in line and "--debug" in line
    rc, _, err = run(capsys, "cost", "--debug", str(good))
    assert rc == 3 and "Traceback (most recent call last)" in err


def test_exit_status_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Commands"):]
    for code in ("0", "1", "2", "3"):
        assert re.search(rf"\b{code}\b", section[:3000])
    parser = cli.make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    for name, p in sub.choices.items():
        text = " ".join(p.format_help().split())
        assert "exit status" in text and "3 an internal error" in text, name


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _chain(n: int) -> str:
    blocks = "".join(f"  b{i}: [b{i + 1}]\n" for i in range(n)) + f"  b{n}: [relu]\n"
    return HEAD + "blocks:\n" + blocks + "network: [b0]\n"


def test_block_calls_nested_past_the_depth_limit(tmp_path, capsys) -> None:
    # 2,000 blocks each calling the next overflowed Python's stack in the resolver.
    err = refused(tmp_path, capsys, _chain(2000), f"nests deeper than {MAX_DEPTH} levels",
                  at="53:9")
    # Nested calls are named with their lines; the first and last two say enough.
    assert re.search(r"b0 \(line \d+\) > b1 \(line \d+\) > \.\.\. 46 more > "
                     r"b48 \(line \d+\) > b49 \(line \d+\)", err), err


def test_the_deepest_allowed_network_builds_and_scripts(tmp_path, capsys) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(_chain(MAX_DEPTH // 2 - 2))
    rc, out, err = run(capsys, "build", str(path), "-o", str(tmp_path / "m.torchscript"))
    assert rc == 0, err
    assert run(capsys, "cost", "--depth", "3", str(path))[0] == 0


@pytest.mark.parametrize("command", ["validate", "cost", "draw"])
def test_a_spec_without_input(tmp_path, capsys, command) -> None:
    # Found by tools/fuzz_specs.py (seed 11, case 33): an assertion, exit 3, before.
    refused(tmp_path, capsys, "name: t\nnetwork: [relu]\n", "a spec needs an 'input' shape",
            command=command, at="1:1")


@pytest.mark.parametrize("scale", [".inf", "-.inf", ".nan"])
def test_residual_scale_must_be_finite(tmp_path, capsys, scale) -> None:
    refused(tmp_path, capsys, HEAD + f"network:\n  - residual:\n      body: relu\n"
            f"      scale: {scale}\n", "residual scale must be a finite number", at="6:14")
