"""Tool schemas as Gemini's function declarations: JSON Schema rewritten into the OpenAPI subset
that Gemini's ``Schema`` accepts (``sanitize_schema``; see there for exactly what is stripped or
rewritten)."""

from __future__ import annotations

import json
from typing import Any

from harness.providers.base import ToolSpec

# Keys Gemini's Schema takes, in JSON Schema spelling (the SDK accepts these camelCase names).
KEPT_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "properties",
        "required",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
        "anyOf",
        "propertyOrdering",
    }
)
# The formats Gemini accepts, per type; any other format is dropped (and named in the description).
ALLOWED_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}
MAX_REF_DEPTH = 8


def sanitize_schema(schema: Any) -> dict[str, Any]:
    """A JSON Schema rewritten into what Gemini's function ``parameters`` accept.

    - local ``$ref``s (``#/$defs/...``, ``#/definitions/...``) are inlined (a recursive reference
      stops after 8 levels as a plain ``{"type": "object"}``); ``$defs``/``definitions`` go;
    - ``"type": [T, "null"]`` becomes ``T`` with ``nullable: true`` (several types: ``anyOf``);
    - ``oneOf`` becomes ``anyOf``; ``allOf`` is merged into one schema; ``const`` becomes a
      one-value ``enum``; ``examples`` becomes ``example`` (the first);
    - ``format``s other than date-time/enum (strings), float/double (numbers) and int32/int64
      (integers) are dropped and named in the description;
    - a non-string ``enum`` is dropped and listed in the description (Gemini enums are strings);
    - ``required`` keeps only names that are in ``properties``;
    - every other keyword is dropped: ``additionalProperties``, ``$schema``, ``$id``, ``$comment``,
      ``patternProperties``, ``not``, ``if``/``then``/``else``, ``exclusiveMinimum``/
      ``exclusiveMaximum``, ``multipleOf``, ``uniqueItems``, ``prefixItems``, ``contains``,
      ``readOnly``/``writeOnly``, ``deprecated``, ...
    """
    if not isinstance(schema, dict):
        return {}
    definitions: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            definitions.update({f"#/{key}/{name}": value for name, value in schema[key].items()})
    return _sanitize(schema, definitions, 0)


def _resolve(schema: dict[str, Any], definitions: dict[str, Any], depth: int) -> tuple[dict[str, Any], int]:
    while isinstance(schema.get("$ref"), str):
        target = definitions.get(schema["$ref"])
        if not isinstance(target, dict) or depth >= MAX_REF_DEPTH:
            return {"type": "object"}, depth
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **siblings}
        depth += 1
    return schema, depth


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    parts = [p for p in schema.get("allOf", []) if isinstance(p, dict)]
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in parts:
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _note(description: Any, note: str) -> str:
    return f"{description} ({note})" if isinstance(description, str) and description else f"({note})"


def _sanitize(schema: dict[str, Any], definitions: dict[str, Any], depth: int) -> dict[str, Any]:
    schema, depth = _resolve(schema, definitions, depth)
    if "allOf" in schema:
        schema = _merge_all_of(schema)
        schema, depth = _resolve(schema, definitions, depth)
    out: dict[str, Any] = {}
    any_of = schema.get("anyOf", schema.get("oneOf"))
    kind = schema.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        if len(types) < len(kind):
            out["nullable"] = True
        if len(types) == 1:
            kind = types[0]
        else:
            kind = None
            if types and any_of is None:
                any_of = [{"type": t} for t in types]
    if isinstance(kind, str):
        out["type"] = kind
    for key, value in schema.items():
        if key not in KEPT_SCHEMA_KEYS or key in ("type", "anyOf", "properties", "items", "required"):
            continue
        out[key] = value
    if "const" in schema and "enum" not in schema:
        out["enum"] = [schema["const"]]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and "example" not in schema:
        out["example"] = examples[0]
    if "format" in out:
        allowed = ALLOWED_FORMATS.get(str(kind), frozenset())
        if out["format"] not in allowed:
            out["description"] = _note(out.get("description"), f"format: {out.pop('format')}")
    if "enum" in out:
        values = out["enum"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            out.pop("enum")
            listed = ", ".join(json.dumps(v) for v in values) if isinstance(values, list) else ""
            out["description"] = _note(out.get("description"), f"one of: {listed}")
    if isinstance(any_of, list):
        out["anyOf"] = [_sanitize(s, definitions, depth) for s in any_of if isinstance(s, dict)]
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {
            name: _sanitize(s if isinstance(s, dict) else {}, definitions, depth)
            for name, s in schema["properties"].items()
        }
        if not out["properties"]:
            out.pop("properties")
    if isinstance(schema.get("items"), dict):
        out["items"] = _sanitize(schema["items"], definitions, depth)
    if isinstance(schema.get("required"), list):
        names = [n for n in schema["required"] if n in out.get("properties", {})]
        if names:
            out["required"] = names
    if isinstance(out.get("propertyOrdering"), list):
        out["propertyOrdering"] = [n for n in out["propertyOrdering"] if n in out.get("properties", {})]
    return out


def function_declarations(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
        parameters = sanitize_schema(tool.input_schema)
        # Gemini rejects an OBJECT schema with no properties: a tool without inputs declares none.
        if parameters.get("properties"):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return declarations
