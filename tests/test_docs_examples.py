"""Every ```python block of README.md and docs/**/*.md runs as documented.

The blocks of one file run in order in one namespace (later blocks use names set by earlier
ones, as a reader would), in a temporary folder where ``specs/`` is the repository's, so blocks
that write files (``figure.save("c.svg")``) leave nothing behind. A block preceded by
``<!-- no-test: REASON -->`` is skipped: for what cannot run offline; use it sparingly. Files
whose blocks build or port models (torch) are marked slow.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

BLOCK_RE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
NO_TEST_RE = re.compile(r"<!--\s*no-test:[^>]*-->\s*$")
SLOW_RE = re.compile(r"\.build\(|build_seeded|port_weights|import torch|load_checkpoint")


@dataclass
class Block:
    file: Path
    line: int  # of the opening fence
    code: str
    skipped: bool


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    out = []
    for m in BLOCK_RE.finditer(text):
        before = text[:m.start()].rstrip("\n")
        out.append(Block(path, text.count("\n", 0, m.start()) + 1, m.group(1),
                         bool(NO_TEST_RE.search(before.rsplit("\n", 1)[-1]))))
    return out


def _params() -> list:
    params = []
    for path in doc_files():
        found = blocks(path)
        if not found:
            continue
        marks = [pytest.mark.slow] if any(SLOW_RE.search(b.code) for b in found) else []
        params.append(pytest.param(path, marks=marks, id=str(path.relative_to(ROOT))))
    return params


def test_blocks_are_found(tmp_path: Path):
    found = [b for p in doc_files() for b in blocks(p)]
    assert len(found) >= 5 and all(b.code.strip() for b in found)
    # An opt-out marker skips exactly the block after it.
    sample = tmp_path / "sample.md"
    sample.write_text("<!-- no-test: needs network -->\n```python\nraise SystemExit\n```\n\n"
                      "```python\nx = 1\n```\n")
    assert [b.skipped for b in blocks(sample)] == [True, False]


@pytest.mark.parametrize("path", _params())
def test_python_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "specs").symlink_to(ROOT / "specs", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks(path):
        if block.skipped:
            continue
        where = f"{path.relative_to(ROOT)}:{block.line}"
        try:
            exec(compile(block.code, where, "exec"), namespace)  # noqa: S102 -- our own docs
        except Exception as exc:  # noqa: BLE001 -- report which block failed, and how
            pytest.fail(f"the example at {where} fails: {type(exc).__name__}: {exc}")
