"""point_sdk rewrites every Baidu endpoint of an SDK client, and refuses what it cannot point."""

from __future__ import annotations

import pytest
from aip import AipFace

from renlian.sdk import point_sdk


def test_every_endpoint_moves_to_the_given_host() -> None:
    client = point_sdk(AipFace("1", "ak", "sk"), "http://10.0.0.5:8000/")
    names = [name for name in dir(client) if name.startswith("_Aip") and name.endswith("Url")]
    urls = {name: getattr(client, name) for name in names}
    assert len(urls) >= 13
    assert all(url.startswith("http://10.0.0.5:8000/") for url in urls.values())
    assert urls["_AipBase__accessTokenUrl"] == "http://10.0.0.5:8000/oauth/2.0/token"
    assert urls["_AipFace__detectUrl"] == "http://10.0.0.5:8000/rest/2.0/face/v1/detect"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        point_sdk(AipFace("1", "ak", "sk"), "localhost:8000")
    with pytest.raises(TypeError):
        point_sdk(object(), "http://localhost:8000")
