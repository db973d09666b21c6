"""YAML syntax errors in plain words, at the line that is wrong.

PyYAML words its errors for parser writers ("expected <block end>, but found '<block mapping
start>'", "mapping values are not allowed here") and points where the parser gave up, often
lines after the mistake (a key without its colon is reported at the next key). Most mistakes in
a spec are indentation: this module looks at the lines around PyYAML's marks and says which line
does not line up, and with what.
"""

from __future__ import annotations

import yaml

from .errors import Loc, SpecErrors

Place = tuple[int, int, str]  # 1-based line, 1-based column, message


def explain(exc: yaml.MarkedYAMLError, text: str) -> Place | None:
    """A plain-words message and the offending line, or None to keep PyYAML's."""
    mark, problem = exc.problem_mark, exc.problem or ""
    if mark is None:
        return None
    lines = text.split("\n")
    if "'\\t'" in problem or "\t" in problem:
        return (mark.line + 1, mark.column + 1, "a tab in the indentation: YAML indents with "
                                                "spaces only")
    if problem.startswith("could not find expected ':'") and exc.context_mark is not None:
        at = exc.context_mark
        word = _content(lines[at.line]).strip()
        return (at.line + 1, at.column + 1,
                f"{word!r} is neither a key nor a list item: a key needs a colon "
                f"('{word}:'), a list item a dash ('- {word}')")
    if problem.startswith(("expected <block end>", "did not find expected key",
                           "did not find expected '-'")):
        return _misaligned(lines, mark.line)
    if problem.startswith("mapping values are not allowed"):
        return _colon_in_text(lines, mark.line, mark.column)
    return None


def _content(line: str) -> str:
    """The line without its comment (a `` #`` outside quotes is rare enough in specs)."""
    return line.split(" #", 1)[0].rstrip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _above(lines: list[str], row: int) -> int | None:
    """The last line above ``row`` (0-based) with content, or None."""
    for i in range(row - 1, -1, -1):
        stripped = _content(lines[i]).strip()
        if stripped and not stripped.startswith("#"):
            return i
    return None


def _levels(lines: list[str], row: int) -> list[int]:
    """The indentations a line at ``row`` could line up with: those of the lines that enclose
    it, and where each list item's content starts (``- key:`` nests at the key)."""
    levels: set[int] = set()
    limit = None
    for i in range(row - 1, -1, -1):
        body = _content(lines[i])
        if not body.strip() or body.strip().startswith("#"):
            continue
        ind = _indent(body)
        if limit is None or ind < limit:
            levels.add(ind)
            rest = body.strip()
            while rest.startswith("- "):  # "- - x" or "- key: v": deeper levels on the line
                ind += 2 + len(rest[2:]) - len(rest[2:].lstrip(" "))
                rest = rest[2:].lstrip(" ")
                levels.add(ind)
            limit = _indent(body)
        if limit == 0:
            break
    return sorted(levels)


def _misaligned(lines: list[str], row: int) -> Place:
    line = lines[row] if row < len(lines) else ""
    k = _indent(line)
    prev = _above(lines, row)
    if prev is not None and k > _indent(lines[prev]):
        value = _content(lines[prev]).split(":", 1)[-1].strip()
        return (row + 1, k + 1,
                f"line {row + 1} is indented deeper than line {prev + 1}, which already has "
                f"its value ({value}): indent it like line {prev + 1}, or move that value to "
                f"lines of its own")
    if prev is not None and (text := _plain_text(lines[prev])) and k == _indent(lines[prev]):
        return _text_among_keys(lines, prev, row, text)
    levels = ", ".join(str(n) for n in _levels(lines, row))
    return (row + 1, k + 1,
            f"line {row + 1} is indented by {k} space{'' if k == 1 else 's'}, which lines up "
            f"with no line above it "
            f"(the levels here are {levels} spaces): indent it like the lines it belongs with")


def _colon_in_text(lines: list[str], row: int, col: int) -> Place:
    line = lines[row] if row < len(lines) else ""
    prev = _above(lines, row)
    k = _indent(line)
    before = line[:col].strip()
    # "key: value: more" on one line: a second colon inside a plain value.
    if ": " in line[:col] or (before and not before.startswith("- ") and prev is None):
        return (row + 1, col + 1, "a second ': ' on one line: quote the value if the colon "
                                  "belongs to it, or put the key on a line of its own")
    if prev is not None:
        p = _indent(lines[prev])
        if k > p:
            return (row + 1, k + 1,
                    f"line {row + 1} is indented deeper than line {prev + 1}, so YAML reads it "
                    f"as more of that line's text, where a 'key:' cannot be: indent it like "
                    f"line {prev + 1}")
        if text := _plain_text(lines[prev]):
            return _text_among_keys(lines, prev, row, text)
    return (row + 1, col + 1, "a ':' where no key can start: quote the text, or fix the "
                              "indentation of this line")


def continued_item(text: str, first: int, last: int, filename: str) -> None:
    """Refuse a plain value that runs on into a more indented ``- item`` line (0-based lines
    ``first``..``last``): YAML reads ``- conv 3x3 16`` there as more of the text above."""
    lines = text.split("\n")
    for row in range(first + 1, min(last, len(lines) - 1) + 1):
        stripped = lines[row].strip()
        if stripped.startswith("- ") or stripped == "-":
            raise SpecErrors.one(
                Loc(filename, row + 1, _indent(lines[row]) + 1),
                f"malformed YAML: line {row + 1} is indented deeper than line {first + 1}, so "
                f"YAML reads it as more of that line's text, not as a list item: indent it "
                f"like line {first + 1}")


def _plain_text(line: str) -> str:
    """The line's text when it is neither a key nor a list item, else ""."""
    text = _content(line).strip()
    return "" if ":" in text or text.startswith(("- ", "#")) or text == "-" else text


def _text_among_keys(lines: list[str], prev: int, row: int, text: str) -> Place:
    return (prev + 1, _indent(lines[prev]) + 1,
            f"line {prev + 1} is plain text ({text!r}) among keys: make it a key "
            f"('name: {text}') or a list item ('- {text}'), as line {row + 1} is a key")
