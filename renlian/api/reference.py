"""The API reference, /openapi.json and /docs, generated from the operations' own declarations.

Each route module declares its operations (api/operation.py: parameters, limits, codes and answer)
and reads its requests through them, so what is documented here is what is parsed and checked.
tests/api/test_reference.py checks that every /rest route is declared, and
tests/api/test_operation.py that every declared parameter is refused as declared.
"""

from __future__ import annotations

from typing import Any

from renlian import __version__
from renlian.api import examples
from renlian.api.operation import AUTH, INT, QUOTA, STR, Operation, obj
from renlian.api.v2 import detect as v2_detect
from renlian.api.v2 import faceset as v2_faceset
from renlian.api.v2 import match as v2_match
from renlian.api.v2 import search as v2_search
from renlian.api.v3 import faces as v3_faces
from renlian.api.v3 import faceset as v3_faceset
from renlian.api.v3 import search as v3_search

# Every operation, once per path it is served at (v2 detect also at v1's).
OPERATIONS: tuple[Operation, ...] = tuple(
    entry
    for module in (v2_detect, v2_match, v2_search, v2_faceset, v3_faces, v3_search, v3_faceset)
    for declared in module.OPERATIONS
    for entry in declared.entries()
)


def _request_body(operation: Operation) -> dict[str, Any]:
    fields = obj(**{param.name: param.schema() for param in operation.params})
    required = [param.name for param in operation.params if param.required]
    if required:
        fields["required"] = required
    # Every served operation has one (tests/console/test_reference.py checks); a new one may not yet.
    example = examples.REQUESTS.get(operation.path, {})
    if operation.body == "form":
        return {"content": {"application/x-www-form-urlencoded": {"schema": fields, "example": example}}}
    schema = {"type": "array", "items": fields} if operation.body == "json-array" else fields
    # The official SDKs send the same JSON as application/json or labelled as a form; the Node SDK
    # sends real forms for the object bodies.
    content = {"application/json": {"schema": schema, "example": example}}
    if operation.body == "json":
        content["application/x-www-form-urlencoded"] = {"schema": fields, "example": example}
    return {"required": True, "content": content}


def _codes(operation: Operation) -> dict[int, str]:
    """The codes an operation can answer in its protocol, with their messages, in code order."""
    v2 = operation.protocol == "v2"
    found = {
        error.code if v2 else error.v3_code: error.message if v2 else error.v3_message
        for error in (*operation.errors, *AUTH, *QUOTA)
    }
    return dict(sorted(found.items()))


def _answer(operation: Operation, operation_id: str) -> dict[str, Any]:
    if operation.protocol == "v3":
        envelope = obj(
            error_code=INT, error_msg=STR, log_id=INT, timestamp=INT, cached=INT, result=operation.result
        )
    else:
        envelope = {"allOf": [obj(log_id=INT), operation.result]}
    table = "; ".join(f"{code} {message}" for code, message in _codes(operation).items())
    content: dict[str, Any] = {"schema": envelope}
    recorded = examples.answers().get(operation_id)
    if recorded is not None:
        content["example"] = recorded
    return {
        "200": {
            "description": f"HTTP 200 for every answer, errors too (error_code, error_msg). Codes: {table}",
            "content": {"application/json": content},
        }
    }


def openapi(operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for operation in operations:
        item = paths.setdefault(operation.path, {})
        for method in operation.methods:
            operation_id = (
                f"{operation.operation_id}_{method}" if len(operation.methods) > 1 else operation.operation_id
            )
            entry: dict[str, Any] = {
                "operationId": operation_id,
                "summary": operation.summary,
                "tags": [operation.protocol],
                "parameters": [
                    {
                        "name": "access_token",
                        "in": "query",
                        "schema": STR,
                        "description": "or sign with bce-auth-v1",
                    }
                ],
                "responses": _answer(operation, operation_id),
                "x-error-codes": list(_codes(operation)),
                # The same codes with their messages, for a table (/docs).
                "x-errors": [
                    {"code": code, "message": message} for code, message in _codes(operation).items()
                ],
            }
            if method == "get":
                example = examples.REQUESTS.get(operation.path, {})
                entry["parameters"] += [
                    {"name": p.name, "in": "query", "required": p.required, "schema": p.schema()}
                    | ({"example": example[p.name]} if p.name in example else {})
                    for p in operation.params
                ]
            else:
                entry["requestBody"] = _request_body(operation)
            item[method] = entry
    paths["/oauth/2.0/token"] = {
        method: {
            "operationId": f"oauth_token_{method}",
            "summary": "An access token for an app's API key and secret key (client credentials or refresh)",
            "tags": ["auth"],
            "parameters": [
                {
                    "name": "grant_type",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "enum": ["client_credentials", "refresh_token"]},
                },
                {"name": "client_id", "in": "query", "schema": STR},
                {"name": "client_secret", "in": "query", "schema": STR},
                {"name": "refresh_token", "in": "query", "schema": STR},
            ],
            "x-example": examples.REQUESTS[examples.TOKEN],
            "responses": {
                "200": {
                    "description": "the token",
                    "content": {
                        "application/json": {
                            "schema": obj(access_token=STR, expires_in=INT, refresh_token=STR, scope=STR)
                        }
                        | {"example": examples.answers().get(f"oauth_token_{method}")}
                    },
                },
                "400": {"description": "invalid_request or unsupported_grant_type"},
                "401": {"description": "invalid_client or expired_token"},
            },
        }
        for method in ("get", "post")
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "renlian: the Baidu Face API (v2 and v3), self-hosted",
            "version": __version__,
            "description": (
                "Every /rest call takes ?access_token= (or a bce-auth-v1 signature). "
                "docs/compat.md says where renlian differs from Baidu."
            ),
        },
        "paths": paths,
    }
