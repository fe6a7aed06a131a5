"""Every operation declared once: its parameters, the code each bad or missing value gets, its answer.

A route declares its `Operation` beside itself and reads its request with `Operation.read`, which
parses and checks every declared parameter, in declaration order, and hands back typed `Values`; a
parameter the declaration does not name cannot be read. /openapi.json and /docs (reference.py) are
generated from the same declarations, and tests/api/test_operation.py sends every declared parameter
a wrong, an out-of-range and a missing value and expects the declared code. Checks that join several
parameters or the request's images (how many images a field holds) stay with the route or the core.

Baidu's bodies are forms or loosely typed JSON whose values arrive as text (body.py), so a parameter
is text checked here, not a FastAPI model, which would answer its own codes rather than Baidu's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

from fastapi import APIRouter

from renlian.api.params import Params
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.ids import ID_PATTERN, MAX_GROUP_CHARS, MAX_UID_BYTES, MAX_USER_INFO_BYTES

T = TypeVar("T")
Failure = Literal["invalid", "over", "missing"]
# ASCII digits only: str.isdigit() also admits "²" and full-width digits, which int() rejects.
_UINT = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class Param(Generic[T]):
    """One parameter. Its value is text (form field, query item or JSON value as body.py writes it);
    blank or absent is missing (an error when `required`) or `default`, except with `keep_blank`,
    where "" is a value. The facets are checked in this order, each failure with its code:
    `kind` integer (digits), `enum` (each comma-separated item when `many`), `pattern` (the whole
    value): `invalid`; `minimum`/`maximum`, `max_length` (UTF-8 bytes), `max_items`: `over` (by
    default `invalid`). `convert` turns the checked text into the route's value."""

    name: str
    convert: Callable[[str], T]
    kind: Literal["string", "integer"] = "string"
    required: bool = False
    default: Any = None
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    max_items: int | None = None
    enum: tuple[str, ...] | None = None
    many: bool = False
    pattern: str | None = None
    # Other names the value may come under (Baidu's document says `images`, its SDK sends `image`).
    aliases: tuple[str, ...] = ()
    keep_blank: bool = False
    invalid: ErrorCode = ErrorCode.INVALID_PARAM
    over: ErrorCode | None = None
    missing: ErrorCode = ErrorCode.NOT_ENOUGH_PARAM

    def read(self, params: Params) -> T:
        raw = self._raw(params)
        if raw is None:
            if self.required:
                names = " or ".join((self.name, *self.aliases))
                raise FaceApiError(self.missing, f"{names} is required", field=self.name)
            return cast(T, self.default)
        self._check(raw)
        try:
            return self.convert(raw)
        except FaceApiError as exc:
            if exc.field is None:
                exc.field = self.name
            raise

    def _raw(self, params: Params) -> str | None:
        for name in (self.name, *self.aliases):
            value = params.values.get(name)
            if value:
                return value
        if self.keep_blank and params.values.get(self.name) == "":
            return ""
        return None

    def _fail(self, failure: Failure, detail: str) -> FaceApiError:
        return FaceApiError(self.error(failure), detail, field=self.name)

    def _check(self, raw: str) -> None:
        if self.kind == "integer":
            if not _UINT.fullmatch(raw.strip()):
                raise self._fail("invalid", f"{self.name} must be a whole number from {self.minimum or 0}")
            value = int(raw)
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise self._fail("over", f"{self.name} must be between {self.minimum} and {self.maximum}")
            return
        items = split(raw) if self.many else [raw]
        if self.enum is not None:
            unknown = sorted(set(items) - set(self.enum))
            if unknown:
                raise self._fail("invalid", f"{self.name} must be one of {', '.join(self.enum)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, raw):
            raise self._fail("invalid", f"{self.name}: {self.description or 'malformed'}")
        if self.max_length is not None and len(raw.encode()) > self.max_length:
            raise self._fail("over", f"{self.name} is longer than {self.max_length} bytes")
        if self.max_items is not None and len(split(raw)) > self.max_items:
            raise self._fail("over", f"at most {self.max_items} items in {self.name}")

    def error(self, failure: Failure) -> ErrorCode:
        if failure == "missing":
            return self.missing
        return self.over or self.invalid if failure == "over" else self.invalid

    def code(self, protocol: str, failure: Failure) -> int:
        """The code this protocol answers for a value that fails this way."""
        refused = FaceApiError(self.error(failure), field=self.name)
        return refused.error.code if protocol == "v2" else refused.v3()[0]

    def schema(self) -> dict[str, Any]:
        found: dict[str, Any] = {"type": self.kind}
        for key, value in (
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("maxLength", self.max_length),
            ("enum", list(self.enum) if self.enum and not self.many else None),
            ("pattern", f"^(?:{self.pattern})$" if self.pattern else None),
            ("default", self.default),
        ):
            if value is not None:
                found[key] = value
        description = self.description
        if self.many and self.enum:
            description = (
                f"{description + '; ' if description else ''}comma-separated: {', '.join(self.enum)}"
            )
        if self.max_items is not None:
            description = f"{description + '; ' if description else ''}at most {self.max_items}"
        if description:
            found["description"] = description
        return found


def split(raw: str) -> list[str]:
    """A comma-separated list's items, trimmed, blank ones skipped."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def _text(value: str) -> str:
    return value


def _integer(value: str) -> int:
    return int(value)


def text(name: str, *, required: bool = True, **facets: Any) -> Param[str]:
    return Param(name, _text, required=required, **facets)


def optional_text(name: str, **facets: Any) -> Param[str | None]:
    return Param(name, _text, **facets)


def integer(name: str, default: int, minimum: int, maximum: int, **facets: Any) -> Param[int]:
    return Param(name, _integer, "integer", default=default, minimum=minimum, maximum=maximum, **facets)


def choice(name: str, enum: Iterable[str], default: str, **facets: Any) -> Param[str]:
    return Param(name, _text, enum=tuple(enum), default=default, **facets)


def choices(name: str, enum: Iterable[str], **facets: Any) -> Param[list[str]]:
    return Param(name, split, enum=tuple(enum), many=True, default=[], **facets)


class Values:
    """An operation's parameters as read: only a parameter the operation declares can be looked up,
    by its declaration (another declaration under the same name would read a value it never checked)."""

    def __init__(self, found: dict[str, tuple[Param[Any], Any]]) -> None:
        self._found = found

    def __getitem__(self, param: Param[T]) -> T:
        declared, value = self._found.get(param.name, (None, None))
        if declared is not param:
            raise KeyError(f"{param.name} is not declared by this operation")
        return cast(T, value)


@dataclass(frozen=True)
class Operation:
    """One endpoint: its path, its parameters in the order they are checked, its answer (`result`,
    a JSON schema of what the envelope's result holds), the codes it can answer, its methods and
    its body (form: v2; json: v3, an object, also accepted as a form; json-array: v3 match and
    faceverify, one object per image)."""

    path: str
    summary: str
    params: tuple[Param[Any], ...]
    result: dict[str, Any]
    errors: tuple[ErrorCode, ...]
    methods: tuple[str, ...] = ("post",)
    body: Literal["form", "json", "json-array"] = "form"
    # Older paths served by the same route (v2 detect's /face/v1/), each its own reference entry.
    also: tuple[str, ...] = field(default=())

    @property
    def protocol(self) -> str:
        return "v3" if "/face/v3/" in self.path else "v2"

    @property
    def operation_id(self) -> str:
        return self.path.removeprefix("/rest/2.0/face/").replace("/", "_").replace("-", "_")

    def read(self, params: Params) -> Values:
        return Values({param.name: (param, param.read(params)) for param in self.params})

    def route(self, router: APIRouter) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Serve the decorated function at this operation's path(s) and methods."""

        def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            for path in (*self.also, self.path):
                router.api_route(path, methods=[method.upper() for method in self.methods])(endpoint)
            return endpoint

        return register

    def entries(self) -> list[Operation]:
        """The reference's entries: one per path."""
        return [
            Operation(path, self.summary, self.params, self.result, self.errors, self.methods, self.body)
            for path in (*self.also, self.path)
        ]


# Answer schemas ------------------------------------------------------------------------------------

STR = {"type": "string"}
NUM = {"type": "number"}
INT = {"type": "integer"}
NULL = {"type": "null"}


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def fields(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    """Several properties of one schema, for obj(**...)."""
    return dict.fromkeys(names, schema)


def arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


POINT = obj(x=NUM, y=NUM)
# The landmark fields both protocols answer in the same shape.
LANDMARKS = {"landmark": arr(POINT), "landmark72": arr(POINT)}

# Codes many operations share --------------------------------------------------------------------

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

# Baidu's ids, as the library keeps them (library/ids.py), declared for both protocols ---------------

ID = ID_PATTERN
# One group id; surrounding blanks are trimmed.
GROUP = rf"\s*[A-Za-z0-9_]{{1,{MAX_GROUP_CHARS}}}\s*"
GROUPS = rf"{GROUP}(?:,{GROUP})*"


def group_list(raw: str) -> list[str]:
    """A comma-separated group list's ids, each once, in order."""
    return list(dict.fromkeys(group.strip() for group in raw.split(",")))


def one_group(raw: str) -> str:
    return raw.strip()


def _uid_facets(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "pattern": ID,
        "max_length": MAX_UID_BYTES,
        "invalid": ErrorCode.INVALID_USERID,
    }


def user_id(name: str) -> Param[str]:
    """A user id (v2's uid, v3's user_id)."""
    return text(name, **_uid_facets(f"letters, digits and _, at most {MAX_UID_BYTES} bytes"))


def optional_user_id(name: str, description: str) -> Param[str | None]:
    return optional_text(name, **_uid_facets(description))


_USER_INFO: dict[str, Any] = {
    "description": f"at most {MAX_USER_INFO_BYTES} bytes",
    "max_length": MAX_USER_INFO_BYTES,
    "invalid": ErrorCode.INVALID_USER_INFO,
}


def user_info() -> Param[str]:
    return text("user_info", **_USER_INFO)


def optional_user_info() -> Param[str | None]:
    """user_info where it may be left out (kept as it is) or blank (cleared)."""
    return optional_text("user_info", keep_blank=True, **_USER_INFO)


def group(name: str, invalid: ErrorCode = ErrorCode.INVALID_GROUP_ID) -> Param[str]:
    """A parameter that names exactly one group."""
    return Param(
        name,
        one_group,
        required=True,
        description=f"letters, digits and _, at most {MAX_GROUP_CHARS}",
        pattern=GROUP,
        max_length=MAX_GROUP_CHARS,
        invalid=invalid,
    )


def groups(name: str, *, required: bool, **facets: Any) -> Param[list[str]]:
    """A comma-separated list of groups (a JSON array arrives comma-joined, body.py)."""
    return Param(
        name,
        group_list,
        required=required,
        pattern=GROUPS,
        invalid=ErrorCode.INVALID_GROUP_ID,
        **facets,
    )
