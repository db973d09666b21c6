"""Safe YAML loading into a tree that remembers where every value came from.

PyYAML's composer gives nodes with marks; we convert them ourselves instead of letting a loader
construct objects, so that no tag can run code (``!!python/...`` is refused with its location) and
every scalar, mapping and sequence keeps its ``file:line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import Loc, SpecErrors

_STD = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}
# Aliases let a small file describe a huge tree ("billion laughs"); no real spec comes close.
_MAX_NODES = 200_000


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


# ``${...}`` must be writable inside flow lists (``[conv 1x1 ${k}, conv 3x3 ${l}]``), where YAML
# would read its braces and commas as structure. Before parsing they are swapped for private-use
# characters of the same width (so columns stay right) and swapped back in every scalar.
_OPEN, _CLOSE, _COMMA, _COLON = "\ue000", "\ue001", "\ue002", "\ue003"
_PROTECT_RE = re.compile(r"\$\{([^{}\n]*)\}")
_RESTORE = str.maketrans({_OPEN: "{", _CLOSE: "}", _COMMA: ",", _COLON: ":"})


def _protect(text: str) -> str:
    return _PROTECT_RE.sub(
        lambda m: f"${_OPEN}{m.group(1).replace(',', _COMMA).replace(':', _COLON)}{_CLOSE}", text
    )


def _restore(value: Any) -> Any:
    return value.translate(_RESTORE) if isinstance(value, str) else value


# libyaml's parser (when PyYAML has it) reads a spec several times faster than the pure-Python
# one, which matters to cost searches that load a spec thousands of times; on a syntax error the
# text is parsed again by the pure-Python loader, whose messages are the ones users see.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def load_text(text: str, filename: str) -> YNode:
    """Parse YAML text; raise SpecErrors (located) for syntax errors and disallowed tags."""
    if _FAST_LOADER is not None:
        fast = _FAST_LOADER(_protect(text))
        try:
            root = fast.get_single_node()
        except yaml.YAMLError:
            root = None  # report it with the pure-Python parser's wording, below
        else:
            if root is None:
                raise SpecErrors.one(Loc(filename, 1, 1), "the file is empty")
            return _Converter(filename, fast).convert(root)
        finally:
            fast.dispose()
    loader = yaml.SafeLoader(_protect(text))
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _loc(filename, mark) if mark else Loc(filename, 1, 1)
        problem = _restore(exc.problem or exc.context or "malformed YAML")
        raise SpecErrors.one(loc, f"malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:  # e.g. a reader error on control characters
        raise SpecErrors.one(Loc(filename, 1, 1), f"malformed YAML: {exc}") from None
    finally:
        loader.dispose()
    if root is None:
        raise SpecErrors.one(Loc(filename, 1, 1), "the file is empty")
    return _Converter(filename, loader).convert(root)


def load_file(path: Path, shown_as: str | None = None) -> tuple[YNode, str]:
    """Read and parse a spec file; returns the tree and the text (kept for checkpoints)."""
    name = shown_as or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecErrors.one(Loc(name, 1, 1), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecErrors.one(Loc(name, 1, 1), f"cannot read the file: {exc}") from None
    return load_text(text, name), text


def _loc(filename: str, mark: yaml.Mark) -> Loc:
    return Loc(filename, mark.line + 1, mark.column + 1)


class _Converter:
    def __init__(self, filename: str, loader: Any) -> None:  # SafeLoader or CSafeLoader
        self.filename = filename
        self.loader = loader
        self.count = 0

    def convert(self, node: yaml.Node) -> YNode:
        self.count += 1
        loc = _loc(self.filename, node.start_mark)
        if self.count > _MAX_NODES:
            raise SpecErrors.one(loc, f"the document expands to more than {_MAX_NODES} values")
        if node.tag not in _ALLOWED_TAGS:
            raise SpecErrors.one(loc, f"tag {node.tag!r} is not allowed: specs are plain YAML data")
        if isinstance(node, yaml.ScalarNode):
            try:
                value = self.loader.construct_object(node, deep=True)
            except yaml.constructor.ConstructorError as exc:
                raise SpecErrors.one(loc, f"bad value: {exc.problem}") from None
            plain = not node.style and "\n" not in node.value  # libyaml says '', PyYAML None
            return YScalar(_restore(value), loc, plain)
        if isinstance(node, yaml.SequenceNode):
            return YSeq([self.convert(n) for n in node.value], loc)
        items: dict[str, tuple[YScalar, YNode]] = {}
        for key_node, value_node in node.value:
            key = self.convert(key_node)
            if not isinstance(key, YScalar) or key.value is None or isinstance(key.value, bool):
                raise SpecErrors.one(key.loc, "mapping keys must be names")
            name = _restore(str(key.value))
            if name in items:
                first = items[name][0].loc
                raise SpecErrors.one(
                    key.loc, f"duplicate key {name!r} (first at line {first.line})"
                )
            items[name] = (key, self.convert(value_node))
        return YMap(items, loc)
