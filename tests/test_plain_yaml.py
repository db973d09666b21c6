"""Specs are plain YAML: every YAML tool reads every shipped file into the values archdsl reads."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, SPECS
from ruamel.yaml import YAML

import archdsl
from archdsl.source import load_text

ALL_YAML = sorted(p for p in SPECS.rglob("*.yaml"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _plain(value: Any) -> Any:
    """ruamel's round-trip types as plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(SPECS)))
def test_every_yaml_reader_agrees_with_archdsl(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    ours = load_text(text, str(path)).plain_value()
    assert _same(yaml.safe_load(text), ours), "PyYAML (YAML 1.1) reads it differently"
    ruamel = YAML(typ="safe", pure=True)
    assert _same(_plain(ruamel.load(io.StringIO(text))), ours), "ruamel (YAML 1.2) differs"


def test_yamllint_passes_on_every_spec() -> None:
    res = subprocess.run([sys.executable, "-m", "yamllint", "--strict", "-c",
                          str(ROOT / ".yamllint"), str(SPECS)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(("text", "value"), [
    ("a: 2e-1", 0.2), ("a: 1.5e3", 1500.0), ("a: .5", 0.5), ("a: -3", -3),
    ("a: 0x10", None), ("a: yes", None), ("a: 012", None), ("a: 1_000", None),
    ("a: 'yes'", "yes"), ("a: true", True), ("a: ~", "__none__"), ("a: 3x3", "3x3"),
])
def test_scalars_read_as_yaml_1_2_and_ambiguous_ones_are_refused(text: str, value: Any) -> None:
    if value is None:
        with pytest.raises(archdsl.SpecErrors) as info:
            load_text(text, "f.yaml")
        assert str(info.value).startswith("f.yaml:1:4: ")
        return
    got = load_text(text, "f.yaml").plain_value()["a"]
    assert got == (None if value == "__none__" else value) and type(got) is type(
        None if value == "__none__" else value)


def test_a_number_param_is_a_number_in_expressions(write_spec) -> None:
    path = write_spec("""
        name: n
        input: [3, 8, 8]
        params: {s: 2e-1, k: 10}
        network:
          - conv 1x1 $(round(s * k * 4))
        """)
    spec = archdsl.load(path)
    assert spec.output_shape == (8, 8, 8)


@pytest.mark.parametrize(("line", "spelling"), [
    ("- conv 1x1 ${k}", "write $k"),
    ("- conv 1x1 ${in.channels}", "write $in.channels"),
    ("- [conv 1x1 ${k}, conv 3x3 ${2 * k}]", "write $k"),
    ("- conv 1x1 ${k * 2} linear", "write $(k * 2)"),
    ("- blk(k=3, s=2)", "write 'blk k=3 s=2'"),
    ("- [blk(3, 2) x2]", "write 'blk 3'"),
])
def test_old_syntax_is_refused_with_the_new_spelling(write_spec, line: str,
                                                     spelling: str) -> None:
    path = write_spec(f"""
        name: old
        input: [3, 8, 8]
        params: {{k: 4}}
        blocks:
          blk:
            args: {{k: 1, s: 1}}
            seq: [conv 1x1 $k /$s]
        network:
          {line}
        """)
    with pytest.raises(archdsl.SpecErrors) as info:
        archdsl.load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:9:"), msg
    assert spelling in msg, msg


def test_flow_lists_hold_expressions_and_calls(write_spec) -> None:
    path = write_spec("""
        name: flow
        input: [3, 16, 16]
        params: {k: 4, n: 3}
        blocks:
          blk:
            args: {c: null, s: 1}
            seq: [conv 3x3 $c /$s, conv 1x1 $(2 * c)]
        network:
          - [blk $k 2, blk c=$(k + 1) x$(n - 1), conv 1x1 $in.channels]
        """)
    text = path.read_text()
    assert yaml.safe_load(text)["network"][0] == ["blk $k 2", "blk c=$(k + 1) x$(n - 1)",
                                                  "conv 1x1 $in.channels"]
    spec = archdsl.load(path)
    first, repeats, last = spec.top_level()[0].items
    assert (first.out_shape, repeats.out_shape) == ((8, 8, 8), (10, 8, 8))
    assert last.out_shape == (3, 8, 8)  # $in at the top level is the network's input


def test_json_schema_validators_accept_every_spec_and_know_the_constructs() -> None:
    import jsonschema

    from archdsl.schema import spec_schema

    schema = spec_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for path in ALL_YAML:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
        assert not errors, f"{path}: {errors[0].message}"
    mapping = next(s for s in schema["$defs"]["node"]["anyOf"] if s.get("type") == "object")
    known = set(mapping["properties"])
    assert {"concat", "add", "mul", "residual", "batchnorm", "shuffle", "pad_channels",
            "identity", "hardswish", "hardsigmoid"} <= known
    residual = mapping["properties"]["residual"]["anyOf"][1]["properties"]
    assert "drop_path" in residual
    bad = {"name": "x", "input": [3, 8, 8], "network": [{"concat": {"branches": [], "spit": 2}}]}
    assert list(validator.iter_errors(bad)), "a misspelt merge field passes the schema"
