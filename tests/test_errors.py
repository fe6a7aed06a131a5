"""The one error table: each failure's v2 and v3 codes, and how a parameter picks its v3 code."""

from __future__ import annotations

from renlian.errors import V3_FIELD_ERRORS, ErrorCode, FaceApiError

# Every v3 code renlian may answer with, from ../shared/spec/baidu-face-api-v3.md §3 (copied here:
# the suite never reads ../shared), plus 216100, which the spec's sources show for v3 too.
V3_SPEC_CODES = {1, 2, 3, 4, 6, 15, 17, 18, 19, 100, 110, 111, 216100}
V3_SPEC_CODES |= set(range(222001, 222027)) | {222201, 222202, 222203, 222204, 222207, 222208, 222209}
V3_SPEC_CODES |= {222300, 222302} | set(range(223100, 223128))


def test_every_failure_has_a_spec_code_in_both_protocols() -> None:
    assert len({member.name for member in ErrorCode}) == len(list(ErrorCode))  # no aliases
    for member in ErrorCode:
        assert member.v3_code in V3_SPEC_CODES, member
        assert member.code in {4, 17, 18, 19, 100, 110, 111} or 216000 < member.code < 217000, member
    for code, message in V3_FIELD_ERRORS.values():
        assert code in V3_SPEC_CODES and message


def test_a_parameter_picks_its_v3_code() -> None:
    assert FaceApiError(ErrorCode.INVALID_PARAM, field="max_face_num").v3() == (
        222016,
        "param[max_face_num] format error",
    )
    assert FaceApiError(ErrorCode.NOT_ENOUGH_PARAM, field="image").v3() == (222001, "param[image] is null")
    # A parameter without a code of its own keeps v2's.
    assert FaceApiError(ErrorCode.INVALID_PARAM, field="match_threshold").v3() == (216100, "invalid param")
    assert FaceApiError(ErrorCode.DB_ERROR).v3() == (222302, "system error")
    assert FaceApiError(ErrorCode.DB_ERROR).error.code == 216300
    assert FaceApiError(ErrorCode.USER_EXISTS).message == "already add"
