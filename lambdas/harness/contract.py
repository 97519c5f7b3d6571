"""The API contract, read from botocore's service models instead of being retyped.

The harness speaks the wire format of ``bedrock-agentcore-control`` (CreateHarness, GetHarness,
UpdateHarness, DeleteHarness, ListHarnesses, ListHarnessVersions) and ``bedrock-agentcore``
(InvokeHarness). Every constraint we enforce -- required members, lengths, patterns, enums, ranges,
unions -- comes from those models as data, so a model update is picked up by re-bundling, not by
editing code.

Loading: the Lambda runtime's own botocore may predate these operations, so the deployment bundles
the two ``service-2.json`` files under ``SERVICE_MODELS_DIR`` (a build step: see
``bundled_model_files``). Outside a bundle (tests, the local runtime) the installed botocore is used.

Validation deliberately diverges from a lenient JSON deserializer in two ways: unknown members and
explicit ``null`` members are rejected, so the API Gateway request model produced by
``json_schema`` and the Lambda-side ``validate`` accept the same documents.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import json
import math
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import botocore.loaders

from harness.errors import CannotParseError, FieldProblem, ValidationError

CONTROL_SERVICE: Final = "bedrock-agentcore-control"
DATA_SERVICE: Final = "bedrock-agentcore"
SERVICES: Final = (CONTROL_SERVICE, DATA_SERVICE)

SERVICE_MODELS_DIR: Final = Path(__file__).resolve().parent / "service_models"
"""Where the deployment bundle carries ``<service-name>/service-2.json`` (not committed)."""

MAX_DEPTH: Final = 64
"""Deepest nesting of JSON objects/arrays accepted; deeper input is a ValidationError, never a
RecursionError (documents such as a tool's ``inputSchema`` are otherwise unbounded)."""

MAX_REPORTED_PROBLEMS: Final = 100
"""Problems listed in ``fieldList``. The count in the message is always the true total; the cap
keeps a pathological body (thousands of bad list items) from producing a larger error response."""

_SUMMARISED_PROBLEMS: Final = 10
_DRAFT4: Final = "http://json-schema.org/draft-04/schema#"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ROOT_NAME: Final = "$"

# Implicit ranges of the numeric shape types, for when the model sets no min/max.
_INTEGER_BOUNDS: Final[Mapping[str, tuple[int, int]]] = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
_FLOAT_TYPES: Final = frozenset({"float", "double"})
_LOCATION_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "uri": "URI path",
    "querystring": "query string",
    "header": "header",
    "headers": "headers",
}
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")

Shape = Mapping[str, Any]


# --- loading -----------------------------------------------------------------------------------


@functools.cache
def service_model(service: str) -> Mapping[str, Any]:
    """The raw JSON service model (``service-2``) of ``service``: bundled copy first, else botocore.

    Cached and shared by every caller: read it, never mutate it.
    """
    bundled = _read_bundled_model(service)
    if bundled is not None:
        return bundled
    model: Mapping[str, Any] = botocore.loaders.Loader().load_service_model(service, "service-2")
    return model


def _read_bundled_model(service: str) -> Mapping[str, Any] | None:
    for name in ("service-2.json", "service-2.json.gz"):
        path = SERVICE_MODELS_DIR / service / name
        if path.is_file():
            raw = path.read_bytes()
            # botocore ships its models gzip-compressed; a bundling step that copied the .json.gz
            # verbatim under the .json name must still load.
            if raw[:2] == _GZIP_MAGIC:
                raw = gzip.decompress(raw)
            model: Mapping[str, Any] = json.loads(raw)
            return model
    return None


def bundled_model_files() -> dict[str, Path]:
    """Source file of each service's ``service-2`` model in the installed botocore, by service name.

    The CDK bundling step copies each to ``SERVICE_MODELS_DIR / <service> /``. The source may be
    gzip-compressed (``service-2.json.gz``); the loader accepts that file under either name.
    """
    loader = botocore.loaders.Loader()
    files: dict[str, Path] = {}
    for service in SERVICES:
        version = loader.determine_latest_version(service, "service-2")
        candidates = [
            Path(root) / service / version / f"service-2{suffix}"
            for root in loader.search_paths
            for suffix in (".json", ".json.gz")
        ]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"botocore has no service-2 model file for {service} {version}")
        files[service] = found
    return files


