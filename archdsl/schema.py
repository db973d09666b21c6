"""JSON Schema for spec files, so that editors can complete and check YAML as it is typed.

The top level comes from :class:`~archdsl.document.SpecDocument`; network nodes are described
here from the registered layer kinds, so a new kind appears in the schema without edits.
Values may always be written as ``$name`` / ``$(...)`` expressions, which the schema admits as
strings.
"""

from __future__ import annotations

from typing import Any

from .document import SpecDocument
from .layers import KINDS
from .syntax import STRUCTURES

EXPR = {"type": "string", "pattern": r"\$[A-Za-z_(]",
        "description": "an expression, e.g. $k or $(2 * k)"}


def _lenient(schema: Any) -> Any:
    """Let every value of a field schema also be an expression."""
    if isinstance(schema, dict):
        if "properties" in schema:
            schema = dict(schema)
            schema["properties"] = {k: {"anyOf": [_lenient(v), EXPR]}
                                    for k, v in schema["properties"].items()}
        return schema
    return schema


def node_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """A network node: a one-line string, a list (sequence), or a one-key mapping.

    Sub-models of the kinds' fields are added to ``defs`` (the root's ``$defs``).
    """
    kinds: dict[str, Any] = {}
    for name, kind in sorted(KINDS.items()):
        fields = _lenient(kind.fields.model_json_schema(ref_template="#/$defs/{model}"))
        defs.update(fields.pop("$defs", {}))
        fields.pop("title", None)
        kinds[name] = {
            "description": f"{kind.summary}; one-line form: {kind.token_help()}",
            "anyOf": [{"type": "string"}, fields],
        }
    branches = {"type": "array", "items": {"$ref": "#/$defs/node"}}
    merge_form = {"anyOf": [branches, {
        "type": "object", "additionalProperties": False, "required": ["branches"],
        "properties": {"branches": branches, "split": {
            "anyOf": [{"type": "boolean"}, {"type": "array", "items": {"type": "integer"}}, EXPR],
            "description": "true: each branch takes an equal share of the input's channels; "
                           "a list: the channels of each"}}}]}
    structures = {
        "concat": {"description": "branches on the same input, joined along channels",
                   **merge_form},
        "add": {"description": "branches on the same input, added element-wise (broadcasting)",
                **merge_form},
        "mul": {"description": "branches on the same input, multiplied element-wise "
                               "(broadcasting): x * gate(x)", **merge_form},
        "seq": {"description": "a sequence of nodes", "type": "array",
                "items": {"$ref": "#/$defs/node"}},
        "aux": {"description": "an auxiliary head on the current tensor: its output is an extra "
                               "network output (training mode); the main path goes on unchanged",
                "anyOf": [{"type": "array", "items": {"$ref": "#/$defs/node"}},
                          {"$ref": "#/$defs/node"}]},
        "residual": {
            "description": "after(shortcut(x) + scale * body(x))",
            "anyOf": [
                {"type": "array", "items": {"$ref": "#/$defs/node"}},
                {"type": "object", "additionalProperties": False, "properties": {
                    "body": {"$ref": "#/$defs/node"},
                    "shortcut": {"$ref": "#/$defs/node"},
                    "scale": {"anyOf": [{"type": "number"}, EXPR]},
                    "after": {"$ref": "#/$defs/node"},
                    "drop_path": {"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                                            EXPR], "description": "stochastic depth (training)"},
                }, "required": ["body"]},
            ],
        },
    }
    assert set(structures) == set(STRUCTURES)
    mapping = {
        "type": "object",
        "description": "one node key (a layer kind, a structure, or a block call "
                       "with its arguments) and optional name and repeat",
        "properties": {
            **kinds,
            **structures,
            "name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
            "repeat": {"anyOf": [{"type": "integer", "minimum": 0}, EXPR]},
            "when": {"anyOf": [{"type": "boolean"}, EXPR],
                     "description": "leave the node out when false, e.g. when: $aux"},
            "from": {"type": "string", "description": "aux only: the earlier network item whose "
                                                      "output the head reads"},
        },
        "additionalProperties": {"type": ["object", "string", "null"],
                                 "description": "a block call: {block: {arg: value}}"},
    }
    return {
        "anyOf": [
            {"type": "string", "description": "one-line form, e.g. 'conv 3x3 96 /2 V'"},
            {"type": "array", "items": {"$ref": "#/$defs/node"}},
            mapping,
        ]
    }


def spec_schema() -> dict[str, Any]:
    schema = SpecDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "archdsl spec"
    defs = schema.setdefault("$defs", {})
    defs["node"] = node_schema(defs)
    props = schema["properties"]
    props["network"] = {"type": "array", "items": {"$ref": "#/$defs/node"},
                        "description": props["network"].get("description", "")}
    props["blocks"] = {
        "type": "object",
        "description": props["blocks"].get("description", ""),
        "additionalProperties": {"anyOf": [
            {"$ref": "#/$defs/node"},
            {"type": "object", "properties": {
                "args": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                   {"type": "object"}]},
                "doc": {"type": "string"},
                "figure": {"type": "string"},
                "body": {"$ref": "#/$defs/node"},
            }},
        ]},
    }
    props["defaults"] = {
        "type": "object",
        "description": props["defaults"].get("description", ""),
        "properties": {name: {"type": "object"} for name in sorted(KINDS)},
        "additionalProperties": False,
    }
    return schema
