"""Point Baidu's official Python SDK (`baidu-aip`) at a renlian server.

The SDK keeps its endpoint URLs in name-mangled class attributes (`_AipBase__accessTokenUrl`,
`_AipFace__detectUrl`, ...). This sets every one of them on the client instance, with Baidu's host
replaced by yours, so code written for Baidu's cloud runs unchanged afterwards:

    from aip import AipFace
    from renlian.sdk import point_sdk

    client = point_sdk(AipFace(app_id, api_key, secret_key), "http://127.0.0.1:8000")
    client.detect(image_base64)
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urlsplit

BAIDU = "https://aip.baidubce.com"

Client = TypeVar("Client")


def point_sdk(client: Client, base_url: str) -> Client:
    base = base_url.rstrip("/")
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
        raise ValueError(f"base_url must look like http://host:port, not {base_url!r}")
    pointed = 0
    for cls in type(client).__mro__:
        for name, value in vars(cls).items():
            endpoint = name.startswith("_Aip") and name.endswith("Url")
            if endpoint and isinstance(value, str) and value.startswith(BAIDU):
                setattr(client, name, base + value[len(BAIDU) :])
                pointed += 1
    if pointed == 0:
        raise TypeError(f"{type(client).__name__} has no Baidu endpoint URLs; is it a baidu-aip client?")
    return client
