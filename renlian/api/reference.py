"""The API reference: every v2 and v3 operation with its real parameters, answer and error codes.

The routes read their parameters by hand (Baidu's bodies are forms or loosely typed JSON, which
FastAPI's models would refuse with the wrong codes), so FastAPI cannot see them; this table states
them for /openapi.json and /docs, and tests/api/test_reference.py checks it against the routes: every
/rest route has an entry, and every parameter marked required is refused, with its protocol's
missing-parameter code, when left out. Limits come from the routes' own constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from renlian import __version__
from renlian.api import examples
from renlian.api.params import DETECT_IMAGE_LIMIT, MATCH_IMAGES_LIMIT
from renlian.api.v2 import detect as v2_detect
from renlian.api.v2 import faceset as v2_faceset
from renlian.api.v2 import match as v2_match
from renlian.api.v2 import search as v2_search
from renlian.api.v3 import faces as v3_faces
from renlian.api.v3 import params as v3_params
from renlian.api.v3 import search as v3_search
from renlian.api.v3.shape import FIELDS
from renlian.core.controls import LEVELS
from renlian.core.faces import IMAGE_TYPES
from renlian.errors import ErrorCode
from renlian.library.library import MAX_GROUP_CHARS, MAX_UID_BYTES, MAX_USER_INFO_BYTES


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # string | integer
    required: bool = False
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    default: Any = None

    def schema(self) -> dict[str, Any]:
        found: dict[str, Any] = {"type": self.kind}
        for key, value in (
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("maxLength", self.max_length),
            ("enum", list(self.enum) if self.enum else None),
            ("pattern", self.pattern),
            ("default", self.default),
        ):
            if value is not None:
                found[key] = value
        if self.description:
            found["description"] = self.description
        return found


@dataclass(frozen=True)
class Operation:
    path: str
    summary: str
    params: tuple[Param, ...]
    result: dict[str, Any]
    errors: tuple[ErrorCode, ...]
    methods: tuple[str, ...] = ("post",)
    # form (v2), json (v3: an object; also accepted as a form), json-array (v3 match, faceverify)
    body: str = "form"
    extra_codes: tuple[int, ...] = field(default=())

    @property
    def protocol(self) -> str:
        return "v3" if "/face/v3/" in self.path else "v2"

    @property
    def operation_id(self) -> str:
        return self.path.removeprefix("/rest/2.0/face/").replace("/", "_").replace("-", "_")


ID = "^[A-Za-z0-9_]+$"
STR = {"type": "string"}
NUM = {"type": "number"}
INT = {"type": "integer"}


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


POINT = obj(x=NUM, y=NUM)
V2_LOCATION = obj(left=INT, top=INT, width=INT, height=INT)
V3_LOCATION = obj(left=NUM, top=NUM, width=NUM, height=NUM, rotation=INT)
TYPED = obj(type=STR, probability=NUM)
V3_USER = obj(group_id=STR, user_id=STR, user_info=STR, score=NUM)

# Shared parameters ---------------------------------------------------------------------------------

V2_IMAGES = Param(
    "images", "string", True, "base64 images, comma-joined where several are taken (`image` works too)"
)
V2_UID = Param(
    "uid",
    "string",
    True,
    f"letters, digits and _, at most {MAX_UID_BYTES} bytes",
    max_length=MAX_UID_BYTES,
    pattern=ID,
)
V2_GROUPS = Param(
    "group_id", "string", True, f"comma-separated group ids, each at most {MAX_GROUP_CHARS} characters"
)
V2_USER_INFO = Param(
    "user_info", "string", True, f"at most {MAX_USER_INFO_BYTES} bytes", max_length=MAX_USER_INFO_BYTES
)
V3_IMAGE = Param("image", "string", True, "base64 of the image file, a URL, or a face_token, per image_type")
V3_IMAGE_TYPE = Param("image_type", "string", True, "how `image` names the image", enum=IMAGE_TYPES)
V3_CONTROLS = (
    Param(
        "quality_control",
        "string",
        description="reject faces below this quality",
        enum=LEVELS,
        default="NONE",
    ),
    Param(
        "liveness_control",
        "string",
        description="reject faces below this liveness",
        enum=LEVELS,
        default="NONE",
    ),
    Param(
        "spoofing_control",
        "string",
        description="no published thresholds for its levels: NONE only (detect's spoofing gives the score)",
        enum=("NONE",),
    ),
    Param(
        "face_type",
        "string",
        description="the kind of photo (one model serves all)",
        enum=v3_params.FACE_TYPES,
    ),
)
V3_USER_ID = Param("user_id", "string", True, "letters, digits and _", max_length=MAX_UID_BYTES, pattern=ID)
V3_GROUP = Param("group_id", "string", True, "letters, digits and _", max_length=MAX_GROUP_CHARS, pattern=ID)
V3_GROUP_OR_ALL = Param("group_id", "string", True, "a group id, or @ALL for every group of the user")
V3_GROUP_LIST = Param(
    "group_id_list",
    "string",
    True,
    f"comma-separated group ids (or a JSON array), at most {v3_params.MAX_GROUP_LIST}",
)
V3_PAGE = (
    Param("start", "integer", description="offset", minimum=0, default=0),
    Param("length", "integer", description="page size", minimum=1, maximum=v3_params.MAX_PAGE, default=100),
)
V3_FACE_FIELD = Param(
    "face_field",
    "string",
    description="comma-separated attributes",
    enum=tuple(sorted(FIELDS.keys())),
)

AUTH = (
    ErrorCode.INVALID_TOKEN_PARAM,
    ErrorCode.TOKEN_INVALID,
    ErrorCode.TOKEN_EXPIRED,
    ErrorCode.MODULE_CLOSED,
)
QUOTA = (ErrorCode.CLUSTER_LIMIT, ErrorCode.QPS_LIMIT, ErrorCode.DAILY_LIMIT, ErrorCode.TOTAL_LIMIT)
IMAGE = (
    ErrorCode.EMPTY_IMAGE,
    ErrorCode.IMAGE_FORMAT_ERROR,
    ErrorCode.IMAGE_SIZE_ERROR,
    ErrorCode.FACE_NOT_FOUND,
)
PARAMS = (ErrorCode.INVALID_PARAM, ErrorCode.NOT_ENOUGH_PARAM)
V3_IMAGE_ERRORS = (*IMAGE, ErrorCode.IMAGE_URL_DOWNLOAD_FAIL, ErrorCode.FACE_TOKEN_NOT_EXIST)
V3_CONTROL_ERRORS = (
    ErrorCode.LIVENESS_CHECK_FAIL,
    ErrorCode.FACE_FUZZY,
    ErrorCode.FACE_LIGHT_NOT_GOOD,
    ErrorCode.INCOMPLETE_FACE,
    ErrorCode.LEFT_EYE_OCCLUSION,
    ErrorCode.RIGHT_EYE_OCCLUSION,
    ErrorCode.NOSE_OCCLUSION,
    ErrorCode.MOUTH_OCCLUSION,
    ErrorCode.LEFT_CHEEK_OCCLUSION,
    ErrorCode.RIGHT_CHEEK_OCCLUSION,
    ErrorCode.CHIN_OCCLUSION,
)
LIBRARY = (ErrorCode.USER_NOT_EXIST, ErrorCode.NO_USER_IN_GROUP, ErrorCode.DB_ERROR)

V2_FACE = obj(
    location=V2_LOCATION,
    face_probability=NUM,
    rotation_angle=INT,
    yaw=NUM,
    pitch=NUM,
    roll=NUM,
    landmark=arr(POINT),
    landmark72=arr(POINT),
    age=NUM,
    gender=STR,
    race=STR,
    beauty=NUM,
)
V3_FACE = obj(
    face_token=STR,
    location=V3_LOCATION,
    face_probability=NUM,
    angle=obj(yaw=NUM, pitch=NUM, roll=NUM),
    age=NUM,
    beauty=NUM,
    expression=TYPED,
    face_shape=TYPED,
    gender=TYPED,
    glasses=TYPED,
    race=TYPED,
    face_type=TYPED,
    quality=obj(occlusion={"type": "object"}, blur=NUM, illumination=NUM, completeness=INT),
    landmark=arr(POINT),
    landmark72=arr(POINT),
)
V2_FACESET = "/rest/2.0/face/v2/faceset"
V3 = "/rest/2.0/face/v3"

OPERATIONS: tuple[Operation, ...] = (
    # v2 ---------------------------------------------------------------------------------------------
    *(
        Operation(
            path,
            "Detect faces: boxes, pose, landmarks and attributes",
            (
                Param("image", "string", True, f"base64 image, under {DETECT_IMAGE_LIMIT} bytes of text"),
                Param("max_face_num", "integer", minimum=1, maximum=v2_detect.MAX_FACES, default=1),
                Param(
                    "face_fields",
                    "string",
                    description="comma-separated",
                    enum=tuple(sorted(v2_detect.FACE_FIELDS)),
                ),
            ),
            obj(result_num=INT, result=arr(V2_FACE)),
            (*PARAMS, *IMAGE),
            methods=("get", "post"),
        )
        for path in ("/rest/2.0/face/v1/detect", "/rest/2.0/face/v2/detect")
    ),
    Operation(
        "/rest/2.0/face/v2/match",
        "Score every pair of 2 to 10 images",
        (
            Param(
                "images",
                "string",
                True,
                f"base64 images joined by commas, under {MATCH_IMAGES_LIMIT} bytes in all",
            ),
            Param("ext_fields", "string", enum=tuple(v2_match.EXT_FIELDS)),
            Param(
                "image_liveness", "string", description='e.g. "faceliveness,faceliveness" or ",faceliveness"'
            ),
        ),
        obj(
            result_num=INT,
            result=arr(obj(index_i=INT, index_j=INT, score=NUM)),
            ext_info=arr({"type": "object"}),
        ),
        (*PARAMS, *IMAGE, ErrorCode.NOT_ENOUGH_IMAGES, ErrorCode.PARAM_TOO_LONG),
        methods=("get", "post"),
    ),
    Operation(
        "/rest/2.0/face/v2/identify",
        "1:N search of one or several groups",
        (
            V2_GROUPS,
            V2_IMAGES,
            Param("user_top_num", "integer", minimum=1, maximum=v2_search.MAX_USER_TOP, default=1),
            Param("ext_fields", "string", enum=tuple(v2_search.EXT_FIELDS)),
        ),
        obj(result_num=INT, result=arr(obj(group_id=STR, uid=STR, user_info=STR, scores=arr(NUM)))),
        (*PARAMS, *IMAGE, ErrorCode.NO_USER_IN_GROUP, ErrorCode.INVALID_GROUP_ID),
    ),
    Operation(
        "/rest/2.0/face/v2/verify",
        "1:1 against a user's faces",
        (
            V2_UID,
            V2_GROUPS,
            V2_IMAGES,
            Param("top_num", "integer", minimum=1, maximum=v2_search.MAX_TOP, default=1),
            Param("ext_fields", "string", enum=tuple(v2_search.EXT_FIELDS)),
        ),
        obj(result_num=INT, result=arr(NUM)),
        (*PARAMS, *IMAGE, ErrorCode.USER_NOT_EXIST, ErrorCode.INVALID_USERID),
    ),
    Operation(
        f"{V2_FACESET}/user/add",
        "Enrol one photo for a user in one or several groups",
        (
            V2_UID,
            V2_USER_INFO,
            V2_GROUPS,
            V2_IMAGES,
            Param("action_type", "string", enum=v2_faceset.ACTION_TYPES),
        ),
        obj(),
        (
            *PARAMS,
            *IMAGE,
            ErrorCode.INVALID_USERID,
            ErrorCode.IMAGE_EXISTED,
            ErrorCode.FAIL_TO_ADD_USER,
            ErrorCode.DB_ERROR,
        ),
    ),
    Operation(
        f"{V2_FACESET}/user/update",
        f"Replace a user's faces with up to {v2_faceset.MAX_ENROL_IMAGES} photos",
        (
            V2_UID,
            Param("images", "string", True, "base64 images, comma-joined"),
            Param("user_info", "string", max_length=MAX_USER_INFO_BYTES),
            Param("group_id", "string"),
            Param("action_type", "string", enum=v2_faceset.ACTION_TYPES),
        ),
        obj(),
        (*PARAMS, *IMAGE, ErrorCode.USER_NOT_EXIST, ErrorCode.PARAM_TOO_LONG, ErrorCode.DB_ERROR),
    ),
    Operation(
        f"{V2_FACESET}/user/delete",
        "Delete a user from every group, or from the named ones",
        (V2_UID, Param("group_id", "string")),
        obj(),
        (*PARAMS, ErrorCode.USER_NOT_EXIST, ErrorCode.DB_ERROR),
    ),
    Operation(
        f"{V2_FACESET}/user/get",
        "A user's records, one per group",
        (V2_UID, Param("group_id", "string")),
        obj(result_num=INT, result=arr(obj(uid=STR, user_info=STR, group_id=STR))),
        (*PARAMS, ErrorCode.USER_NOT_EXIST),
        methods=("get", "post"),
    ),
    Operation(
        f"{V2_FACESET}/group/getlist",
        "The app's groups that hold users",
        (
            Param("start", "integer", minimum=0, default=0),
            Param(
                "end", "integer", description="a count", minimum=0, maximum=v2_faceset.MAX_PAGE, default=100
            ),
        ),
        obj(result_num=INT, result=arr(STR)),
        PARAMS,
        methods=("get", "post"),
    ),
    Operation(
        f"{V2_FACESET}/group/getusers",
        "A group's users",
        (
            Param("group_id", "string", True, max_length=MAX_GROUP_CHARS, pattern=ID),
            Param("start", "integer", minimum=0, default=0),
            Param(
                "end", "integer", description="a count", minimum=0, maximum=v2_faceset.MAX_PAGE, default=100
            ),
        ),
        obj(result_num=INT, result=arr(obj(uid=STR, user_info=STR))),
        (*PARAMS, ErrorCode.NO_USER_IN_GROUP),
        methods=("get", "post"),
    ),
    Operation(
        f"{V2_FACESET}/group/adduser",
        "Copy a user's record into other groups",
        (V2_UID, V2_GROUPS, Param("src_group_id", "string", True, max_length=MAX_GROUP_CHARS, pattern=ID)),
        obj(),
        (*PARAMS, ErrorCode.USER_NOT_EXIST, ErrorCode.USER_EXISTS, ErrorCode.FAIL_TO_ADD_USER),
    ),
    Operation(
        f"{V2_FACESET}/group/deleteuser",
        "Remove a user from groups (not its last)",
        (V2_UID, V2_GROUPS),
        obj(),
        (*PARAMS, ErrorCode.USER_NOT_EXIST, ErrorCode.USER_MUST_BE_IN_ONE_GROUP),
    ),
    # v3 ---------------------------------------------------------------------------------------------
    Operation(
        f"{V3}/detect",
        "Detect faces: boxes, angles, landmarks and attributes; each face gets a face_token",
        (
            V3_IMAGE,
            V3_IMAGE_TYPE,
            V3_FACE_FIELD,
            Param("max_face_num", "integer", minimum=1, maximum=v3_faces.MAX_FACES, default=1),
            Param(
                "face_sort_type",
                "integer",
                description="0 by area, 1 by distance to the centre",
                minimum=0,
                maximum=1,
            ),
            Param(
                "display_corp_image",
                "integer",
                description="1: each face's crop as base64",
                minimum=0,
                maximum=1,
            ),
            *V3_CONTROLS,
        ),
        obj(face_num=INT, face_list=arr(V3_FACE)),
        (*PARAMS, *V3_IMAGE_ERRORS),
        body="json",
    ),
    Operation(
        f"{V3}/match",
        "Compare the largest faces of two images; the body is a JSON array of two objects",
        (V3_IMAGE, V3_IMAGE_TYPE, *V3_CONTROLS),
        obj(score=NUM, face_list=arr(obj(face_token=STR))),
        (*PARAMS, *V3_IMAGE_ERRORS, ErrorCode.NOT_ENOUGH_IMAGES, *V3_CONTROL_ERRORS),
        body="json-array",
    ),
    Operation(
        f"{V3}/search",
        "1:N search of up to 10 groups, or 1:1 against one user with user_id",
        (
            V3_IMAGE,
            V3_IMAGE_TYPE,
            V3_GROUP_LIST,
            *V3_CONTROLS,
            Param("user_id", "string", max_length=MAX_UID_BYTES, pattern=ID),
            Param("max_user_num", "integer", minimum=1, maximum=v3_search.MAX_USERS, default=1),
            Param("match_threshold", "integer", minimum=0, maximum=100, default=v3_search.SEARCH_THRESHOLD),
        ),
        obj(face_token=STR, user_list=arr(V3_USER)),
        (
            *PARAMS,
            *V3_IMAGE_ERRORS,
            *V3_CONTROL_ERRORS,
            ErrorCode.MATCH_USER_NOT_FOUND,
            ErrorCode.GROUP_LIST_TOO_LARGE,
            ErrorCode.NO_USER_IN_GROUP,
        ),
        body="json",
    ),
    Operation(
        f"{V3}/multi-search",
        "M:N search: every face of a photo, in one pass over each gallery",
        (
            V3_IMAGE,
            V3_IMAGE_TYPE,
            V3_GROUP_LIST,
            *V3_CONTROLS,
            Param("max_face_num", "integer", minimum=1, maximum=v3_search.MAX_MULTI_FACES, default=1),
            Param("max_user_num", "integer", minimum=1, maximum=v3_search.MAX_MULTI_USERS, default=1),
            Param(
                "match_threshold", "integer", minimum=0, maximum=100, default=v3_search.MULTI_SEARCH_THRESHOLD
            ),
        ),
        obj(face_num=INT, face_list=arr(obj(face_token=STR, location=V3_LOCATION, user_list=arr(V3_USER)))),
        (*PARAMS, *V3_IMAGE_ERRORS, ErrorCode.GROUP_LIST_TOO_LARGE, ErrorCode.NO_USER_IN_GROUP),
        body="json",
    ),
    Operation(
        f"{V3}/faceverify",
        "Liveness of 1 to 8 images; the body is a JSON array of image objects",
        (
            V3_IMAGE,
            V3_IMAGE_TYPE,
            V3_FACE_FIELD,
            Param("option", "string", enum=v3_faces.OPTIONS, default="COMMON"),
        ),
        obj(face_liveness=NUM, thresholds={"type": "object"}, face_list=arr(V3_FACE)),
        (*PARAMS, *V3_IMAGE_ERRORS, ErrorCode.NOT_ENOUGH_IMAGES),
        body="json-array",
    ),
    *(
        Operation(
            f"{V3}/faceset/user/{action}",
            summary,
            (
                V3_IMAGE,
                V3_IMAGE_TYPE,
                V3_GROUP,
                V3_USER_ID,
                Param("user_info", "string", max_length=MAX_USER_INFO_BYTES),
                *V3_CONTROLS,
                Param("action_type", "string", enum=actions),
            ),
            obj(face_token=STR, location=V3_LOCATION),
            (
                *PARAMS,
                *V3_IMAGE_ERRORS,
                *V3_CONTROL_ERRORS,
                ErrorCode.IMAGE_EXISTED,
                ErrorCode.USER_NOT_EXIST,
                ErrorCode.FAIL_TO_ADD_USER,
                ErrorCode.DB_ERROR,
            ),
            body="json",
        )
        for action, summary, actions in (
            ("add", "Register a photo's largest face for a user in a group", ("APPEND", "REPLACE")),
            ("update", "Replace a user's faces in a group", ("UPDATE", "REPLACE")),
        )
    ),
    Operation(
        f"{V3}/faceset/user/get",
        "A user's groups and user_info",
        (V3_USER_ID, V3_GROUP_OR_ALL),
        obj(user_list=arr(obj(user_info=STR, group_id=STR))),
        (*PARAMS, *LIBRARY),
        body="json",
    ),
    Operation(
        f"{V3}/faceset/user/copy",
        "Copy a user into an existing group",
        (
            V3_USER_ID,
            Param("src_group_id", "string", True, pattern=ID),
            Param("dst_group_id", "string", True, pattern=ID),
        ),
        {"type": "null"},
        (*PARAMS, *LIBRARY, ErrorCode.DST_GROUP_NOT_EXIST, ErrorCode.USER_EXISTS),
        body="json",
    ),
    Operation(
        f"{V3}/faceset/user/delete",
        "Delete a user from a group, or from every group with @ALL",
        (V3_GROUP_OR_ALL, V3_USER_ID),
        {"type": "null"},
        (*PARAMS, *LIBRARY),
        body="json",
    ),
    Operation(
        f"{V3}/faceset/face/getlist",
        "A user's faces in a group",
        (V3_USER_ID, V3_GROUP),
        obj(face_list=arr(obj(face_token=STR, ctime=STR))),
        (*PARAMS, *LIBRARY),
        body="json",
    ),
    Operation(
        f"{V3}/faceset/face/delete",
        "Delete one face (the user goes with its last)",
        (
            V3_USER_ID,
            V3_GROUP,
            Param("face_token", "string", True, "32 hex digits", pattern="^[0-9a-f]{32}$"),
        ),
        {"type": "null"},
        (*PARAMS, *LIBRARY, ErrorCode.FACE_NOT_EXIST),
        body="json",
    ),
    Operation(
        f"{V3}/faceset/group/add",
        "Create an empty group",
        (V3_GROUP,),
        {"type": "null"},
        (*PARAMS, ErrorCode.GROUP_EXISTS, ErrorCode.DB_ERROR),
        body="json",
    ),
    Operation(
        f"{V3}/faceset/group/delete",
        "Delete a group with its users and faces",
        (V3_GROUP,),
        {"type": "null"},
        (*PARAMS, ErrorCode.NO_USER_IN_GROUP, ErrorCode.DB_ERROR),
        body="json",
    ),
    Operation(
        f"{V3}/faceset/group/getlist",
        "The app's groups",
        V3_PAGE,
        obj(group_id_list=arr(STR)),
        PARAMS,
        body="json",
    ),
    Operation(
        f"{V3}/faceset/group/getusers",
        "A group's user ids",
        (V3_GROUP, *V3_PAGE),
        obj(user_id_list=arr(STR)),
        (*PARAMS, ErrorCode.NO_USER_IN_GROUP),
        body="json",
    ),
)


def _request_body(operation: Operation) -> dict[str, Any]:
    fields = obj(**{param.name: param.schema() for param in operation.params})
    required = [param.name for param in operation.params if param.required]
    if required:
        fields["required"] = required
    example = examples.REQUESTS[operation.path]
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


def openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for operation in OPERATIONS:
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
                example = examples.REQUESTS[operation.path]
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