def _shapes(service: str) -> Mapping[str, Shape]:
    shapes: Mapping[str, Shape] = service_model(service)["shapes"]
    return shapes


def _shape(service: str, shape_name: str) -> Shape:
    try:
        return _shapes(service)[shape_name]
    except KeyError:
        raise ValueError(f"{service} has no shape named {shape_name!r}") from None


def input_shape_name(service: str, operation: str) -> str:
    """Name of the input structure of ``operation`` (e.g. ``CreateHarnessRequest``)."""
    try:
        op = service_model(service)["operations"][operation]
    except KeyError:
        raise ValueError(f"{service} has no operation named {operation!r}") from None
    name: str = op["input"]["shape"]
    if "payload" in _shape(service, name):
        # A payload member makes the body one member's raw value; none of the harness operations
        # have one, and validating them as a JSON object would be wrong.
        raise ValueError(f"{service}.{operation} has an HTTP payload member, which is not supported")
    return name


def _is_document(shape: Shape) -> bool:
    return bool(shape.get("document"))


def _is_union(shape: Shape) -> bool:
    return bool(shape.get("union"))


def _is_exception(shape: Shape) -> bool:
    return bool(shape.get("exception") or shape.get("error"))


# --- operation anatomy -------------------------------------------------------------------------


def location_members(service: str, operation: str) -> dict[str, tuple[str, str]]:
    """Input members carried outside the JSON body: member name -> (location, wire name).

    For example ``{"harnessArn": ("querystring", "harnessArn"), "runtimeSessionId": ("header",
    "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id")}``.
    """
    members = _shape(service, input_shape_name(service, operation)).get("members", {})
    return {
        name: (member["location"], member.get("locationName", name))
        for name, member in members.items()
        if "location" in member
    }


def header_name(service: str, operation: str, member: str) -> str:
    """The HTTP header that carries input member ``member`` of ``operation``: for example
    ``header_name(DATA_SERVICE, "InvokeHarness", "runtimeSessionId")`` is
    ``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id``."""
    location, wire_name = location_members(service, operation).get(member, ("", ""))
    if location != "header":
        raise ValueError(f"{service}.{operation} has no header member named {member!r}")
    return wire_name


def pattern(service: str, shape_name: str) -> re.Pattern[str]:
    """The pattern of a string shape (``HarnessArn``, ``HarnessId``...), compiled as ``validate``
    applies it: use ``fullmatch``; ``\\d``, ``\\w`` and ``\\s`` are ASCII-only, as in Java."""
    shape = _shape(service, shape_name)
    if "pattern" not in shape:
        raise ValueError(f"{service} shape {shape_name!r} has no pattern")
    return _compiled(shape["pattern"])


def satisfies(service: str, shape_name: str, value: str) -> bool:
    """Whether a string meets a string shape's constraints (enum, length, pattern)."""
    return not _string_messages(_shape(service, shape_name), value)


@functools.cache
def stream_event_names(service: str, stream_shape: str) -> frozenset[str]:
    """Every event name (member) of an event-stream union such as ``InvokeHarnessStreamOutput``."""
    shape = _shape(service, stream_shape)
    if not shape.get("eventstream"):
        raise ValueError(f"{service} shape {stream_shape!r} is not an event stream")
    return frozenset(shape.get("members", {}))


@functools.cache
def stream_exception_names(service: str, stream_shape: str) -> frozenset[str]:
    """Event names of an event stream whose shape is an error, sent as ``:message-type`` exception."""
    members = _shape(service, stream_shape).get("members", {})
    return frozenset(
        name
        for name in stream_event_names(service, stream_shape)
        if _is_exception(_shape(service, members[name]["shape"]))
    )


# --- validation --------------------------------------------------------------------------------


