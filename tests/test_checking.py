"""Read once, check everything, resolve many times: what the front end promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import archdsl
from archdsl import source
from archdsl.program import read_program


def _errors(path: Path, **knobs) -> list[str]:
    with pytest.raises(archdsl.SpecErrors) as info:
        archdsl.load(path, **knobs)
    return [str(e) for e in info.value.errors]


def test_a_typo_in_a_block_nobody_calls_is_reported(write_spec) -> None:
    path = write_spec("""
        name: t
        input: [3, 8, 8]
        params: {k: 4}
        blocks:
          used: [conv 1x1 $k]
          unused:
            seq:
              - conv 3x3 $k stride2
              - conv 1x1 $kk
              - {conv: {filters: 4, kernel: 3, norm: batchnrom}}
              - used 5
        network:
          - used
        """)
    errs = _errors(path)
    assert errs[0].startswith(f"{path}:8:21: conv: unexpected 'stride2'; it reads: conv KxK ")
    assert errs[1] == f"{path}:9:18: expression $kk: unknown name 'kk'; did you mean 'k'?"
    assert errs[2] == f"{path}:10:46: conv: norm: Input should be 'batchnorm'"
    assert errs[3] == f"{path}:11:14: block 'used' takes 0 arguments (none), got 1"
    assert len(errs) == 4


def test_a_library_is_checked_alone(tmp_path: Path) -> None:
    lib = tmp_path / "blocks.yaml"
    lib.write_text("description: a library\n"
                   "params: {width: 1.0}\n"
                   "blocks:\n"
                   "  good: {args: [c], seq: [conv 3x3 $c]}\n"
                   "  bad:\n"
                   "    args: [c]\n"
                   "    seq: [conv 3x3 $(c * widht), maxpol 3x3]\n")
    res = subprocess.run([sys.executable, "-m", "archdsl", "validate", str(lib)],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.splitlines()[:2] == [
        f"{lib}:7:20: expression $(c * widht): unknown name 'widht'; did you mean 'width'?",
        f"{lib}:7:34: unknown layer kind or block 'maxpol'; did you mean 'maxpool' or "
        "'avgpool'?",
    ]
    lib.write_text(lib.read_text().replace("widht", "width").replace("maxpol", "maxpool"))
    res = subprocess.run([sys.executable, "-m", "archdsl", "validate", str(lib)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "ok: a library of 2 blocks (good, bad)" in res.stdout


def test_errors_are_still_reported_next_to_an_unknown_kind(write_spec) -> None:
    path = write_spec("""
        name: t
        input: [8, 8, 8]
        blocks:
          res:
            residual: [conv 3x3 8, conv 1x1 9]
          typo: [convv 3x3 8]
        network:
          - res
          - typo
          - conv 3x3 0
        """)
    errs = _errors(path)
    assert errs == [
        f"{path}:5:5: res: residual add: body gives 9 channels, shortcut carries 8",
        f"{path}:6:10: unknown layer kind or block 'convv'; did you mean 'conv' or 'sepconv'?",
        f"{path}:10:14: conv: filters: Input should be greater than 0",
    ]


def test_defaults_see_the_knobs_not_the_arguments_of_a_block(write_spec) -> None:
    path = write_spec("""
        name: t
        input: [3, 8, 8]
        params: {width: 0.5}
        defaults:
          conv: {width: $width}
        blocks:
          wide:
            args: {width: 8}
            seq: [conv 1x1 $(4 * width)]
        network:
          - wide 8
        """)
    spec = archdsl.load(path)
    assert spec.output_shape == (16, 8, 8)  # 4 * 8 = 32 filters, times the knob's 0.5
    bad = write_spec("""
        name: t
        input: [3, 8, 8]
        defaults:
          conv: {filters: $in.channels}
        network: [conv 1x1]
        """, name="bad.yaml")
    assert _errors(bad) == [
        f"{bad}:4:19: expression $in.channels: 'in' (the block input) is not known here "
        "(defaults see only the knobs in params)",
        f"{bad}:5:11: conv: filters: Field required",
    ]


def test_a_program_resolves_again_without_reading_files(write_spec, monkeypatch) -> None:
    path = write_spec("""
        name: t
        input: [3, 16, 16]
        params: {c: 8, n: 2}
        blocks:
          blk: {args: [c], residual: [conv 3x3 $c, conv 1x1 $in.channels]}
        network:
          - conv 3x3 $c
          - blk $(2 * c) x$n
          - gap
          - linear 10
        """)
    program = read_program(path)
    path.unlink()  # nothing reads it again

    def no_yaml(*_args, **_kwargs):
        raise AssertionError("YAML was parsed again")

    monkeypatch.setattr(source, "load_text", no_yaml)
    a = program.resolve({"c": 4, "n": 0}, input=(3, 32, 32))
    b = program.resolve({"c": 16})
    assert (a.input_shape, a.top_level()[1].repeat) == ((3, 32, 32), 0)
    assert a.param_count() == 3 * 4 * 9 + 4 + 4 * 10 + 10
    assert b.top_level()[0].out_shape == (16, 16, 16) and b.top_level()[1].repeat == 2
    with pytest.raises(archdsl.SpecErrors, match="unknown parameter 'cc'"):
        program.resolve({"cc": 1})


def test_a_spec_with_10000_distinct_calls_loads(write_spec) -> None:
    lines = "\n".join(f"  - blk {i % 7 + 1}" for i in range(10_000))
    path = write_spec(f"name: t\ninput: [3, 4, 4]\nblocks:\n  blk: {{args: [c], seq: [conv "
                      f"1x1 $c]}}\nnetwork:\n{lines}\n")
    spec = archdsl.load(path)
    names = [n.name for n in spec.top_level()]
    assert names[:3] == ["blk", "blk_2", "blk_3"] and names[-1] == "blk_10000"
    assert len(set(names)) == 10_000
