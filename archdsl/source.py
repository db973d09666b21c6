"""Safe YAML loading into a tree that remembers where every value came from.

PyYAML's composer gives nodes with marks; we convert them ourselves instead of letting a loader
construct objects, so that no tag can run code (``!!python/...`` is refused with its location) and
every scalar, mapping and sequence keeps its ``file:line:col``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import Loc, SpecErrors
from .yaml_errors import continued_item, explain

_STD = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}
# PyYAML resolves some plain scalars to these; their values are read by ``plain_scalar``.
_ALLOWED_TAGS |= {_STD + "timestamp", _STD + "value", _STD + "merge"}
# Aliases let a small file describe a huge tree ("billion laughs"); no real spec comes close.
_MAX_NODES = 50_000


@dataclass
class YScalar:
    value: str | int | float | bool | None
    loc: Loc
    plain: bool = True  # unquoted single-line text: columns inside it match the file

    def plain_value(self) -> Any:
        return self.value


@dataclass
class YMap:
    items: dict[str, tuple[YScalar, YNode]]
    loc: Loc

    def plain_value(self) -> dict[str, Any]:
        return {k: v.plain_value() for k, (_, v) in self.items.items()}

    def get(self, key: str) -> YNode | None:
        hit = self.items.get(key)
        return hit[1] if hit else None

    def key_loc(self, key: str) -> Loc:
        return self.items[key][0].loc


@dataclass
class YSeq:
    items: list[YNode] = field(default_factory=list)
    loc: Loc = field(default=Loc("<unknown>", 0, 0))

    def plain_value(self) -> list[Any]:
        return [v.plain_value() for v in self.items]


YNode = Union[YScalar, YMap, YSeq]


def locate(node: YNode, path: tuple[Any, ...]) -> Loc:
    """The location of the value at ``path`` (a pydantic error path), or of its nearest parent."""
    for step in path:
        if isinstance(node, YMap) and isinstance(step, str) and step in node.items:
            node = node.items[step][1]
        elif isinstance(node, YSeq) and isinstance(step, int) and 0 <= step < len(node.items):
            node = node.items[step]
        else:
            break
    return node.loc


# Specs are read as YAML 1.2 core-schema data (as ruamel.yaml and other 1.2 tools read them):
# ``2e-1`` is a number. Plain scalars that YAML 1.1 readers (PyYAML's ``safe_load``) would read
# differently (``yes``/``no``/``on``/``off``, ``012``, ``1_000``, ``1:30``, ``0b1``) are refused
# with the spelling that every reader agrees on, so a spec means one thing to every YAML tool.
_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT_RE = re.compile(r"[-+]?[0-9]+")
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
_YAML11_BOOL = re.compile(r"yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF")
_YAML11_NUMBER = re.compile(r"[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|0o?[0-7_]+|[0-9][0-9_]*(:[0-5]?[0-9])+"
                            r"(\.[0-9_]*)?|[0-9][0-9_]*_[0-9_]*(\.[0-9_]*)?)")


def plain_scalar(text: str, loc: Loc) -> Any:
    """The value of an unquoted scalar, by the YAML 1.2 core schema."""
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _YAML11_BOOL.fullmatch(text):
        raise SpecErrors.one(loc, f"{text!r} is true or false to YAML 1.1 tools and text to YAML "
                                  f"1.2 ones: write true, false, or '{text}' in quotes")
    if _YAML11_NUMBER.fullmatch(text):
        raise SpecErrors.one(loc, f"{text!r} is read as a number by some YAML tools and as text "
                                  f"or another number by others: write a plain decimal number, "
                                  f"or quote it")
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    special = _SPECIAL_FLOATS.get(text.lower())
    return text if special is None else special


def _max_nesting(text: str) -> int:
    """An upper bound of the YAML nesting depth, found without parsing.

    PyYAML's parsers recurse once per level (libyaml crashes the interpreter near 30,000 levels),
    so deep documents are refused before either sees them. Each level needs a deeper indent, a
    flow bracket or a ``- `` / ``? `` indicator; their sum on a line bounds the depth there.
    """
    most = flow = 0
    for line in text.splitlines():
        stripped = line.lstrip(" ").split(" #", 1)[0]
        indent = len(line) - len(stripped)
        indicators = len(re.match(r"(?:[-?:]\s+)*", stripped).group(0).split()) if stripped else 0
        for ch in stripped:
            if ch in "[{":
                flow += 1
                most = max(most, flow)
            elif ch in "]}":
                flow = max(0, flow - 1)
        most = max(most, (indent + 1) // 2 + indicators + flow)
    return most


# libyaml's parser (when PyYAML has it) reads a spec several times faster than the pure-Python
# one; on a syntax error the text is parsed again by the pure-Python loader, whose messages are
# the ones users see.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)
MAX_NESTING = 100
MAX_TEXT = 200_000  # characters of one file; the largest shipped spec has about 4,000


def load_text(text: str, filename: str) -> YNode:
    """Parse YAML text; raise SpecErrors (located) for syntax errors and disallowed content."""
    if len(text) > MAX_TEXT:
        raise SpecErrors.one(Loc(filename, 1, 1), f"the file has {len(text):,} characters, over "
                                                  f"the limit of {MAX_TEXT:,} for a spec")
    if (bad := _BAD_CHAR_RE.search(text)) is not None:
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise SpecErrors.one(Loc(filename, line, col),
                             f"control character {bad.group(0)!r} is not allowed in a spec")
    if _max_nesting(text) > MAX_NESTING:
        raise SpecErrors.one(Loc(filename, 1, 1), f"the document nests deeper than "
                                                  f"{MAX_NESTING} levels")
    loaders = ([_FAST_LOADER] if _FAST_LOADER is not None else []) + [yaml.SafeLoader]
    for loader_cls in loaders:
        loader = loader_cls(text)
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            if loader_cls is not yaml.SafeLoader:
                continue  # report it with the pure-Python parser's wording
            raise _syntax_error(exc, text, filename) from None
        except (yaml.YAMLError, RecursionError) as exc:
            if loader_cls is not yaml.SafeLoader:
                continue
            raise SpecErrors.one(Loc(filename, 1, 1), f"malformed YAML: {exc}") from None
        finally:
            loader.dispose()
        if root is None:
            raise SpecErrors.one(Loc(filename, 1, 1), "the file is empty")
        return _Converter(filename, text).convert(root)
    raise AssertionError("the pure-Python loader always returns or raises")


# C0 controls other than tab and newlines, DEL, and lone surrogates: YAML forbids the first; the
# last cannot be printed or encoded, so a message about them would itself crash.
_BAD_CHAR_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, filename: str) -> SpecErrors:
    mark = exc.problem_mark or exc.context_mark
    loc = _loc(filename, mark) if mark else Loc(filename, 1, 1)
    problem = exc.problem or exc.context or "malformed YAML"
    # The old ``${...}`` syntax inside a flow list is the commonest cause: say so, with the fix.
    if mark is not None:
        line_start = text.rfind("\n", 0, mark.index) + 1
        line_end = text.find("\n", mark.index)
        line = text[line_start:line_end if line_end >= 0 else len(text)]
        if (at := line.find("${")) >= 0:
            from .expr import old_syntax_hint

            return SpecErrors.one(Loc(filename, mark.line + 1, at + 1), old_syntax_hint(line, at))
        if problem.startswith("expected ',' or ']'") or "flow" in (exc.context or ""):
            problem += " (text with commas, brackets or braces inside a flow list [...] needs "\
                       "quotes or a block list)"
        elif (plain := explain(exc, text)) is not None:  # indentation, in plain words
            line, col, problem = plain
            loc = Loc(filename, line, col)
    return SpecErrors.one(loc, f"malformed YAML: {problem}")


def load_file(path: Path, shown_as: str | None = None) -> tuple[YNode, str]:
    """Read and parse a spec file; returns the tree and the text (kept for checkpoints)."""
    name = shown_as or str(path)
    try:
        with path.open("rb") as f:
            # Read no more than the limit allows, so a huge file costs no time or memory.
            data = f.read(4 * MAX_TEXT + 1)
        if len(data) > 4 * MAX_TEXT:
            raise SpecErrors.one(Loc(name, 1, 1), f"the file is over the limit of {MAX_TEXT:,} "
                                                  f"characters for a spec")
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text
    except FileNotFoundError:
        raise SpecErrors.one(Loc(name, 1, 1), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecErrors.one(Loc(name, 1, 1), f"cannot read the file: {exc}") from None
    return load_text(text, name), text


def _loc(filename: str, mark: yaml.Mark) -> Loc:
    return Loc(filename, mark.line + 1, mark.column + 1)


class _Converter:
    """PyYAML nodes to located values, refusing tags, alias cycles and alias bombs."""

    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.text = text
        self.count = 0
        self.open: set[int] = set()  # nodes being converted: an alias to one of them is a cycle

    def convert(self, node: yaml.Node) -> YNode:
        self.count += 1
        loc = _loc(self.filename, node.start_mark)
        if self.count > _MAX_NODES:
            raise SpecErrors.one(loc, f"the document expands to more than {_MAX_NODES} values")
        if _TAG_RE.match(self.text, node.start_mark.index) or node.tag not in _ALLOWED_TAGS:
            raise SpecErrors.one(loc, "tags (!...) are not allowed: specs are plain YAML data")
        if isinstance(node, yaml.ScalarNode):
            if (bad := _BAD_CHAR_RE.search(node.value)) is not None:
                # An escape in quotes ("\ud800", "\x01") gives what the file itself may not hold.
                raise SpecErrors.one(loc, f"the text holds {bad.group(0)!r}: control characters "
                                          f"and lone surrogates are not allowed in a spec")
            plain = not node.style
            if plain and node.end_mark.line > node.start_mark.line:
                continued_item(self.text, node.start_mark.line, node.end_mark.line,
                               self.filename)  # "- x" indented under an item: refused
            value = plain_scalar(node.value, loc) if plain else node.value
            one_line = node.end_mark.line == node.start_mark.line
            return YScalar(value, loc, plain and one_line and "\n" not in node.value)
        if id(node) in self.open:
            raise SpecErrors.one(loc, "an alias refers to a node that contains it")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return YSeq([self.convert(n) for n in node.value], loc)
            return self._mapping(node, loc)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> YMap:
        items: dict[str, tuple[YScalar, YNode]] = {}
        for key_node, value_node in node.value:
            key = self.convert(key_node)
            if not isinstance(key, YScalar) or key.value is None or isinstance(key.value, bool):
                raise SpecErrors.one(key.loc, "mapping keys must be names")
            name = str(key.value)
            if name == "<<":
                raise SpecErrors.one(key.loc, "merge keys (<<) are not allowed: YAML 1.2 tools "
                                              "read them as an ordinary key")
            if name in items:
                first = items[name][0].loc
                raise SpecErrors.one(
                    key.loc, f"duplicate key {name!r} (first at line {first.line})"
                )
            items[name] = (key, self.convert(value_node))
        return YMap(items, loc)


_TAG_RE = re.compile(r"(?:&\S+\s+)?!")
