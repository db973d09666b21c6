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


# Modules that build, port or trace every network of the library: the whole suite runs them in
# CI; `make fast` (pytest -m "not slow") leaves them out while developing.
SLOW_MODULES = {"test_references.py", "test_build.py", "test_export.py", "test_inplace.py",
                "test_lenet_alexnet_googlenet.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
