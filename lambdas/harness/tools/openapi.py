"""OpenAPI 3.0 / 3.1 operations as tools, and a tool call as the HTTP request of its operation.

Each operation of the document becomes one tool. Its input schema is a JSON Schema object with
one property per path, query and header parameter (named as the parameter, with its schema,
description and ``required``) and a ``body`` property for a JSON request body. Parameter and
property names must therefore be unique within an operation; a document where they are not is
refused with an OpenApiError.

What is supported, and what is refused:

- ``$ref`` to this document (``#/components/...``) anywhere, JSON-pointer escaped; references to
  other files or URLs are refused. A recursive schema (a tree node that lists nodes) is expanded
  until it refers to itself, where it becomes an unconstrained schema saying so; a reference that
  only leads back to itself through other references is an error.
- OpenAPI 3.0 schema dialect is turned into JSON Schema: ``nullable`` becomes a ``"null"`` type,
  boolean ``exclusiveMinimum``/``exclusiveMaximum`` become numeric ones, and OpenAPI-only keywords
  (``discriminator``, ``xml``, ``externalDocs``, ``example``) are dropped.
- Request bodies: ``application/json`` or any ``+json`` media type. An operation whose body is
  optional and not JSON (a file upload, a form) is offered without a body; one whose body is
  *required* and not JSON is an error naming the operation, since no tool call could make it.
- Parameters use their default serialization: ``form`` with ``explode`` for query parameters
  (a list repeats the name), ``simple`` for path and header parameters (a list is comma-joined).
  ``cookie`` parameters are not sent; a required one is an error. ``Accept``, ``Content-Type``
  and ``Authorization`` header parameters are ignored, as the specification says (outbound
  authentication is the gateway target's, never the model's).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from harness.errors import ArgumentError, OpenApiError

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BODY_PROPERTY = "body"
_TOOL_NAME_INVALID = re.compile(r"[^a-zA-Z0-9_-]+")
_MAX_TOOL_NAME = 64
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}
_OPENAPI_ONLY_KEYWORDS = ("discriminator", "xml", "externalDocs", "example")
_PATH_TEMPLATE = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Operation:
    tool_name: str
    description: str
    input_schema: dict[str, Any]
    method: str  # upper case
    path: str  # the path template, e.g. /accounts/{accountId}
    parameters: tuple[tuple[str, str], ...]  # (name, location): location is path, query or header
    has_body: bool


@dataclass(frozen=True)
class PreparedRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def operations(document: Any) -> list[Operation]:
    """Every operation of an OpenAPI 3.x document, as tools (in document order)."""
    if not isinstance(document, dict):
        raise OpenApiError("the OpenAPI document must be a JSON object")
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise OpenApiError(f"openapi: expected a 3.x version, got {version!r} (Swagger 2.0 is not supported)")
    paths = document.get("paths")
    if not isinstance(paths, dict):
        raise OpenApiError("paths: missing, or not an object")
    resolver = _Resolver(document, dialect_30=version.startswith("3.0"))
    found: list[Operation] = []
    names: dict[str, str] = {}
    for path, item in paths.items():
        where = f"paths.{path}"
        if not isinstance(path, str) or not path.startswith("/"):
            raise OpenApiError(f"{where}: a path must start with '/'")
        item = resolver.deref(item, where)
        if not isinstance(item, dict):
            raise OpenApiError(f"{where}: must be an object")
        shared = _parameter_list(item.get("parameters"), f"{where}.parameters")
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = _operation(resolver, path, method, item[method], shared, f"{where}.{method}")
            if operation.tool_name in names:
                raise OpenApiError(
                    f"{where}.{method}: tool name {operation.tool_name!r} is also the name of "
                    f"{names[operation.tool_name]}; give the operations distinct operationIds"
                )
            names[operation.tool_name] = f"{where}.{method}"
            found.append(operation)
    return found


def base_url(document: Any) -> str | None:
    """``servers[0].url`` with its variables set to their defaults, without a trailing slash."""
    servers = document.get("servers") if isinstance(document, dict) else None
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return None
    url = servers[0].get("url")
    if not isinstance(url, str) or not url:
        return None
    variables = servers[0].get("variables") or {}
    for name, variable in variables.items() if isinstance(variables, dict) else ():
        if isinstance(variable, dict) and isinstance(variable.get("default"), str):
            url = url.replace("{" + name + "}", variable["default"])
    return url.rstrip("/") or None


def prepare(base_url: str, operation: Operation, arguments: dict[str, Any]) -> PreparedRequest:
    """The request a tool call makes: path parameters percent-encoded (a value can never add a
    path segment), query parameters form-encoded, header parameters, the body as JSON."""
    if not isinstance(arguments, dict):
        raise ArgumentError("the tool input must be a JSON object")
    path = operation.path
    query: list[tuple[str, str]] = []
    headers = {"Accept": "application/json"}
    for name, location in operation.parameters:
        value = arguments.get(name)
        if value is None:
            if location == "path":
                raise ArgumentError(f"path parameter {name!r} is required")
            continue
        if location == "path":
            text = _simple(value)
            if text in ("", ".", ".."):
                raise ArgumentError(f"path parameter {name!r} must not be empty, '.' or '..'")
            path = path.replace("{" + name + "}", quote(text, safe=""))
        elif location == "query":
            query.extend(_form(name, value))
        else:
            text = _simple(value)
            if "\r" in text or "\n" in text:
                raise ArgumentError(f"header parameter {name!r} must not contain line breaks")
            headers[name] = text
    body = None
    if operation.has_body and arguments.get(BODY_PROPERTY) is not None:
        body = json.dumps(arguments[BODY_PROPERTY], ensure_ascii=False, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    scheme, netloc, base_path, base_query, _ = urlsplit(base_url)
    encoded_query = "&".join(q for q in (base_query, urlencode(query)) if q)
    url = urlunsplit((scheme, netloc, base_path.rstrip("/") + path, encoded_query, ""))
    return PreparedRequest(operation.method, url, headers, body)


# -- reading the document ---------------------------------------------------------------------------


def _operation(
    resolver: _Resolver,
    path: str,
    method: str,
    raw: Any,
    shared: list[Any],
    where: str,
) -> Operation:
    raw = resolver.deref(raw, where)
    if not isinstance(raw, dict):
        raise OpenApiError(f"{where}: must be an object")
    operation_id = raw.get("operationId")
    if operation_id is not None and not isinstance(operation_id, str):
        raise OpenApiError(f"{where}.operationId: must be a string")
    tool_name = _tool_name(operation_id or f"{method}_{_TOOL_NAME_INVALID.sub('_', path).strip('_')}", where)
    properties: dict[str, Any] = {}
    required: list[str] = []
    parameters: list[tuple[str, str]] = []
    declared = _parameters(resolver, shared, raw.get("parameters"), where)
    for name, location, parameter_schema, is_required in declared:
        if location == "path" and "{" + name + "}" not in path:
            raise OpenApiError(f"{where}: path parameter {name!r} does not appear in the path {path}")
        if name in properties:
            raise OpenApiError(f"{where}: two parameters are named {name!r}; tool inputs need unique names")
        properties[name] = parameter_schema
        parameters.append((name, location))
        if is_required:
            required.append(name)
    for name in _PATH_TEMPLATE.findall(path):
        if (name, "path") not in parameters:
            raise OpenApiError(f"{where}: the path names {{{name}}} but no path parameter defines it")
    has_body = False
    if raw.get("requestBody") is not None:
        body = _json_body(resolver, raw["requestBody"], f"{where}.requestBody")
        if body is not None:
            body_schema, body_required = body
            if BODY_PROPERTY in properties:
                raise OpenApiError(
                    f"{where}: a parameter is named {BODY_PROPERTY!r}, which is the request body's input"
                )
            properties[BODY_PROPERTY] = body_schema
            has_body = True
            if body_required:
                required.append(BODY_PROPERTY)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return Operation(
        tool_name=tool_name,
        description=_description(raw, method, path),
        input_schema=schema,
        method=method.upper(),
        path=path,
        parameters=tuple(parameters),
        has_body=has_body,
    )


def _tool_name(raw: str, where: str) -> str:
    name = _TOOL_NAME_INVALID.sub("_", raw).strip("_")[:_MAX_TOOL_NAME]
    if not name:
        raise OpenApiError(f"{where}: operationId {raw!r} leaves no usable tool name")
    return name


def _description(raw: dict[str, Any], method: str, path: str) -> str:
    candidates = (raw.get("summary"), raw.get("description"))
    texts = [t.strip() for t in candidates if isinstance(t, str) and t.strip()]
    if len(texts) == 2 and texts[1].startswith(texts[0]):
        texts = texts[1:]
    return "\n\n".join(texts) or f"{method.upper()} {path}"


def _parameter_list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise OpenApiError(f"{where}: must be a list")
    return raw


def _parameters(
    resolver: _Resolver, shared: list[Any], own: Any, where: str
) -> list[tuple[str, str, dict[str, Any], bool]]:
    """(name, location, property schema, required) of the operation's parameters; an operation's
    own parameter replaces a path-level one of the same name and location."""
    merged: dict[tuple[str, str], tuple[str, str, dict[str, Any], bool]] = {}
    for index, raw in [*enumerate(shared), *enumerate(_parameter_list(own, f"{where}.parameters"))]:
        place = f"{where}.parameters[{index}]"
        parameter = resolver.deref(raw, place)
        if not isinstance(parameter, dict):
            raise OpenApiError(f"{place}: must be an object")
        name, location = parameter.get("name"), parameter.get("in")
        if not isinstance(name, str) or not name:
            raise OpenApiError(f"{place}: needs a 'name'")
        if location not in ("path", "query", "header", "cookie"):
            raise OpenApiError(f"{place} ({name}): 'in' must be path, query, header or cookie")
        is_required = parameter.get("required") is True or location == "path"
        if location == "cookie":
            if is_required:
                raise OpenApiError(f"{place} ({name}): required cookie parameters are not supported")
            continue
        if location == "header" and name.lower() in _IGNORED_HEADERS:
            continue
        schema = _parameter_schema(resolver, parameter, place)
        description = parameter.get("description")
        if isinstance(description, str) and description.strip():
            schema["description"] = description.strip()
        merged[(name, location)] = (name, location, schema, is_required)
    return list(merged.values())


def _parameter_schema(resolver: _Resolver, parameter: dict[str, Any], where: str) -> dict[str, Any]:
    if "schema" in parameter:
        schema = resolver.schema(parameter["schema"], f"{where}.schema")
    elif isinstance(parameter.get("content"), dict) and parameter["content"]:
        media = next(iter(parameter["content"].values()))
        media = resolver.deref(media, f"{where}.content")
        raw = media.get("schema", {}) if isinstance(media, dict) else {}
        schema = resolver.schema(raw, f"{where}.content.schema")
    else:
        schema = {}
    if not isinstance(schema, dict):
        raise OpenApiError(f"{where}.schema: must be an object")
    return schema


def _json_body(resolver: _Resolver, raw: Any, where: str) -> tuple[dict[str, Any], bool] | None:
    """(schema, required) of a JSON request body; None for an optional body of another type."""
    body = resolver.deref(raw, where)
    if not isinstance(body, dict):
        raise OpenApiError(f"{where}: must be an object")
    content = body.get("content")
    if not isinstance(content, dict) or not content:
        raise OpenApiError(f"{where}: needs 'content' with at least one media type")
    required = body.get("required") is True
    json_types = [media for media in content if _is_json(media)]
    if not json_types:
        if required:
            raise OpenApiError(
                f"{where}: the required body is {', '.join(content)}; only JSON bodies can be sent by a tool"
            )
        return None
    media = resolver.deref(content[json_types[0]], f"{where}.content")
    raw_schema = media.get("schema", {}) if isinstance(media, dict) else {}
    schema = resolver.schema(raw_schema, f"{where}.content.{json_types[0]}.schema")
    description = body.get("description")
    if isinstance(description, str) and description.strip() and "description" not in schema:
        schema["description"] = description.strip()
    return schema, required


def _is_json(media_type: str) -> bool:
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json")


class _Resolver:
    """Local ``$ref`` resolution, and OpenAPI 3.0 schemas as JSON Schema."""

    def __init__(self, document: dict[str, Any], dialect_30: bool) -> None:
        self._document = document
        self._dialect_30 = dialect_30

    def deref(self, node: Any, where: str) -> Any:
        """The object a (chain of) ``$ref`` names; the node itself when it is no reference."""
        seen: list[str] = []
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise OpenApiError(f"{where}: circular $ref {' -> '.join([*seen, ref])}")
            seen.append(ref)
            node = self._target(ref, where)
        return node

    def schema(self, node: Any, where: str) -> dict[str, Any]:
        converted = self._schema(node, where, ())
        if not isinstance(converted, dict):
            raise OpenApiError(f"{where}: a schema must be an object")
        return converted

    def _schema(self, node: Any, where: str, expanding: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self._schema(item, f"{where}[{i}]", expanding) for i, item in enumerate(node)]
        if not isinstance(node, dict):
            return copy.deepcopy(node)
        if "$ref" in node:
            ref = node["$ref"]
            if ref in expanding:
                # A recursive schema: expanded once, then left open rather than inlined forever.
                return {"description": f"(recursive: another {ref.rsplit('/', 1)[-1]}; not expanded here)"}
            target = self.deref(node, where)
            return self._schema(target, where, (*expanding, ref))
        converted: dict[str, Any] = {}
        for key, value in node.items():
            if key in _OPENAPI_ONLY_KEYWORDS or key.startswith("x-"):
                continue
            if key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(value, dict):
                converted[key] = {
                    name: self._schema(sub, f"{where}.{key}.{name}", expanding) for name, sub in value.items()
                }
            elif key == "enum" or key == "const" or key == "default" or key == "examples":
                converted[key] = copy.deepcopy(value)
            else:
                converted[key] = self._schema(value, f"{where}.{key}", expanding)
        if self._dialect_30:
            _json_schema_from_30(converted)
        return converted

    def _target(self, ref: Any, where: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise OpenApiError(f"{where}: $ref {ref!r} is not supported (only '#/...', this document)")
        node: Any = self._document
        for raw in ref[2:].split("/"):
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise OpenApiError(f"{where}: $ref {ref} names nothing in the document")
        return node


def _json_schema_from_30(schema: dict[str, Any]) -> None:
    """OpenAPI 3.0's schema dialect, rewritten in place as JSON Schema (draft 2020-12)."""
    if schema.pop("nullable", False) is True:
        kind = schema.get("type")
        if isinstance(kind, str):
            schema["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            schema["type"] = [*kind, "null"]
        if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = schema.get(exclusive)
        if isinstance(flag, bool):
            del schema[exclusive]
            if flag and bound in schema:
                schema[exclusive] = schema.pop(bound)


# -- serializing arguments ---------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _simple(value: Any) -> str:
    """``style: simple``: a list comma-joined, an object as ``key,value,key,value``."""
    if isinstance(value, list):
        return ",".join(_scalar(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{_scalar(k)},{_scalar(v)}" for k, v in value.items())
    return _scalar(value)


def _form(name: str, value: Any) -> list[tuple[str, str]]:
    """``style: form, explode: true``: a list repeats the name, an object gives one pair per key."""
    if isinstance(value, list):
        return [(name, _scalar(item)) for item in value if item is not None]
    if isinstance(value, dict):
        return [(str(key), _scalar(item)) for key, item in value.items() if item is not None]
    return [(name, _scalar(value))]
