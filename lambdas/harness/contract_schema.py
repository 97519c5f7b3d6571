"""JSON Schema (draft-04) for API Gateway request models, translated from a service model's shapes.

``contract.json_schema`` is the entry point. The schema mirrors ``contract_validation``: a first line
of defence at the gateway, never stricter than the Lambda-side check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from harness.contract_validation import FLOAT_TYPES, INTEGER_BOUNDS, Shape, is_document, is_union

_DRAFT4: Final = "http://json-schema.org/draft-04/schema#"


def draft4_schema(
    shapes: Mapping[str, Shape], shape_name: str, *, exclude: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The schema document of the named shape, top-level members in ``exclude`` left out; shapes
    that recur (the model's recursive structures) go to ``definitions`` and are referenced with
    ``$ref``, so the output is finite."""
    builder = _SchemaBuilder(shapes, _recursive_shapes(shapes, shape_name))
    root = builder.schema(shape_name, exclude=exclude)
    document: dict[str, Any] = {"$schema": _DRAFT4, "title": shape_name, **root}
    if builder.definitions:
        document["definitions"] = dict(sorted(builder.definitions.items()))
    return document


def _children(shape: Shape) -> list[str]:
    children = [shape[key]["shape"] for key in ("member", "key", "value") if key in shape]
    children.extend(member["shape"] for member in shape.get("members", {}).values())
    return children


def _recursive_shapes(shapes: Mapping[str, Shape], root: str) -> frozenset[str]:
    """Shapes reachable from ``root`` that can reach themselves again."""
    reachable: list[str] = []
    pending = [root]
    while pending:
        name = pending.pop()
        if name not in reachable:
            reachable.append(name)
            pending.extend(_children(shapes[name]))
    recursive = set()
    for name in reachable:
        seen: set[str] = set()
        pending = _children(shapes[name])
        while pending:
            child = pending.pop()
            if child == name:
                recursive.add(name)
                break
            if child not in seen:
                seen.add(child)
                pending.extend(_children(shapes[child]))
    return frozenset(recursive)


class _SchemaBuilder:
    def __init__(self, shapes: Mapping[str, Shape], recursive: frozenset[str]) -> None:
        self._shapes = shapes
        self._recursive = recursive
        self.definitions: dict[str, dict[str, Any]] = {}

    def reference(self, shape_name: str) -> dict[str, Any]:
        if shape_name not in self._recursive:
            return self.schema(shape_name)
        if shape_name not in self.definitions:
            self.definitions[shape_name] = {}  # placeholder first, so recursion stops here
            self.definitions[shape_name] = self.schema(shape_name)
        return {"$ref": f"#/definitions/{shape_name}"}

    def schema(self, shape_name: str, *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        shape = self._shapes[shape_name]
        if is_document(shape):
            return {}
        kind = shape["type"]
        if kind == "structure":
            return self._structure(shape, exclude)
        if kind == "list":
            schema: dict[str, Any] = {"type": "array", "items": self.reference(shape["member"]["shape"])}
            _put(schema, "minItems", shape.get("min"))
            _put(schema, "maxItems", shape.get("max"))
            return schema
        if kind == "map":
            return self._map(shape)
        if kind == "string":
            return _string_schema(shape)
        if kind in INTEGER_BOUNDS:
            low, high = INTEGER_BOUNDS[kind]
            return {"type": "integer", "minimum": shape.get("min", low), "maximum": shape.get("max", high)}
        if kind in FLOAT_TYPES:
            schema = {"type": "number"}
            _put(schema, "minimum", shape.get("min"))
            _put(schema, "maximum", shape.get("max"))
            return schema
        if kind == "boolean":
            return {"type": "boolean"}
        if kind == "timestamp":
            return {"type": ["string", "number"]}
        if kind == "blob":
            # Canonical, padded base64 -- what base64.b64decode(validate=True) accepts.
            return {
                "type": "string",
                "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
            }
        raise ValueError(f"shape {shape_name!r} has unsupported type {kind!r}")

    def _structure(self, shape: Shape, exclude: frozenset[str]) -> dict[str, Any]:
        members = {name: m for name, m in shape.get("members", {}).items() if name not in exclude}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: self.reference(m["shape"]) for name, m in members.items()},
            "additionalProperties": False,
        }
        required = [name for name in shape.get("required", []) if name in members]
        if required:  # draft-04 forbids an empty "required"
            schema["required"] = required
        if is_union(shape):
            schema["minProperties"] = 1
            schema["maxProperties"] = 1
        return schema

    def _map(self, shape: Shape) -> dict[str, Any]:
        value_schema = self.reference(shape["value"]["shape"])
        schema: dict[str, Any] = {"type": "object"}
        key_pattern = self._shapes[shape["key"]["shape"]].get("pattern")
        if key_pattern:
            # draft-04 has no propertyNames; a single anchored patternProperties entry plus
            # additionalProperties false is how it constrains keys.
            schema["patternProperties"] = {_anchored(key_pattern): value_schema}
            schema["additionalProperties"] = False
        else:
            schema["additionalProperties"] = value_schema
        _put(schema, "minProperties", shape.get("min"))
        _put(schema, "maxProperties", shape.get("max"))
        return schema


# Java's \d, \w and \s are ASCII-only; a JSON Schema validator's may be Unicode-aware. Spell them
# out so the API Gateway model accepts exactly what ``validate`` accepts.
_ASCII_CLASSES = {"d": "0-9", "w": "A-Za-z0-9_", "s": " \\t\\n\\x0b\\f\\r"}


def _ascii_shorthands(pattern: str) -> str:
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            members = _ASCII_CLASSES.get(escaped.lower())
            if members and not in_class:
                out.append(f"[{'^' if escaped.isupper() else ''}{members}]")
            elif members and escaped.islower():
                out.append(members)
            else:
                out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


def _anchored(pattern: str) -> str:
    # JSON Schema patterns match anywhere; AWS patterns describe the whole value.
    return f"^(?:{_ascii_shorthands(pattern)})$"


def _string_schema(shape: Shape) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if "enum" in shape:
        schema["enum"] = list(shape["enum"])
    _put(schema, "minLength", shape.get("min"))
    _put(schema, "maxLength", shape.get("max"))
    if "pattern" in shape:
        schema["pattern"] = _anchored(shape["pattern"])
    return schema


def _put(schema: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        schema[key] = value
