"""docs/architecture.md's how-tos, done once: an endpoint declared, routed, read and documented, and
the wiring a new face field relies on."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from renlian.api import operation as op
from renlian.api.envelope import error_for, v3_ok
from renlian.api.operation import INT, STR, Operation, obj
from renlian.api.params import Params
from renlian.api.reference import OPERATIONS, openapi
from renlian.api.v3 import params as v3
from renlian.api.v3.shape import FIELDS
from renlian.errors import FaceApiError
from renlian.vision.attributes import ATTRIBUTE_FIELDS
from renlian.vision.v3fields import V3_FIELDS

# Step 1 of "Add an endpoint": declare the operation, its parameters and its answer.
TIMES = op.integer("times", 1, 1, 3, description="how many times")
USER = op.user_id("user_id")
ECHO = Operation(
    "/rest/2.0/face/v3/howto/echo",
    "Say a user id back, a number of times",
    (USER, TIMES),
    obj(user_id=STR, times=INT),
    op.PARAMS,
    body="json",
)


def served() -> TestClient:
    """Step 2: a route that reads its request through the declaration. (A real route takes a `Call`
    from api/deps.py, which admits the request and reads its body; here the query is the request.)"""
    router = APIRouter()

    @ECHO.route(router)
    async def echo(request: Request) -> JSONResponse:
        values = ECHO.read(Params.merged(request.query_params.multi_items(), {}))
        return v3_ok(1, {"user_id": values[USER], "times": values[TIMES]})

    app = FastAPI()
    app.include_router(router)

    @app.exception_handler(FaceApiError)
    async def refused(request: Request, exc: FaceApiError) -> JSONResponse:
        return error_for(request.url.path, 1, exc)

    return TestClient(app)


def answer(client: TestClient, **query: Any) -> dict[str, Any]:
    found: dict[str, Any] = client.post(ECHO.path, params=query).json()
    return found


def test_a_new_endpoint_reads_checks_and_documents_its_parameters() -> None:
    client = served()
    assert answer(client, user_id="ada", times="2")["result"] == {"user_id": "ada", "times": 2}
    assert answer(client, user_id="ada")["result"]["times"] == 1  # the declared default
    # Each declared check, with the code the declaration names, in v3's envelope.
    assert answer(client, user_id="ada", times="9")["error_code"] == TIMES.code("v3", "over") == 216100
    assert answer(client, user_id="a-b")["error_code"] == USER.code("v3", "invalid") == 222018
    refused = answer(client, times="2")
    assert refused["error_code"] == 222001 and refused["error_msg"] == "param[user_id] is null"
    # Step 3: the reference documents it from the same declaration.
    spec = openapi((*OPERATIONS, ECHO))
    body = spec["paths"][ECHO.path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["times"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 3,
        "default": 1,
        "description": "how many times",
    }
    assert body["required"] == ["user_id"]


@pytest.mark.parametrize("undeclared", [op.integer("other", 0, 0, 9), op.integer("times", 1, 1, 9)])
def test_a_parameter_the_operation_does_not_declare_cannot_be_read(undeclared: op.Param[int]) -> None:
    """Neither a name the operation does not declare nor another declaration of one it does."""
    values = ECHO.read(Params({"user_id": "ada", "times": "2", "other": "1"}))
    assert values[TIMES] == 2
    with pytest.raises(KeyError):
        values[undeclared]


def test_every_face_field_is_declared_and_computed_by_the_analyzer() -> None:
    """ "Add a face field": a name in shape.FIELDS is accepted and documented by detect's face_field,
    and names something the analyzer computes (None: the landmark models)."""
    assert v3.FACE_FIELD.enum is not None and set(v3.FACE_FIELD.enum) == set(FIELDS)
    assert {field for field in FIELDS.values() if field is not None} <= ATTRIBUTE_FIELDS | V3_FIELDS
