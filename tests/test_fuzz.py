"""A short run of tools/fuzz_specs.py: 2,000 mutated specs, none may crash, hang or blow up.

Slow (about 2-3 minutes on 2 cores): deselect with ``-m "not slow"``. Longer runs on other seeds:
``python tools/fuzz_specs.py --count 20000 --seed 2``.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_two_thousand_mutants_are_all_refused_cleanly_or_accepted() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "fuzz_specs.py"), "--count", "2000", "--seed", "1",
         "--jobs", "2", "--build-every", "100", "--case-seconds", "10", "--time-limit", "400"],
        capture_output=True, text=True, timeout=600)
    summary = r.stdout
    assert "2000 run" in summary and "not run" not in summary, summary + r.stderr
    outcomes = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", summary.split(
        "outcomes: ")[1].splitlines()[0]))
    assert sum(outcomes.values()) == 2000
    assert outcomes.get("located", 0) > 1000  # the mutations do break specs ...
    assert outcomes.get("ok", 0) > 50  # ... and some still read as networks
    assert r.returncode == 0, summary
