"""Errors at the place the user must change: knob values where they are set, YAML mistakes at
the line that is wrong, nested block calls by their call sites."""

from __future__ import annotations

import pytest

import archdsl
from archdsl.cli import main

HEAD = "name: t\ninput: [3, 32, 32]\n"
KNOBS = HEAD + """\
params:
  num_classes: 10
  n: 3
  scale: 0.5
  bias: true
network:
  - conv 3x3 $(n * 8)
  - residual:
      body: [conv 3x3 $(n * 8)]
      scale: $scale
  - gap
  - linear $num_classes
"""


def run(capsys, *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().err


def where(text: str, needle: str) -> str:
    """line:col of ``needle``'s value in ``text`` (found here, not written down)."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return f"{i}:{line.index(needle) + len(needle) + 1}"
    raise AssertionError(needle)


def test_a_set_value_of_the_wrong_kind_is_blamed_on_the_command_line(capsys, write_spec):
    path = write_spec(KNOBS)
    status, err = run(capsys, "validate", str(path), "--set", "n=five")
    assert status == 2
    assert err.strip() == (f"archdsl validate: --set n=five: n must be an integer (its default 3 "
                           f"in {path}:{where(KNOBS, 'n: ')} is one)")
    status, err = run(capsys, "cost", f"{path}@bias=3")
    assert f"{path}@bias=3: bias must be true or false" in err and status == 2
    status, err = run(capsys, "validate", str(path), "--set", "scale=fast")
    assert "--set scale=fast: scale must be a number" in err


def test_numbers_are_one_kind(capsys, write_spec):
    path = write_spec(KNOBS)
    assert main(["validate", str(path), "--set", "n=2", "--set", "scale=1"]) == 0


def test_a_wrong_override_in_python_is_located_at_the_params_entry(write_spec):
    path = write_spec(KNOBS)
    with pytest.raises(archdsl.SpecErrors) as info:
        archdsl.load(path, n="five")
    (err,) = info.value.errors
    assert f"{err.loc.line}:{err.loc.col}" == where(KNOBS, "n: ")
    assert "n must be an integer" in err.message


def test_a_wrong_params_value_is_blamed_at_its_entry_and_its_use(write_spec):
    text = KNOBS.replace("num_classes: 10", "num_classes: ten")
    path = write_spec(text)
    with pytest.raises(archdsl.SpecErrors) as info:
        archdsl.load(path)
    entry, use = info.value.errors  # in file order
    assert f"{entry.loc.line}:{entry.loc.col}" == where(text, "num_classes: ")
    assert f"{use.loc}" in entry.message and "'ten'" in entry.message
    assert entry.loc.line == use.loc.line - 10 and "linear $num_classes" in \
        text.splitlines()[use.loc.line - 1]
    assert f"params: num_classes: 'ten' at {entry.loc}" in use.message


# Each broken spec marks its offending line with "# wrong"; the error must name that line.
BROKEN = {
    "item indented under an item": """\
network:
  - conv 3x3 16
   - conv 3x3 16   # wrong
  - gap
""",
    "key between levels": """\
blocks:
  unit:
    residual:
      body: [conv 3x3 3]
      after: relu
   scale: 0.1   # wrong
network:
  - unit
""",
    "key under a flow value": """\
defaults:
  conv: {norm: batchnorm}
    act: relu   # wrong
network:
  - conv 3x3 16
""",
    "list item out of line": """\
network:
  - conv 3x3 16
 - gap   # wrong
  - linear 10
""",
    "missing colon": """\
blocks:
  unit:
    - conv 3x3 16
  other   # wrong
    - conv 1x1 8
network:
  - unit
""",
    "text among keys": """\
blocks:
  unit:
    conv 3x3 16   # wrong
    act: relu
network:
  - unit
""",
    "key under a scalar": """\
params:
  n: 3
   width: 1.0   # wrong
network:
  - conv 3x3 16
""",
    "deeper key in a residual": """\
network:
  - conv 3x3 16
  - residual:
      body: conv 3x3 16
        after: relu   # wrong
""",
    "tab": "network:\n  - conv 3x3 16\n\t- gap   # wrong\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_yaml_mistakes_are_reported_at_the_offending_line(name, write_spec):
    text = HEAD + BROKEN[name]
    wrong = next(i for i, line in enumerate(text.splitlines(), 1) if "# wrong" in line)
    path = write_spec(text)
    with pytest.raises(archdsl.SpecErrors) as info:
        archdsl.load(path)
    (err,) = info.value.errors
    assert err.loc.line == wrong, str(err)
    assert "<block" not in err.message and "not allowed here" not in err.message, str(err)


NESTED = HEAD + """\
blocks:
  inner:
    args: [c]
    residual:
      body:
        - conv 3x3 $c
  unit:
    args: [c]
    seq:
      - inner c=16
      - inner c=$c
network:
  - conv 3x3 16
  - unit c=16
  - unit c=24
  - gap
"""


def test_a_nested_mismatch_names_its_call_sites(write_spec):
    path = write_spec(NESTED)
    with pytest.raises(archdsl.SpecErrors) as info:
        archdsl.load(path)
    (err,) = info.value.errors  # only the second call of unit, and its second inner, mismatch
    lines = NESTED.splitlines()
    outer = lines.index("  - unit c=24") + 1
    inner = lines.index("      - inner c=$c") + 1
    assert err.path == f"unit (line {outer}) > inner (line {inner})"
    assert err.loc.line == lines.index("    residual:") + 1
    assert "body gives 24 channels, shortcut carries 16" in err.message
    assert "\n" not in str(err)
