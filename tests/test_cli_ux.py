"""The command line as a user meets it: examples in every --help, completion scripts generated
from the parser, text that fits 100 columns, and a status line only on a terminal."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, network_specs

from archdsl import progress as progress_mod
from archdsl.cli import main, make_parser
from archdsl.commands.completion import commands, script
from archdsl.table import WIDTH, render


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(subparsers()))
def test_every_help_has_examples(name: str):
    text = subparsers()[name].format_help()
    assert "examples:" in text
    examples = text.split("examples:", 1)[1].split("\n\n", 1)[0]
    assert f"archdsl {name}" in examples
    assert max(len(line) for line in text.splitlines()) <= WIDTH


def test_completion_knows_every_command_and_option():
    cmds = {c.name: c for c in commands(make_parser())}
    assert set(cmds) == set(subparsers())
    assert cmds["cost"].choices["--align"] == ["auto", "grid", "path"]
    for shell in ("bash", "zsh", "fish"):
        text = script(shell, make_parser())
        for name, cmd in cmds.items():
            assert name in text
            assert all(opt.lstrip("-") in text for opt in cmd.options)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("words,expected", [
    ("co", {"cost", "completion"}),
    ("cost --al", {"--align", "--allow-large"}),
    ("cost --align ", {"auto", "grid", "path"}),
    ("completion ", {"bash", "zsh", "fish"}),
])
def test_bash_completion_completes(tmp_path: Path, words: str, expected: set[str]):
    path = tmp_path / "archdsl.bash"
    path.write_text(script("bash", make_parser()))
    argv = ["archdsl", *words.split(" ")]
    shell = (f"source {path}; COMP_WORDS=({' '.join(repr(w) for w in argv)}); "
             f"COMP_CWORD={len(argv) - 1}; _archdsl; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True)
    assert set(out.stdout.split()) == expected


def test_tables_fit_and_wide_keeps_everything():
    rows = [["a" * 80, "b" * 60, 12345]] * 3
    narrow = render(["text", "more", "n"], rows)
    assert max(map(len, narrow.splitlines())) <= WIDTH and "..." in narrow
    assert "12,345" in narrow  # numbers are never cut
    wide = render(["text", "more", "n"], rows, width=None)
    assert "a" * 80 in wide and "b" * 60 in wide
    many = render(["name", *(f"spec{i}" for i in range(12))],
                  [["row", *(f"{i}.234 G MACs" for i in range(12))]], right=[False] + [True] * 12)
    assert max(map(len, many.splitlines())) <= WIDTH
    assert all(f"{i}.234 G MACs" in many for i in range(12))  # split into blocks, not cut


def lines_of(capsys, *argv: str) -> list[str]:
    main(list(argv))
    return capsys.readouterr().out.splitlines()


def test_text_output_fits_100_columns(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # paths as a user types them: specs/x.yaml
    specs = [str(p.relative_to(ROOT)) for p in network_specs()]
    libs = [str(p.relative_to(ROOT)) for p in (SPECS / "lib").glob("*.yaml")]
    out = lines_of(capsys, "validate", *specs, *libs)
    out += lines_of(capsys, "cost", *specs)
    out += lines_of(capsys, "cost", *specs, "--depth", "layer")
    for spec in specs:
        out += lines_of(capsys, "cost", spec, "--depth", "layer")
    out += lines_of(capsys, "match", "specs/inception_resnet_v2.yaml", "--to",
                    "specs/inception_v4.yaml", "--knob", "width")
    long = [line for line in out if len(line) > WIDTH]
    assert not long, long[:3]
    assert any(len(line) > WIDTH for line in lines_of(capsys, "cost", *specs, "--wide"))


@pytest.mark.slow
def test_build_output_fits_100_columns(capsys):
    for name in ("inception_v4", "xception", "mobilenet_v3_large"):
        out = lines_of(capsys, "build", str(SPECS / f"{name}.yaml"))
        assert max(map(len, out)) <= WIDTH


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_silent_off_a_terminal():
    stream = io.StringIO()
    with progress_mod.progress("working", 3, stream=stream) as bar:
        bar.advance("a")
    assert stream.getvalue() == ""


def test_progress_draws_on_a_terminal_and_erases_itself(monkeypatch):
    monkeypatch.setattr(progress_mod, "DELAY", 0.01)
    monkeypatch.setattr(progress_mod, "EVERY", 0.01)
    stream = FakeTerminal()
    with progress_mod.progress("counting", 2, stream=stream) as bar:
        bar.advance("specs/a.yaml")
        time.sleep(0.1)
    text = stream.getvalue()
    assert "archdsl: counting 1/2 specs/a.yaml" in text
    assert text.endswith("\r")  # the line is blanked out at the end


def test_quick_work_draws_nothing_on_a_terminal():
    stream = FakeTerminal()
    with progress_mod.progress("quick", stream=stream):
        pass
    assert stream.getvalue() == ""
