"""Drive every face method of baidu-aip 4.16.13 (v3) against a renlian server; print the answers.

Run by tests/api/test_sdk_v3.py in a process whose PYTHONPATH puts 4.16.13 before the venv's older
SDK:  python aip_v3_session.py APP_ID API_KEY SECRET_KEY BASE_URL PHOTO_A PHOTO_B PREFIX
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
    app_id, api_key, secret_key, base_url, photo_a, photo_b, prefix = sys.argv[1:8]
    client: Any = point_sdk(AipFace(app_id, api_key, secret_key), base_url)
    a, b = (base64.b64encode(Path(photo).read_bytes()).decode() for photo in (photo_a, photo_b))
    g1, g2 = f"{prefix}_g1", f"{prefix}_g2"
    out: dict[str, Any] = {"version": client.getVersion()}
    out["groupAdd"] = client.groupAdd(g1)
    out["groupAdd_again"] = client.groupAdd(g1)
    out["groupAdd_2"] = client.groupAdd(g2)
    out["detect"] = client.detect(
        a, "BASE64", {"face_field": "age,gender,quality,landmark", "max_face_num": 2}
    )
    out["addUser"] = client.addUser(a, "BASE64", g1, "collins", {"user_info": "Eileen Collins"})
    out["addUser_b"] = client.addUser(b, "BASE64", g1, "hopper", {"user_info": "Grace Hopper"})
    out["updateUser"] = client.updateUser(b, "BASE64", g1, "hopper", {"user_info": "Rear Admiral Hopper"})
    out["getUser"] = client.getUser("hopper", g1)
    out["faceGetlist"] = client.faceGetlist("collins", g1)
    out["getGroupUsers"] = client.getGroupUsers(g1, {"start": 0, "length": 10})
    out["getGroupList"] = client.getGroupList({"start": 0, "length": 100})
    out["search"] = client.search(a, "BASE64", g1, {"max_user_num": 2})
    out["search_list"] = client.search(b, "BASE64", [g1], {"match_threshold": 80})
    token = out["detect"]["result"]["face_list"][0]["face_token"]
    out["search_token"] = client.search(token, "FACE_TOKEN", g1)
    out["multiSearch"] = client.multiSearch(a, "BASE64", g1, {"max_face_num": 3, "match_threshold": 70})
    out["match"] = client.match(
        [
            {"image": a, "image_type": "BASE64"},
            {"image": token, "image_type": "FACE_TOKEN", "face_type": "LIVE"},
        ]
    )
    out["match_other"] = client.match(
        [{"image": a, "image_type": "BASE64"}, {"image": b, "image_type": "BASE64"}]
    )
    out["faceverify"] = client.faceverify([{"image": a, "image_type": "BASE64", "face_field": "age"}])
    out["userCopy"] = client.userCopy("collins", {"src_group_id": g1, "dst_group_id": g2})
    collins_token = out["faceGetlist"]["result"]["face_list"][0]["face_token"]
    out["faceDelete"] = client.faceDelete("collins", g2, collins_token)
    out["getUser_after_faceDelete"] = client.getUser("collins", g2)
    out["deleteUser"] = client.deleteUser(g1, "hopper")
    out["getUser_deleted"] = client.getUser("hopper", g1)
    out["groupDelete"] = client.groupDelete(g2)
    out["groupDelete_again"] = client.groupDelete(g2)
    out["personVerify"] = client.personVerify(a, "BASE64", "110101190001011009", "name")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
