"""``archdsl match``: the solver meets the target within the tolerance (or refuses), finds the
nearest step a brute-force scan finds, and writes a spec that loads and costs what it said."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SPECS

import archdsl
from archdsl.cli import main
from archdsl.cost import totals
from archdsl.match import MatchError, Problem, find_knob, solve

V3, V4 = SPECS / "inception_v3.yaml", SPECS / "inception_v4.yaml"
IRV1 = SPECS / "inception_resnet_v1.yaml"


def macs(path: Path, **kw) -> int:
    return archdsl.load(path, **kw).cost().total.macs


def test_inception_resnet_v1_matched_to_inception_v3_by_width(capsys, tmp_path: Path) -> None:
    out = tmp_path / "matched.yaml"
    status = main(["match", str(IRV1), "--to", str(V3), "--knob", "width", "--metric", "macs",
                   "--tolerance", "0.01", "-o", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "wrote" in printed and "--library" not in printed
    text = out.read_text()
    original = IRV1.read_text()
    assert original.splitlines()[0] in text  # comments kept
    # Its include points into the package's library: the library name, which loads anywhere.
    assert "include: [lib/inception_resnet.yaml]" in text
    matched = archdsl.load(out)
    assert matched.params["width"] < 1.0
    ratio = matched.cost().total.macs / macs(V3)
    assert abs(ratio - 1) <= 0.01
    assert f"{ratio:.4f}x" in printed
    # Only the knob changed: the same spec at that width costs the same.
    assert matched.cost().total == archdsl.load(IRV1, width=matched.params["width"]).cost().total


TINY = """\
# a tiny network with a width knob
input: [3, 32, 32]
params: {{width: 1.0, num_classes: 10, filters: {filters}}}
defaults:
  conv: {{norm: batchnorm, act: relu, width: $width}}
network:
  - conv 3x3 $filters /2
  - conv 3x3 64
  - conv 3x3 96 /2
  - gap
  - linear $num_classes
"""


def problem(path: Path, knob: str, target: int, metric: str = "macs") -> Problem:
    spec = archdsl.load(path)
    return Problem(spec.program, find_knob(spec, knob), metric, target, spec.input_shape)


def test_the_solver_finds_the_nearest_step(write_spec) -> None:
    small = write_spec(TINY.format(filters=32), "small.yaml")
    target = macs(small, width=0.6185)  # some cost between two width steps of 8 channels
    result = solve(problem(small, "width", target), tolerance=0.05)
    # Brute force over a fine grid: nothing is nearer the target than the solver's answer.
    scan = min(abs(macs(small, width=w / 1000) / target - 1) for w in range(300, 1001, 3))
    assert abs(result.ratio - 1) <= scan + 1e-12
    assert result.achieved == macs(small, width=result.value)
    assert len(str(result.value)) <= 6  # a tidy value, not 0.61853027...


def test_an_integer_parameter_is_solved_exactly(write_spec) -> None:
    small = write_spec(TINY.format(filters=16), "small.yaml")
    target = macs(small, filters=40)
    result = solve(problem(small, "filters", target), tolerance=0.0)
    assert result.value == 40 and isinstance(result.value, int) and result.ratio == 1.0


def test_input_knob_writes_the_input(capsys, write_spec, tmp_path: Path) -> None:
    small = write_spec(TINY.format(filters=32), "small.yaml")
    big = write_spec(TINY.format(filters=32).replace("[3, 32, 32]", "[3, 64, 64]"), "big.yaml")
    out = tmp_path / "sub" / "matched.yaml"
    status = main(["match", str(small), "--to", str(big), "--knob", "input", "-o", str(out)])
    assert status == 0, capsys.readouterr()
    matched = archdsl.load(out)
    # With a stride-2 'same' conv first, 63x63 and 64x64 cost the same: either is exact.
    assert matched.input_shape in {(3, 63, 63), (3, 64, 64)}
    assert totals(matched.ir).macs == macs(big)
    assert "[3, 32, 32]" not in out.read_text()


def test_refuses_when_the_tolerance_cannot_be_met(capsys, tmp_path: Path) -> None:
    out = tmp_path / "matched.yaml"
    out.write_text("keep me\n")
    # The depth knob moves whole blocks: no value of it lands within 0.1% of Inception-v3.
    status = main(["match", str(IRV1), "--to", str(V3), "--knob", "depth", "--tolerance",
                   "0.001", "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert "cannot match macs within 0.10%" in err and "depth=" in err
    assert out.read_text() == "keep me\n"  # nothing written


def test_a_missing_knob_is_a_one_line_error(capsys) -> None:
    status = main(["match", str(V4), "--to", str(V3), "--knob", "stretch"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1
    assert "has no parameter 'stretch'" in err and "num_classes" in err
    with pytest.raises(MatchError, match="not a number"):
        find_knob(archdsl.load(SPECS / "googlenet.yaml"), "aux")


def test_set_values_are_written_too(capsys, write_spec, tmp_path: Path) -> None:
    small = write_spec(TINY.format(filters=32), "small.yaml")
    target = write_spec(TINY.format(filters=32).replace("width: 1.0", "width: 0.75"),
                        "target.yaml")
    out = tmp_path / "matched.yaml"
    status = main(["match", str(small), "--to", str(target), "--knob", "width", "--set",
                   "num_classes=7", "--tolerance", "0.02", "-o", str(out)])
    assert status == 0, capsys.readouterr()
    matched = archdsl.load(out)
    assert matched.params["num_classes"] == 7 and matched.output_shape == (7,)
    assert "# a tiny network with a width knob" in out.read_text()
