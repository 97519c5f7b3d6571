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

This module is the entry point: model access, each operation's anatomy, validation and the JSON
Schema. The walker that checks a value is ``contract_validation``; the translation to JSON Schema is
``contract_schema``. Both work on a model's shapes and know nothing of loading.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final

import botocore.loaders

from harness.contract_schema import draft4_schema
from harness.contract_validation import (
    FLOAT_TYPES,
    INTEGER_BOUNDS,
    Shape,
    Validator,
    compiled,
    string_messages,
)
from harness.errors import CannotParseError

CONTROL_SERVICE: Final = "bedrock-agentcore-control"
DATA_SERVICE: Final = "bedrock-agentcore"
SERVICES: Final = (CONTROL_SERVICE, DATA_SERVICE)

SERVICE_MODELS_DIR: Final = Path(__file__).resolve().parent / "service_models"
"""Where the deployment bundle carries ``<service-name>/service-2.json`` (not committed)."""

_GZIP_MAGIC: Final = b"\x1f\x8b"
_LOCATION_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "uri": "URI path",
    "querystring": "query string",
    "header": "header",
    "headers": "headers",
}
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")


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
    return compiled(shape["pattern"])


def satisfies(service: str, shape_name: str, value: str) -> bool:
    """Whether a string meets a string shape's constraints (enum, length, pattern)."""
    return not string_messages(_shape(service, shape_name), value)


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
    validator = Validator(service, _shapes(service))
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
    if kind in INTEGER_BOUNDS and _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    if kind in FLOAT_TYPES:
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
    validator = Validator(service, _shapes(service))

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


# --- JSON Schema for API Gateway request models ------------------------------------------------


def json_schema(service: str, shape_name: str, *, exclude: Collection[str] = frozenset()) -> dict[str, Any]:
    """A JSON Schema (draft-04, the only draft API Gateway supports) for the named shape.

    ``exclude`` drops top-level members -- an operation's URI/header/query members, which API
    Gateway never sees in the body. Shapes that recur (the model's recursive structures) live in
    ``definitions`` and are referenced with ``$ref``, so the output is finite.

    The schema is a first line of defence, never stricter than ``validate``: draft-04 cannot say
    everything (map key lengths, decoded blob lengths), and the Lambda-side check stays authoritative.
    """
    return draft4_schema(_shapes(service), shape_name, exclude=frozenset(exclude))
