"""/openapi.json and /docs: every route is declared and documented (tests/api/test_operation.py checks
that each declared parameter is refused as declared)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from renlian.api.reference import OPERATIONS
from tests.conftest import Server


@pytest.fixture(scope="module")
def spec(server: Server) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(server.base_url + "/openapi.json").json()
    return found


def route_paths(routes: list[Any]) -> set[str]:
    """Every path the app routes, through FastAPI's included routers."""
    found: set[str] = set()
    for route in routes:
        router = getattr(route, "original_router", None)
        if router is not None:
            found |= route_paths(list(router.routes))
        elif isinstance(getattr(route, "path", None), str):
            found.add(route.path)
    return found


def test_every_rest_route_is_in_the_reference(spec: dict[str, Any]) -> None:
    from renlian.api.app import create_app
    from renlian.settings import Settings

    app = create_app(Settings(), lambda: None)  # type: ignore[arg-type,return-value]
    served = {path for path in route_paths(list(app.routes)) if path.startswith("/rest/") and "{" not in path}
    assert served == {operation.path for operation in OPERATIONS}
    assert served | {"/oauth/2.0/token"} == set(spec["paths"])


def test_operation_ids_are_unique_and_operations_complete(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in spec["paths"].items():
        for operation in item.values():
            assert operation["summary"] and "200" in operation["responses"], path
            if path.startswith("/rest/"):
                assert operation["x-error-codes"] and "Codes:" in operation["responses"]["200"]["description"]
    detect = spec["paths"]["/rest/2.0/face/v3/detect"]["post"]
    body = detect["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["image", "image_type"]
    assert body["properties"]["image_type"]["enum"] == ["BASE64", "URL", "FACE_TOKEN"]
    assert body["properties"]["max_face_num"]["maximum"] == 120
    assert 222202 in detect["x-error-codes"]


def test_docs_page_is_served_offline(server: Server) -> None:
    page = httpx.get(server.base_url + "/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    # Every script and style comes from renlian itself.
    assert not re.search(r'(src|href)="(https?:)?//', page.text)
    for asset, kind in (("docs.js", "javascript"), ("docs.css", "css")):
        served = httpx.get(server.base_url + f"/docs/{asset}")
        assert served.status_code == 200 and kind in served.headers["content-type"]
    assert httpx.get(server.base_url + "/docs/../app.py").status_code == 404
