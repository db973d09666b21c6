"""A small writer of Graphviz DOT text, deterministic to the byte.

The same calls in the same order give the same text: statements come out in the order they
were made, attributes sorted by name, nothing depends on object ids, hashing or the clock. So a
figure's DOT can be kept in git and diffed. (The ``graphviz`` Python package is not used: this
is all the DOT we need, and it keeps the text under our control.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Html:
    """An HTML-like label, written between ``<`` and ``>`` instead of quotes."""

    markup: str


def escape_html(text: str) -> str:
    """Text for inside an HTML-like label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as ``\\n``."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


def _value(value: str | int | float | Html) -> str:
    if isinstance(value, Html):
        return f"<{value.markup}>"
    if isinstance(value, bool):
        return quote("true" if value else "false")
    if isinstance(value, (int, float)):
        return quote(f"{value:g}" if isinstance(value, float) else str(value))
    return quote(value)


def attr_list(attrs: dict[str, str | int | float | Html]) -> str:
    """``[a="1", b="x"]`` with keys sorted, or the empty string."""
    if not attrs:
        return ""
    return " [" + ", ".join(f"{k}={_value(attrs[k])}" for k in sorted(attrs)) + "]"


@dataclass(eq=False)
class Subgraph:
    """A graph or cluster: its own attributes, nodes and nested clusters, in creation order.

    Edges always go to the root graph: an edge written inside a cluster would pull both of its
    ends into that cluster.
    """

    name: str
    attrs: dict[str, str | int | float | Html] = field(default_factory=dict)
    root: Digraph | None = field(default=None, repr=False, compare=False)
    body: list[str | Subgraph] = field(default_factory=list)

    def node(self, node_id: str, **attrs: str | int | float | Html) -> str:
        self.body.append(f"{quote(node_id)}{attr_list(attrs)};")
        if self.root is not None:
            self.root.owner[node_id] = self
        return node_id

    def same_rank(self, node_ids: list[str]) -> None:
        """Keep these nodes side by side (one rank), in this order."""
        self.body.append("{rank=same; " + " ".join(quote(n) + ";" for n in node_ids) + "}")

    def edge(self, tail: str, head: str, **attrs: str | int | float | Html) -> None:
        target = self.root if self.root is not None else self
        target.edges.append(f"{quote(tail)} -> {quote(head)}{attr_list(attrs)};")

    def cluster(self, name: str, **attrs: str | int | float | Html) -> Subgraph:
        """A nested cluster (Graphviz draws a frame around subgraphs named ``cluster...``)."""
        sub = Subgraph(f"cluster_{name}", dict(attrs), self.root)
        self.body.append(sub)
        return sub

    def _lines(self, indent: str) -> list[str]:
        out = [f"{indent}{k}={_value(self.attrs[k])};" for k in sorted(self.attrs)]
        for item in self.body:
            if isinstance(item, Subgraph):
                out.append(f"{indent}subgraph {quote(item.name)} {{")
                out += item._lines(indent + "  ")
                out.append(f"{indent}}}")
            else:
                out.append(indent + item)
        return out


@dataclass(eq=False)
class Digraph(Subgraph):
    """The root graph, with default node and edge attributes."""

    node_defaults: dict[str, str | int | float | Html] = field(default_factory=dict)
    edge_defaults: dict[str, str | int | float | Html] = field(default_factory=dict)
    edges: list[str] = field(default_factory=list)
    # Every node's id -> the graph or cluster it was declared in, in declaration order.
    owner: dict[str, Subgraph] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = self

    def source(self) -> str:
        lines = [f"digraph {quote(self.name)} {{"]
        if self.node_defaults:
            lines.append(f"  node{attr_list(self.node_defaults)};")
        if self.edge_defaults:
            lines.append(f"  edge{attr_list(self.edge_defaults)};")
        lines += self._lines("  ")
        lines += ["  " + e for e in self.edges]
        lines.append("}")
        return "\n".join(lines) + "\n"
