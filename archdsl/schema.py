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


CHOICE = {"$ref": "#/$defs/choice"}
_RANGE_OPTIONS = {"step": {"type": "number", "exclusiveMinimum": 0}, "log": {"type": "boolean"},
                  "default": {"type": "number"}}
CHOICE_DEF = {
    "description": "a choice of a space (docs/search.md): {choice: [a, b]}, "
                   "{int: [low, high], step: 1, log: false} or {float: [low, high], log: true}",
    "oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["choice"],
         "properties": {"choice": {"type": "array", "minItems": 1}, "default": {}}},
        {"type": "object", "additionalProperties": False, "required": ["int"],
         "properties": {"int": {"type": "array", "items": {"type": "integer"}, "minItems": 2,
                                "maxItems": 2}, **_RANGE_OPTIONS}},
        {"type": "object", "additionalProperties": False, "required": ["float"],
         "properties": {"float": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                                  "maxItems": 2}, **_RANGE_OPTIONS}},
    ],
}
QUANTITY = {"anyOf": [{"type": "number", "minimum": 0}, {
    "type": "string", "pattern": r"^\s*[0-9.]+([eE][-+]?[0-9]+)?\s*[kKmMgGtT]?\s*$"}]}
SEARCH = {
    "type": "object", "additionalProperties": False,
    "description": "a space's search (docs/search.md)",
    "properties": {
        "budget": {"type": "object", "minProperties": 1, "maxProperties": 1,
                   "description": "a hard budget: {macs: 40M} (a maximum) or {macs: [38M, 42M]}",
                   "additionalProperties": False, "properties": {
                       m: {"anyOf": [QUANTITY, {"type": "array", "items": QUANTITY,
                                                "minItems": 2, "maxItems": 2}]}
                       for m in ("params", "macs", "flops")}},
        "constraints": {"type": "array", "items": EXPR,
                        "description": "expressions over the knobs that must all hold"},
        "objectives": {"type": "object", "additionalProperties": {
            "enum": ["maximize", "minimize"]}},
        "sampler": {"enum": ["tpe", "nsga2", "random"]},
        "seed": {"type": "integer", "minimum": 0},
        "train": {"type": "object", "description": "training knobs (not the network): values "
                                                   "or choices, e.g. {lr: {float: [0.001, 0.1], "
                                                   "log: true}, epochs: 8}"},
    },
}


def _lenient(schema: Any) -> Any:
    """Let every value of a field schema also be an expression or a choice."""
    if isinstance(schema, dict):
        if "properties" in schema:
            schema = dict(schema)
            schema["properties"] = {k: {"anyOf": [_lenient(v), EXPR, CHOICE]}
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
            "repeat": {"anyOf": [{"type": "integer", "minimum": 0}, EXPR, CHOICE]},
            "when": {"anyOf": [{"type": "boolean"}, EXPR, CHOICE],
                     "description": "leave the node out when false, e.g. when: $aux"},
            "from": {"type": "string", "description": "aux only: the earlier network item whose "
                                                      "output the head reads"},
            "choice": {"type": "object", "minProperties": 1,
                       "additionalProperties": {"$ref": "#/$defs/node"},
                       "description": "a space's node alternatives: {plain: [...], "
                                      "residual: [...]} (docs/search.md)"},
            "default": {"type": "string", "description": "the alternative chosen by default"},
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
    defs["choice"] = CHOICE_DEF
    schema["properties"]["search"] = SEARCH
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
