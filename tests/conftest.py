"""Shared test helpers: where the specs are, and a writer for small throw-away specs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def network_specs() -> list[Path]:
    """Every network spec of the library; ``*_paper.yaml`` files are rejected by design."""
    return sorted(p for p in SPECS.glob("*.yaml") if not p.stem.endswith("_paper"))


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec (dedented) into a temporary folder and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
