"""OpenAPI documents as tools, and tool arguments as HTTP requests (harness.tools.openapi)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from jsonschema import Draft202012Validator

from harness.tools.openapi import (
    ArgumentError,
    OpenApiError,
    Operation,
    base_url,
    operations,
    prepare,
)
from local_runtime import demo_bank


def document(paths: dict[str, Any], components: dict[str, Any] | None = None, version: str = "3.1.0") -> dict:
    doc: dict[str, Any] = {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths}
    if components is not None:
        doc["components"] = components
    return doc


def only(doc: dict[str, Any]) -> Operation:
    (operation,) = operations(doc)
    return operation


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


# -- the demo bank's document ------------------------------------------------------------------------


def test_the_demo_bank_document_gives_its_three_operations() -> None:
    ops = {op.tool_name: op for op in operations(demo_bank.openapi_document())}
    assert set(ops) == {"listAccounts", "getBalance", "createTransfer"}
    balance = ops["getBalance"]
    assert (balance.method, balance.path, balance.parameters, balance.has_body) == (
        "GET",
        "/accounts/{accountId}/balance",
        (("accountId", "path"),),
        False,
    )
    assert balance.input_schema["required"] == ["accountId"]
    assert balance.input_schema["properties"]["accountId"]["pattern"] == "^acc-[0-9]{3}$"
    transfer = ops["createTransfer"]
    assert transfer.has_body and transfer.input_schema["required"] == ["body"]
    body = transfer.input_schema["properties"]["body"]
    assert body["required"] == ["fromAccount", "toAccount", "amount", "currency"]
    assert body["properties"]["currency"] == {"type": "string", "pattern": "^[A-Z]{3}$"}  # $ref resolved
    assert "Idempotency-Key" in transfer.description


def test_every_input_schema_is_a_valid_json_schema_that_accepts_good_arguments() -> None:
    ops = {op.tool_name: op for op in operations(demo_bank.openapi_document())}
    for op in ops.values():
        Draft202012Validator.check_schema(op.input_schema)
    transfer = Draft202012Validator(ops["createTransfer"].input_schema)
    good = {"body": {"fromAccount": "acc-001", "toAccount": "acc-002", "amount": 10.5, "currency": "EUR"}}
    assert list(transfer.iter_errors(good)) == []
    assert list(transfer.iter_errors({"body": {**good["body"], "amount": 0}}))  # exclusiveMinimum
    assert list(transfer.iter_errors({**good, "extra": 1}))


def test_the_module_serves_the_document_file_it_ships() -> None:
    on_disk = json.loads(demo_bank.DOCUMENT_PATH.read_text())
    assert demo_bank.openapi_document() == on_disk
    assert demo_bank.openapi_document("http://127.0.0.1:9")["servers"] == [{"url": "http://127.0.0.1:9"}]


# -- names and descriptions ----------------------------------------------------------------------------


def test_an_operation_id_is_sanitized_to_a_tool_name() -> None:
    op = only(document({"/a": {"get": {"operationId": "get balance/v2!", "responses": {}}}}))
    assert op.tool_name == "get_balance_v2"


def test_without_an_operation_id_the_name_comes_from_method_and_path() -> None:
    op = only(document({"/accounts/{accountId}/balance": {"get": {"parameters": [path_param("accountId")]}}}))
    assert op.tool_name == "get_accounts_accountId_balance"


def test_tool_names_are_cut_to_64_characters() -> None:
    op = only(document({"/a": {"get": {"operationId": "x" * 100}}}))
    assert op.tool_name == "x" * 64


def test_two_operations_with_the_same_tool_name_are_an_error() -> None:
    doc = document({"/a": {"get": {"operationId": "same"}}, "/b": {"post": {"operationId": "same"}}})
    with pytest.raises(
        OpenApiError, match=r"paths\./b\.post: tool name 'same' is also the name of paths\./a\.get"
    ):
        operations(doc)


def test_the_description_is_summary_and_description_or_method_and_path() -> None:
    both = only(document({"/a": {"get": {"summary": "Short", "description": "Long text."}}}))
    assert both.description == "Short\n\nLong text."
    neither = only(document({"/a": {"delete": {}}}))
    assert neither.description == "DELETE /a"


# -- parameters and bodies ------------------------------------------------------------------------------


def path_param(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, **extra}


def test_path_query_and_header_parameters_become_properties() -> None:
    op = only(
        document(
            {
                "/items/{id}": {
                    "get": {
                        "operationId": "getItem",
                        "parameters": [
                            path_param("id", description="The item"),
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 50}},
                            {
                                "name": "X-Trace",
                                "in": "header",
                                "required": True,
                                "schema": {"type": "string"},
                            },
                        ],
                    }
                }
            }
        )
    )
    assert op.parameters == (("id", "path"), ("limit", "query"), ("X-Trace", "header"))
    assert op.input_schema == {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The item"},
            "limit": {"type": "integer", "maximum": 50},
            "X-Trace": {"type": "string"},
        },
        "required": ["id", "X-Trace"],
        "additionalProperties": False,
    }


def test_path_level_parameters_apply_and_an_operation_may_redefine_them() -> None:
    doc = document(
        {
            "/items/{id}": {
                "parameters": [path_param("id"), {"name": "v", "in": "query", "schema": {"type": "string"}}],
                "get": {"parameters": [{"name": "v", "in": "query", "schema": {"type": "integer"}}]},
            }
        }
    )
    op = only(doc)
    assert op.parameters == (("id", "path"), ("v", "query"))
    assert op.input_schema["properties"]["v"] == {"type": "integer"}


def test_authorization_accept_and_content_type_header_parameters_are_ignored() -> None:
    headers = [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in ("Authorization", "accept", "Content-Type")
    ]
    op = only(document({"/a": {"get": {"parameters": headers}}}))
    assert op.parameters == () and op.input_schema["properties"] == {}


def test_optional_cookie_parameters_are_left_out_and_required_ones_refused() -> None:
    cookie = {"name": "session", "in": "cookie", "schema": {"type": "string"}}
    assert only(document({"/a": {"get": {"parameters": [cookie]}}})).parameters == ()
    with pytest.raises(OpenApiError, match="required cookie parameters are not supported"):
        operations(document({"/a": {"get": {"parameters": [{**cookie, "required": True}]}}}))


def test_a_parameter_given_by_content_uses_that_schema() -> None:
    parameter = {
        "name": "filter",
        "in": "query",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    op = only(document({"/a": {"get": {"parameters": [parameter]}}}))
    assert op.input_schema["properties"]["filter"] == {"type": "object"}


def test_an_optional_json_body_is_an_optional_body_property() -> None:
    op = only(document({"/a": {"post": {"requestBody": json_body({"type": "object"}, required=False)}}}))
    assert op.has_body and "required" not in op.input_schema


def test_any_json_media_type_counts_as_a_json_body() -> None:
    body = {"content": {"application/merge-patch+json; charset=utf-8": {"schema": {"type": "object"}}}}
    assert only(document({"/a": {"patch": {"requestBody": body}}})).has_body


def test_an_optional_non_json_body_is_left_out() -> None:
    body = {"content": {"multipart/form-data": {"schema": {"type": "object"}}}}
    op = only(document({"/a": {"post": {"requestBody": body}}}))
    assert not op.has_body and "body" not in op.input_schema["properties"]


def test_a_required_non_json_body_is_an_error_naming_the_operation() -> None:
    body = {"required": True, "content": {"application/octet-stream": {}}}
    with pytest.raises(
        OpenApiError, match=r"paths\./upload\.put\.requestBody: the required body is application/oct"
    ):
        operations(document({"/upload": {"put": {"requestBody": body}}}))


# -- $ref -----------------------------------------------------------------------------------------------


def test_local_references_are_resolved_in_parameters_bodies_and_schemas() -> None:
    components = {
        "parameters": {"Id": {"$ref": "#/components/parameters/RealId"}, "RealId": path_param("id")},
        "requestBodies": {"Item": json_body({"$ref": "#/components/schemas/Item"})},
        "schemas": {
            "Item": {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}}},
            },
            "Tag": {"type": "string", "enum": ["a", "b"]},
        },
    }
    doc = document(
        {
            "/items/{id}": {
                "put": {
                    "parameters": [{"$ref": "#/components/parameters/Id"}],
                    "requestBody": {"$ref": "#/components/requestBodies/Item"},
                }
            }
        },
        components,
    )
    op = only(doc)
    assert op.parameters == (("id", "path"),)
    assert op.input_schema["properties"]["body"] == {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}},
    }
    assert op.input_schema["required"] == ["id", "body"]


def test_json_pointer_escapes_are_understood() -> None:
    components = {"schemas": {"a/b~c": {"type": "integer"}}}
    body = json_body({"$ref": "#/components/schemas/a~1b~0c"})
    assert only(document({"/a": {"post": {"requestBody": body}}}, components)).input_schema["properties"][
        "body"
    ] == {"type": "integer"}


def test_a_recursive_schema_is_expanded_once_and_then_left_open() -> None:
    components = {
        "schemas": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}},
            }
        }
    }
    body = only(
        document(
            {"/a": {"post": {"requestBody": json_body({"$ref": "#/components/schemas/Node"})}}}, components
        )
    )
    schema = body.input_schema["properties"]["body"]
    nested = schema["properties"]["children"]["items"]
    assert nested == {"description": "(recursive: another Node; not expanded here)"}
    Draft202012Validator.check_schema(body.input_schema)


def test_references_that_only_lead_back_to_themselves_are_an_error() -> None:
    components = {
        "schemas": {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}
    }
    body = json_body({"$ref": "#/components/schemas/A"})
    with pytest.raises(
        OpenApiError, match="circular \\$ref #/components/schemas/A -> #/components/schemas/B -> #/comp"
    ):
        operations(document({"/a": {"post": {"requestBody": body}}}, components))


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("other.json#/components/schemas/X", "is not supported"),
        ("https://example.com/schema.json", "is not supported"),
        ("#/components/schemas/Missing", "names nothing in the document"),
    ],
)
def test_foreign_or_dangling_references_are_errors_naming_where(ref: str, message: str) -> None:
    body = json_body({"$ref": ref})
    with pytest.raises(
        OpenApiError, match=r"paths\./a\.post\.requestBody\.content\.application/json\.schema.*" + message
    ):
        operations(document({"/a": {"post": {"requestBody": body}}}, {"schemas": {}}))


# -- OpenAPI 3.0's schema dialect ---------------------------------------------------------------------------


def test_openapi_30_schemas_become_json_schema() -> None:
    schema = {
        "type": "object",
        "discriminator": {"propertyName": "kind"},
        "properties": {
            "note": {"type": "string", "nullable": True, "example": "hi", "x-internal": True},
            "level": {"type": "string", "enum": ["a", "b"], "nullable": True},
            "amount": {
                "type": "number",
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": 5,
                "exclusiveMaximum": False,
            },
        },
    }
    op = only(document({"/a": {"post": {"requestBody": json_body(schema)}}}, version="3.0.3"))
    body = op.input_schema["properties"]["body"]
    assert body == {
        "type": "object",
        "properties": {
            "note": {"type": ["string", "null"]},
            "level": {"type": ["string", "null"], "enum": ["a", "b", None]},
            "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 5},
        },
    }
    Draft202012Validator.check_schema(op.input_schema)


def test_openapi_31_schemas_are_kept_as_they_are() -> None:
    schema = {"type": ["string", "null"], "exclusiveMinimum": 3}
    op = only(document({"/a": {"post": {"requestBody": json_body(schema)}}}, version="3.1.0"))
    assert op.input_schema["properties"]["body"] == schema


# -- bad documents ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be a JSON object"),
        ({"swagger": "2.0", "paths": {}}, "openapi: expected a 3.x version"),
        ({"openapi": "3.0.0"}, "paths: missing"),
        (document({"a": {}}), "paths.a: a path must start with '/'"),
        (document({"/a": {"get": []}}), r"paths./a.get: must be an object"),
        (document({"/a": {"get": {"parameters": {}}}}), r"paths./a.get.parameters: must be a list"),
        (document({"/a": {"get": {"parameters": [{"in": "query"}]}}}), r"parameters\[0\]: needs a 'name'"),
        (
            document({"/a": {"get": {"parameters": [{"name": "q", "in": "body"}]}}}),
            r"parameters\[0\] \(q\): 'in' must be path, query, header or cookie",
        ),
        (
            document({"/a": {"get": {"parameters": [path_param("id")]}}}),
            "path parameter 'id' does not appear",
        ),
        (document({"/a/{id}": {"get": {}}}), r"the path names \{id\} but no path parameter defines it"),
        (
            document(
                {
                    "/a": {
                        "get": {
                            "parameters": [
                                {"name": "id", "in": "query", "schema": {}},
                                {"name": "id", "in": "header", "schema": {}},
                            ]
                        }
                    }
                }
            ),
            "two parameters are named 'id'",
        ),
        (
            document(
                {
                    "/a": {
                        "post": {
                            "parameters": [{"name": "body", "in": "query", "schema": {}}],
                            "requestBody": json_body({}),
                        }
                    }
                }
            ),
            "a parameter is named 'body'",
        ),
        (document({"/a": {"post": {"requestBody": {"content": {}}}}}), "needs 'content'"),
        (document({"/a": {"get": {"operationId": "!!!"}}}), "leaves no usable tool name"),
    ],
)
def test_bad_documents_are_refused_naming_where(doc: Any, message: str) -> None:
    with pytest.raises(OpenApiError, match=message):
        operations(doc)


def test_an_openapi_error_is_a_value_error() -> None:
    assert issubclass(OpenApiError, ValueError)


# -- base URL ---------------------------------------------------------------------------------------------


def test_the_base_url_is_the_first_server_with_its_variables_defaulted() -> None:
    doc = {
        "servers": [
            {
                "url": "https://{region}.bank.example/{version}/",
                "variables": {"region": {"default": "eu"}, "version": {"default": "v2"}},
            },
            {"url": "https://other.example"},
        ]
    }
    assert base_url(doc) == "https://eu.bank.example/v2"
    assert base_url({"servers": []}) is None
    assert base_url({}) is None


# -- preparing requests -------------------------------------------------------------------------------------


def test_path_parameters_are_percent_encoded_so_they_stay_one_segment() -> None:
    op = only(document({"/accounts/{id}/balance": {"get": {"parameters": [path_param("id")]}}}))
    request = prepare("https://bank.example/v1/", op, {"id": "a/b c?d#e"})
    assert request.url == "https://bank.example/v1/accounts/a%2Fb%20c%3Fd%23e/balance"
    assert request.method == "GET" and request.body is None
    assert request.headers == {"Accept": "application/json"}


@pytest.mark.parametrize("value", ["..", ".", ""])
def test_path_parameters_that_would_move_up_the_path_are_refused(value: str) -> None:
    op = only(document({"/files/{name}": {"get": {"parameters": [path_param("name")]}}}))
    with pytest.raises(ArgumentError, match="path parameter 'name' must not be empty"):
        prepare("https://x.example", op, {"name": value})


def test_a_missing_path_parameter_is_an_argument_error() -> None:
    op = only(document({"/files/{name}": {"get": {"parameters": [path_param("name")]}}}))
    with pytest.raises(ArgumentError, match="path parameter 'name' is required"):
        prepare("https://x.example", op, {})


def test_query_parameters_are_form_encoded() -> None:
    params = [{"name": n, "in": "query", "schema": {}} for n in ("q", "tags", "exact", "skip", "page")]
    op = only(document({"/search": {"get": {"parameters": params}}}))
    request = prepare(
        "https://x.example/api?version=2",
        op,
        {"q": "a&b = c", "tags": ["x", "y"], "exact": True, "skip": None, "page": 2},
    )
    parts = urlsplit(request.url)
    assert parts.path == "/api/search"
    assert parse_qsl(parts.query) == [
        ("version", "2"),
        ("q", "a&b = c"),
        ("tags", "x"),
        ("tags", "y"),
        ("exact", "true"),
        ("page", "2"),
    ]


def test_header_parameters_are_sent_and_may_not_break_lines() -> None:
    op = only(document({"/a": {"get": {"parameters": [{"name": "X-Region", "in": "header", "schema": {}}]}}}))
    assert prepare("https://x.example", op, {"X-Region": ["eu", "us"]}).headers["X-Region"] == "eu,us"
    with pytest.raises(ArgumentError, match="must not contain line breaks"):
        prepare("https://x.example", op, {"X-Region": "eu\r\nX-Evil: 1"})


def test_a_json_body_is_serialized_with_its_content_type() -> None:
    op = only(document({"/transfers": {"post": {"requestBody": json_body({"type": "object"})}}}))
    request = prepare("https://x.example", op, {"body": {"amount": 10.5, "reference": "Miete März"}})
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body is not None and json.loads(request.body) == {
        "amount": 10.5,
        "reference": "Miete März",
    }


def test_arguments_that_are_not_an_object_are_refused() -> None:
    op = only(document({"/a": {"get": {}}}))
    with pytest.raises(ArgumentError):
        prepare("https://x.example", op, [])  # type: ignore[arg-type]