def validate(service: str, shape_name: str, value: object, *, path: str = "") -> None:
    """Check ``value`` against the named shape; raise one ValidationError listing every problem.

    ``path`` prefixes the reported field names (``"tools[0].config"`` style). For an operation's
    input use ``validate_request``, which knows which members travel outside the body.
    """
    _shape(service, shape_name)  # an unknown name is the caller's bug: ValueError, not KeyError
    validator = _Validator(service)
    validator.check(shape_name, value, path, depth=0)
    validator.raise_if_invalid()


def coerce_params(service: str, operation: str, params: Mapping[str, object]) -> dict[str, object]:
    """URI/header/query values (strings on the wire) converted to their members' types.

    ``"10"`` becomes ``10`` for an integer member and ``"true"`` becomes ``True`` for a boolean one.
    Values that do not convert are returned unchanged, so validation reports them against the type.
    """
    members = _shape(service, input_shape_name(service, operation)).get("members", {})
    coerced: dict[str, object] = {}
    for name, value in params.items():
        member = members.get(name)
        coerced[name] = (
            _coerce_text(_shape(service, member["shape"]), value)
            if member is not None and isinstance(value, str)
            else value
        )
    return coerced


def _coerce_text(shape: Shape, text: str) -> object:
    kind = shape["type"]
    if kind in _INTEGER_BOUNDS and _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    if kind in _FLOAT_TYPES:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def validate_request(
    service: str, operation: str, body: Mapping[str, object], params: Mapping[str, object]
) -> None:
    """Validate an operation's input: ``body`` is the parsed JSON body, ``params`` the URI, header
    and query string members keyed by member name (wire strings are coerced, see ``coerce_params``).

    Body members that belong in the URI/headers/query string are rejected, as are unknown members
    in either place; required members are checked across both. All problems in one ValidationError.
    """
    if not isinstance(body, Mapping):
        raise CannotParseError("The request body must be a JSON object.")
    input_shape = _shape(service, input_shape_name(service, operation))
    members: Mapping[str, Any] = input_shape.get("members", {})
    locations = location_members(service, operation)
    coerced = coerce_params(service, operation, params)
    validator = _Validator(service)

    for name, value in body.items():
        if name in locations:
            where = _LOCATION_DESCRIPTIONS.get(locations[name][0], locations[name][0])
            wire_name = locations[name][1]
            validator.problem(name, f"Member must be sent in the {where} as '{wire_name}', not in the body")
        elif name not in members:
            validator.problem(name, "Member is an unknown field")
        else:
            # The body object itself is the first level of nesting.
            validator.check(members[name]["shape"], value, name, depth=1)

    for name, value in coerced.items():
        if name not in locations:
            validator.problem(name, "Member is an unknown field for the URI, headers or query string")
        else:
            validator.check(members[name]["shape"], value, name, depth=0)

    for name in input_shape.get("required", []):
        # A member only counts as sent in its own place: a misplaced harnessId in the body does not
        # stand in for the one the URI lacks.
        if name not in (coerced if name in locations else body):
            validator.problem(name, "Member must not be null")
    validator.raise_if_invalid()


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # AWS patterns are Java regular expressions, whose \d, \w and \s are ASCII-only.
    return re.compile(pattern, re.ASCII)


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _length_messages(shape: Shape, length: int) -> list[str]:
    messages = []
    if "min" in shape and length < shape["min"]:
        messages.append(f"Member must have length greater than or equal to {shape['min']}")
    if "max" in shape and length > shape["max"]:
        messages.append(f"Member must have length less than or equal to {shape['max']}")
    return messages


def _string_messages(shape: Shape, value: str) -> list[str]:
    messages = []
    if "enum" in shape and value not in shape["enum"]:
        messages.append(f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]")
    length_messages = _length_messages(shape, len(value))
    messages.extend(length_messages)
    # A value already out of its length bounds skips the pattern: the length verdict suffices, and
    # it keeps an oversized value from being fed to a backtracking pattern.
    if "pattern" in shape and not length_messages and not _compiled(shape["pattern"]).fullmatch(value):
        messages.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
    return messages


