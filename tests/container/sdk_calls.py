"""Baidu's Python SDK (baidu-aip 4.16.13, v3) against a renlian container, from outside it.

Run by tests/container/test_compose.py in a process whose PYTHONPATH puts 4.16.13 before the venv's
older SDK; prints the answers as one JSON object:

    python sdk_calls.py enrol|search APP_ID API_KEY SECRET_KEY BASE_URL PHOTO GROUP USER

`enrol` detects the photo's face, adds it as USER to GROUP and searches GROUP with it; `search`
only searches.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from aip import AipFace

from renlian.sdk import point_sdk


def main() -> None:
    action, app_id, api_key, secret_key, base_url, photo, group, user = sys.argv[1:9]
    client: Any = point_sdk(AipFace(app_id, api_key, secret_key), base_url)
    image = base64.b64encode(Path(photo).read_bytes()).decode()
    out: dict[str, Any] = {}
    if action == "enrol":
        out["detect"] = client.detect(image, "BASE64", {"face_field": "age,quality"})
        out["addUser"] = client.addUser(image, "BASE64", group, user, {"user_info": "container test"})
    out["search"] = client.search(image, "BASE64", group)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
