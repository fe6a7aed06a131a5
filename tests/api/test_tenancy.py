"""One app can never read, search, change or learn of another app's face library."""

from __future__ import annotations

import numpy as np

from tests.conftest import Server, b64, create_app

FACESET = "/rest/2.0/face/v2/faceset"


def test_every_endpoint_is_scoped_to_the_calling_app(
    server: Server, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    owner = server.token
    other = server.token_for(create_app(server.data_dir, "neighbour"))
    photo = b64(astronaut)
    group = "tenancy_private"
    assert "error_code" not in server.call(
        FACESET + "/user/add",
        token=owner,
        uid="secret_user",
        user_info="owner's",
        group_id=group,
        image=photo,
    )

    def as_other(path: str, **fields: str) -> object:
        return server.call(path, token=other, **fields).get("error_code")

    # Reads: the other app sees nothing, and errors say "not there", exactly as for a name never used.
    assert as_other("/rest/2.0/face/v2/identify", group_id=group, image=photo) == 216618
    assert as_other("/rest/2.0/face/v2/verify", uid="secret_user", group_id=group, image=photo) == 216611
    assert as_other(FACESET + "/user/get", uid="secret_user") == 216611
    assert as_other(FACESET + "/group/getusers", group_id=group) == 216618
    assert group not in server.call(FACESET + "/group/getlist", token=other, end="1000")["result"]
    # Writes: nothing of the owner's can be changed or copied.
    assert as_other(FACESET + "/user/delete", uid="secret_user") == 216611
    assert as_other(FACESET + "/user/update", uid="secret_user", group_id=group, image=b64(hopper)) == 216611
    assert (
        as_other(FACESET + "/group/adduser", uid="secret_user", src_group_id=group, group_id="mine") == 216611
    )
    assert as_other(FACESET + "/group/deleteuser", uid="secret_user", group_id=group) == 216611
    # The same names in the other app are its own, separate records.
    assert (
        as_other(
            FACESET + "/user/add",
            uid="secret_user",
            user_info="neighbour's",
            group_id=group,
            image=b64(hopper),
        )
        is None
    )
    theirs = server.call("/rest/2.0/face/v2/identify", token=other, group_id=group, image=photo)["result"][0]
    assert theirs["user_info"] == "neighbour's" and theirs["scores"][0] < 80
    # The owner's record is untouched by all of that.
    mine = server.call("/rest/2.0/face/v2/identify", token=owner, group_id=group, image=photo)["result"][0]
    assert mine["user_info"] == "owner's" and mine["scores"][0] > 95
    assert server.call(FACESET + "/user/get", token=owner, uid="secret_user")["result_num"] == 1