def _range_messages(low: float | None, high: float | None, value: float) -> list[str]:
    messages = []
    if low is not None and value < low:
        messages.append(f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        messages.append(f"Member must have value less than or equal to {high}")
    return messages


class _Validator:
    """Walks one value against the shapes of one service, collecting every problem."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._shapes = _shapes(service)
        self.problems: list[FieldProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(FieldProblem(name=path or _ROOT_NAME, message=message))

    def raise_if_invalid(self) -> None:
        if not self.problems:
            return
        total = len(self.problems)
        listed = "; ".join(
            f"Value at '{p.name}' failed to satisfy constraint: {p.message}"
            for p in self.problems[:_SUMMARISED_PROBLEMS]
        )
        more = f"; and {total - _SUMMARISED_PROBLEMS} more" if total > _SUMMARISED_PROBLEMS else ""
        noun = "error" if total == 1 else "errors"
        raise ValidationError(
            f"{total} validation {noun} detected: {listed}{more}",
            fields=self.problems[:MAX_REPORTED_PROBLEMS],
        )

    def _enter(self, path: str, depth: int) -> bool:
        """Whether a container at ``depth`` levels of nesting may be descended into."""
        if depth + 1 > MAX_DEPTH:
            self.problem(path, f"Member must not be nested more than {MAX_DEPTH} levels deep")
            return False
        return True

    def check(self, shape_name: str, value: object, path: str, depth: int) -> None:
        shape = self._shapes[shape_name]
        if value is None:
            self.problem(path, "Member must not be null")
            return
        if _is_document(shape):
            self._check_document(value, path, depth)
            return
        kind = shape["type"]
        if kind == "structure":
            self._check_structure(shape, value, path, depth)
        elif kind == "list":
            self._check_list(shape, value, path, depth)
        elif kind == "map":
            self._check_map(shape, value, path, depth)
        elif kind == "string":
            if isinstance(value, str):
                for message in _string_messages(shape, value):
                    self.problem(path, message)
            else:
                self.problem(path, "Member must be a string")
        elif kind in _INTEGER_BOUNDS:
            self._check_integer(shape, value, path)
        elif kind in _FLOAT_TYPES:
            self._check_float(shape, value, path)
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.problem(path, "Member must be a boolean")
        elif kind == "timestamp":
            self._check_timestamp(value, path)
        elif kind == "blob":
            self._check_blob(shape, value, path)
        else:
            raise ValueError(f"{self._service} shape {shape_name!r} has unsupported type {kind!r}")

    def _check_structure(self, shape: Shape, value: object, path: str, depth: int) -> None:
        if not isinstance(value, Mapping):
            self.problem(path, "Member must be an object")
            return
        if not self._enter(path, depth):
            return
        members: Mapping[str, Any] = shape.get("members", {})
        for name, member_value in value.items():
            member_path = _join(path, str(name))
            if name in members:
                self.check(members[name]["shape"], member_value, member_path, depth + 1)
            else:
                self.problem(member_path, "Member is an unknown field")
        for name in shape.get("required", []):
            if name not in value:
                self.problem(_join(path, name), "Member must not be null")
        if _is_union(shape):
            present = [name for name in value if name in members]
            if len(present) != 1:
                self.problem(
                    path,
                    f"Member must have exactly one of [{', '.join(members)}] set, found {len(present)}",
                )

    def _check_list(self, shape: Shape, value: object, path: str, depth: int) -> None:
        if not isinstance(value, list):
            self.problem(path, "Member must be a list")
            return
        if not self._enter(path, depth):
            return
        for message in _length_messages(shape, len(value)):
            self.problem(path, message)
        member_shape = shape["member"]["shape"]
        for index, item in enumerate(value):
            self.check(member_shape, item, f"{path}[{index}]", depth + 1)

    def _check_map(self, shape: Shape, value: object, path: str, depth: int) -> None:
        if not isinstance(value, Mapping):
            self.problem(path, "Member must be an object (a map)")
            return
        if not self._enter(path, depth):
            return
        for message in _length_messages(shape, len(value)):
            self.problem(path, message)
        key_shape = self._shapes[shape["key"]["shape"]]
        value_shape = shape["value"]["shape"]
        key_messages: set[str] = set()
        for key, item in value.items():
            if isinstance(key, str):
                key_messages.update(_string_messages(key_shape, key))
            else:
                key_messages.add("Member must be a string")
            self.check(value_shape, item, _join(path, str(key)), depth + 1)
        # Keys are reported once per distinct problem, without echoing them: a sensitive map's
        # keys should not travel into logs of the error.
        for message in sorted(key_messages):
            self.problem(path, f"Map keys must satisfy constraint: {message}")

    def _check_integer(self, shape: Shape, value: object, path: str) -> None:
        # bool is a subclass of int in Python, but JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, "Member must be an integer")
            return
        low, high = _INTEGER_BOUNDS[shape["type"]]
        for message in _range_messages(shape.get("min", low), shape.get("max", high), value):
            self.problem(path, message)

    def _check_float(self, shape: Shape, value: object, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, "Member must be a number")
            return
        if not math.isfinite(value):
            self.problem(path, "Member must be a finite number")
            return
        for message in _range_messages(shape.get("min"), shape.get("max"), value):
            self.problem(path, message)

    def _check_timestamp(self, value: object, path: str) -> None:
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                self.problem(path, "Member must be an ISO-8601 timestamp")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.problem(path, "Member must be an ISO-8601 timestamp string or epoch seconds")

    def _check_blob(self, shape: Shape, value: object, path: str) -> None:
        if not isinstance(value, str):
            self.problem(path, "Member must be a base64-encoded string")
            return
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.problem(path, "Member must be a base64-encoded string")
            return
        # A blob's length constraints are on the bytes, not on their base64 text.
        for message in _length_messages(shape, len(decoded)):
            self.problem(path, message)

    def _check_document(self, value: object, path: str, depth: int) -> None:
        if value is None or isinstance(value, str | bool | int):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                self.problem(path, "Member must be a finite number")
            return
        if isinstance(value, list):
            if self._enter(path, depth):
                for index, item in enumerate(value):
                    self._check_document(item, f"{path}[{index}]", depth + 1)
            return
        if isinstance(value, Mapping):
            if self._enter(path, depth):
                for key, item in value.items():
                    if not isinstance(key, str):
                        self.problem(path, "Member must have string keys")
                    self._check_document(item, _join(path, str(key)), depth + 1)
            return
        self.problem(path, "Member must be a JSON value")


# --- JSON Schema for API Gateway request models ------------------------------------------------


def json_schema(service: str, shape_name: str, *, exclude: Collection[str] = frozenset()) -> dict[str, Any]:
    """A JSON Schema (draft-04, the only draft API Gateway supports) for the named shape.

    ``exclude`` drops top-level members -- an operation's URI/header/query members, which API
    Gateway never sees in the body. Shapes that recur (the model's recursive structures) live in
    ``definitions`` and are referenced with ``$ref``, so the output is finite.

    The schema is a first line of defence, never stricter than ``validate``: draft-04 cannot say
    everything (map key lengths, decoded blob lengths), and the Lambda-side check stays authoritative.
    """
    builder = _SchemaBuilder(_shapes(service), _recursive_shapes(service, shape_name))
    root = builder.schema(shape_name, exclude=frozenset(exclude))
    document: dict[str, Any] = {"$schema": _DRAFT4, "title": shape_name, **root}
    if builder.definitions:
        document["definitions"] = dict(sorted(builder.definitions.items()))
    return document


def _children(shape: Shape) -> list[str]:
    children = [shape[key]["shape"] for key in ("member", "key", "value") if key in shape]
    children.extend(member["shape"] for member in shape.get("members", {}).values())
    return children


def _recursive_shapes(service: str, root: str) -> frozenset[str]:
    """Shapes reachable from ``root`` that can reach themselves again."""
    shapes = _shapes(service)
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
        if _is_document(shape):
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
        if kind in _INTEGER_BOUNDS:
            low, high = _INTEGER_BOUNDS[kind]
            return {"type": "integer", "minimum": shape.get("min", low), "maximum": shape.get("max", high)}
        if kind in _FLOAT_TYPES:
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
        if _is_union(shape):
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
