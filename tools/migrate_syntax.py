"""Rewrite specs from the first spec language to the plain-YAML one, keeping comments and layout.

The first language wrote expressions as ``${...}`` and block calls as ``name(a, k=v)``; YAML
reads the braces as a mapping and splits flow lists at the commas. This tool rewrites, in place:

- ``${k}`` -> ``$k``, ``${in.channels}`` -> ``$in.channels``, ``${4 * c}`` -> ``$(4 * c)``;
- ``reduction_a(k=192, l=224)`` -> ``reduction_a k=192 l=224`` (for the blocks the file and its
  includes define, and in text fields naming them);
- quotes that only protected ``${...}`` from YAML are dropped (``width: "${width}"`` ->
  ``width: $width``).

Usage: python tools/migrate_syntax.py FILE... (YAML specs, or Markdown/Python with inline specs:
pass --blocks NAME,NAME for the block names those use).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_OLD_EXPR = re.compile(r"\$\{([^{}\n]*)\}")
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_BLOCK_KEY = re.compile(r"^  ([A-Za-z_]\w*):", re.M)
_QUOTED = re.compile(r"([:\-\[,{]\s*)\"([^\"\n]*\$[^\"\n]*)\"")
# What a plain scalar inside a flow collection cannot hold anywhere, or cannot start with.
_UNSAFE_PLAIN = re.compile(r"[,\[\]{}?\"]|: | #|:$|^[-?:!&*|>'%@`#]|^\s|\s$")


def new_expr(match: re.Match[str]) -> str:
    inner = match.group(1).strip()
    after = match.string[match.end():match.end() + 1]
    if _DOTTED.fullmatch(inner) and not re.match(r"[\w.]", after):
        return f"${inner}"
    return f"$({inner})"


def convert_calls(text: str, blocks: set[str]) -> str:
    """``name(a, k=v)`` -> ``name a k=v`` for the given block names, outside expressions."""
    out = []
    i = 0
    pattern = re.compile(r"(?<![\w$.])(" + "|".join(sorted(blocks, key=len, reverse=True))
                         + r")\(") if blocks else None
    while pattern is not None:
        m = pattern.search(text, i)
        if m is None:
            break
        depth, j = 0, m.end() - 1
        for j in range(m.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                break
        inner = text[m.end():j]
        parts, start, level = [], 0, 0
        for k, ch in enumerate(inner + ","):
            level += {"(": 1, ")": -1, "{": 1, "}": -1, "[": 1, "]": -1}.get(ch, 0)
            if ch == "," and level == 0:
                parts.append(inner[start:k].strip())
                start = k + 1
        args = " ".join(p.replace(" = ", "=") for p in parts if p)
        out.append(text[i:m.start()] + m.group(1) + (" " + args if args else ""))
        i = j + 1
    out.append(text[i:])
    return "".join(out)


def unquote(match: re.Match[str]) -> str:
    content = match.group(2)
    if _UNSAFE_PLAIN.search(content) or "${" in content:
        return match.group(0)
    return match.group(1) + content


def migrate(text: str, blocks: set[str]) -> str:
    text = convert_calls(text, blocks)
    text = _OLD_EXPR.sub(new_expr, text)
    return _QUOTED.sub(unquote, text)


def blocks_of(path: Path) -> set[str]:
    """Block names defined in a spec and its includes (found by layout, not parsed: the old
    syntax is not YAML)."""
    names: set[str] = set()
    text = path.read_text(encoding="utf-8")
    if "\nblocks:" in text or text.startswith("blocks:"):
        section = text.split("blocks:", 1)[1]
        section = re.split(r"^\S", section, maxsplit=1, flags=re.M)[0]
        names |= set(_BLOCK_KEY.findall(section))
    for inc in re.findall(r"include:\s*\[([^\]]*)\]", text):
        for name in inc.split(","):
            target = path.parent / name.strip()
            if target.is_file():
                names |= blocks_of(target)
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--blocks", default="", help="extra block names, comma-separated")
    args = ap.parse_args(argv)
    extra = {b for b in args.blocks.split(",") if b}
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        blocks = extra | (blocks_of(path) if path.suffix in (".yaml", ".yml") else set())
        new = migrate(text, blocks)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
