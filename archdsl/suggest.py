"""The one "did you mean" of archdsl: the closest known names to a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str], sep: str = " ", most: int = 3) -> str:
    """``"; did you mean 'conv'?"`` (with ``sep`` before it), or ``""`` when nothing is close."""
    close = difflib.get_close_matches(word, list(known), n=most, cutoff=0.6)
    if not close:
        return ""
    return f"{sep}did you mean {' or '.join(repr(c) for c in close)}?"
