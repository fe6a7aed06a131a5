"""Every declared parameter of every operation, in both protocols, refused with its declared code.

For each parameter the declaration (renlian/api/operation.py) gives: a wrong value (not a number, not
one of its choices, not its pattern), a value past its limit (number, length or count) and, where it
is required, no value; each is sent to the real server with every other required parameter valid,
and must be answered with the code the declaration names for that failure in the operation's
protocol. A few codes are also spelled out, so the declarations' codes are anchored to Baidu's.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from renlian.api.operation import Failure, Operation, Param
from renlian.api.reference import OPERATIONS
from tests.conftest import Server

# A valid value for every required parameter, so that the parameter under test is the only fault.
VALID = {
    "image": "aW1hZ2U=",
    "images": "aW1hZ2U=",
    "image_type": "BASE64",
    "uid": "opu",
    "user_id": "opu",
    "user_info": "op",
    "group_id": "opg",
    "group_id_list": "opg",
    "src_group_id": "opg",
    "dst_group_id": "opg2",
    "face_token": "0" * 32,
}


def bad_values(param: Param[Any]) -> list[tuple[Failure, str]]:
    """The faulty values the declaration implies, each with the failure it must be refused for."""
    found: list[tuple[Failure, str]] = []
    if param.kind == "integer":
        found.append(("invalid", "one"))
    elif param.enum is not None:
        found.append(("invalid", "NOT_ONE_OF_THEM"))
    elif param.pattern is not None:
        found.append(("invalid", "no such-value!"))
    if param.maximum is not None:
        found.append(("over", str(param.maximum + 1)))
    if param.max_length is not None:
        found.append(("over", "a" * (param.max_length + 1)))
    if param.max_items is not None:
        found.append(("over", ",".join(f"g{i}" for i in range(param.max_items + 1))))
    if param.required:
        found.append(("missing", ""))
    return found


CASES = [
    pytest.param(operation, param, failure, value, id=f"{operation.path}:{param.name}:{failure}")
    for operation in OPERATIONS
    for param in operation.params
    for failure, value in bad_values(param)
]


def send(server: Server, operation: Operation, fields: dict[str, str]) -> dict[str, Any]:
    url, params = server.base_url + operation.path, {"access_token": server.token}
    if operation.body == "form":
        answer = httpx.post(url, params=params, data=fields, timeout=120)
    elif operation.body == "json-array":
        answer = httpx.post(url, params=params, json=[fields, dict(fields)], timeout=120)
    else:
        answer = httpx.post(url, params=params, json=fields, timeout=120)
    found: dict[str, Any] = answer.json()
    return found


def request(operation: Operation, param: Param[Any], value: str) -> dict[str, str]:
    fields = {p.name: VALID[p.name] for p in operation.params if p.required}
    fields.pop(param.name, None)
    for alias in param.aliases:
        fields.pop(alias, None)
    if value:
        fields[param.name] = value
    return fields


def test_every_operation_declares_something_to_refuse() -> None:
    assert len(CASES) > 200
    for operation in OPERATIONS:
        assert any(bad_values(param) for param in operation.params), operation.path


@pytest.mark.parametrize(("operation", "param", "failure", "value"), CASES)
def test_every_declared_parameter_is_checked(
    server: Server, operation: Operation, param: Param[Any], failure: Failure, value: str
) -> None:
    answer = send(server, operation, request(operation, param, value))
    assert answer.get("error_code") == param.code(operation.protocol, failure), answer
    if failure == "missing" and operation.protocol == "v3":
        assert answer["error_msg"] == f"param[{param.name}] is null"


@pytest.mark.parametrize(
    ("path", "name", "failure", "code"),
    [
        ("/rest/2.0/face/v2/detect", "max_face_num", "over", 216100),
        ("/rest/2.0/face/v2/faceset/user/add", "uid", "invalid", 216111),
        ("/rest/2.0/face/v2/faceset/user/add", "images", "missing", 216101),
        ("/rest/2.0/face/v2/identify", "images", "over", 216202),
        ("/rest/2.0/face/v3/detect", "max_face_num", "invalid", 222016),
        ("/rest/2.0/face/v3/detect", "image_type", "invalid", 222015),
        ("/rest/2.0/face/v3/faceset/user/add", "user_id", "over", 222018),
        ("/rest/2.0/face/v3/faceset/user/add", "user_info", "over", 222010),
        ("/rest/2.0/face/v3/search", "group_id_list", "over", 223104),
        ("/rest/2.0/face/v3/search", "group_id_list", "invalid", 222005),
        ("/rest/2.0/face/v3/faceset/group/getlist", "length", "over", 222003),
        ("/rest/2.0/face/v3/faceverify", "image", "over", 222203),
    ],
)
def test_declared_codes_are_baidus(path: str, name: str, failure: Failure, code: int) -> None:
    operation = next(op for op in OPERATIONS if op.path == path)
    param = next(p for p in operation.params if p.name == name)
    assert param.code(operation.protocol, failure) == code
