"""A reference model of the face library, for the randomized consistency test (issue 20, item 8).

Plain Python and no server: an app holds registered groups, a group holds users, a user holds faces,
and each face is a photo whose embedding was computed in this process from exactly the bytes the test
sends, decoded the way the server decodes them (renlian.vision.image.decode_bytes). Every write of the
v2 and v3 protocols (and `renlian import`) is a pure function from a state to the error code the
server must answer and the next state; every search is a brute-force scan of a state. The harness
(tests/consistency_harness.py) keeps a history of states per app and compares each server answer
with the states the freshness promise allows.

The photos: the tests ship four portraits, so a pool of distinct faces is made from them by seeded
augmentation (flip, rotation, scale, crop, brightness, contrast, JPEG quality). Each variant is kept
only if the detector finds a face in it, and its bytes and embedding are cached for the session.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from renlian.settings import Settings
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.image import decode_bytes
from renlian.vision.score import similarity_score

DATA = Path(__file__).parent / "data"
SOURCES = ("astronaut.jpg", "biden.jpg", "grace_hopper.jpg", "obama.jpg")
# Scores are Baidu's 0-100; the server's and this process's embeddings of the same pixels differ by
# float noise only (thread counts change summation order), far below this.
TOLERANCE = 0.05

# The codes the model predicts (v3 numbers for v3 calls, v2 numbers for v2 calls).
OK = 0
V2_DB_ERROR = 216300
V3_DB_ERROR = 222302
DB_ERRORS = frozenset({V2_DB_ERROR, V3_DB_ERROR})
V2_USER_NOT_EXIST = 216611
V2_IMAGE_EXISTED = 216616
V2_NO_USER_IN_GROUP = 216618
V3_GROUP_NOT_EXIST = 223100
V3_GROUP_EXISTS = 223101
V3_USER_EXISTS = 223102
V3_USER_NOT_EXIST = 223103
V3_FACE_EXISTS = 223105
V3_FACE_NOT_EXIST = 223106
V3_DST_GROUP_NOT_EXIST = 223111
V3_MATCH_USER_NOT_FOUND = 222207
QUOTA_TOTAL = 19
# Thresholds the endpoints use when the request names none (api/v3/search.py).
V3_SEARCH_THRESHOLD = 0.0
V3_MULTI_THRESHOLD = 80.0
# How many of a user's faces an answer scores (library.search_embeddings' faces_per_user).
FACES_PER_USER = 5

Embedding = NDArray[np.float32]


# Photos --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Photo:
    """One image file the test sends, and what the server must make of it: its checksum (what "the
    same image" means) and the embedding of each face, largest first (one for a portrait)."""

    name: str
    data: bytes
    sha256: str
    embeddings: tuple[Embedding, ...]

    @property
    def embedding(self) -> Embedding:
        return self.embeddings[0]

    @property
    def token(self) -> str:
        """The face_token of its largest face: the first 32 hex digits of the checksum."""
        return self.sha256[:32]

    @property
    def b64(self) -> str:
        return base64.b64encode(self.data).decode()


def _augment(image: NDArray[np.uint8], rng: random.Random) -> bytes:
    height, width = image.shape[:2]
    out = cv2.flip(image, 1) if rng.random() < 0.5 else image
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-12, 12), rng.uniform(0.85, 1.1))
    out = cv2.warpAffine(out, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    left, right = (int(rng.uniform(0, 0.1) * width) for _ in range(2))
    top, bottom = (int(rng.uniform(0, 0.1) * height) for _ in range(2))
    out = out[top : height - bottom, left : width - right]
    out = cv2.convertScaleAbs(out, alpha=rng.uniform(0.75, 1.25), beta=rng.uniform(-25, 25))
    if rng.random() < 0.3:
        factor = rng.uniform(0.6, 0.9)
        out = cv2.resize(out, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(60, 95)])
    assert ok
    return bytes(encoded.tobytes())


def _side_by_side(images: list[NDArray[np.uint8]]) -> bytes:
    height = 360
    scaled = [cv2.resize(i, (max(1, i.shape[1] * height // i.shape[0]), height)) for i in images]
    ok, encoded = cv2.imencode(".jpg", cv2.hconcat(scaled), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(encoded.tobytes())


class FacePool:
    """Distinct detectable faces made from the test photos, deterministic for a seed."""

    # Tries per wanted photo before giving up: an augmentation that hides the face is rare.
    ATTEMPTS = 10

    def __init__(self, seed: int, analyzer: FaceAnalyzer, size: int, composites: int) -> None:
        self.seed = seed
        self._analyzer = analyzer
        self._limits = Settings().image_limits()
        rng = random.Random(f"pool-{seed}")
        sources: list[NDArray[np.uint8]] = []
        for name in SOURCES:
            image = cv2.imread(str(DATA / name))
            assert image is not None, name
            sources.append(np.asarray(image, np.uint8))
        seen: set[str] = set()
        self.photos: list[Photo] = []
        for number in range(size):
            for _ in range(self.ATTEMPTS):
                data = _augment(sources[number % len(sources)], rng)
                photo = self._examine(f"p{number}", data, minimum=1)
                if photo is not None and photo.sha256 not in seen:
                    seen.add(photo.sha256)
                    self.photos.append(photo)
                    break
            else:
                raise RuntimeError(f"seed {seed}: no detectable face in {self.ATTEMPTS} variants")
        # Group photos for multi-search: two or three portraits side by side.
        self.composites: list[Photo] = []
        for number in range(composites * self.ATTEMPTS):
            if len(self.composites) == composites:
                break
            parts = rng.sample(self.photos, rng.choice((2, 2, 3)))
            pixels = [decode_bytes(part.data, self._limits) for part in parts]
            photo = self._examine(f"c{number}", _side_by_side(pixels), minimum=2)
            if photo is not None:
                self.composites.append(photo)

    def _examine(self, name: str, data: bytes, *, minimum: int) -> Photo | None:
        """The photo with every face's embedding, as the server computes them: decode_bytes, the
        detector's faces largest first, each aligned and embedded (FaceAnalyzer.examine)."""
        pixels = decode_bytes(data, self._limits)
        faces = self._analyzer.find_faces(pixels)
        if len(faces) < minimum:
            return None
        embeddings = tuple(
            np.asarray(
                self._analyzer.examine(pixels, face, liveness=False, qualities=False).embedding, np.float32
            )
            for face in faces
        )
        return Photo(name, data, hashlib.sha256(data).hexdigest(), embeddings)


# States --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    info: str
    faces: tuple[Photo, ...]


@dataclass(frozen=True)
class State:
    """One app's face library. Never changed in place: a write makes a new State that shares the
    untouched groups, so a history of every state is cheap."""

    groups: dict[str, dict[str, User]] = field(default_factory=dict)

    def registered(self, group: str) -> bool:
        return group in self.groups

    def user(self, group: str, uid: str) -> User | None:
        return self.groups.get(group, {}).get(uid)

    def groups_of(self, uid: str) -> list[str]:
        return [group for group, users in self.groups.items() if uid in users]

    def with_group(self, group: str, users: dict[str, User] | None) -> State:
        groups = dict(self.groups)
        if users is None:
            groups.pop(group, None)
        else:
            groups[group] = users
        return State(groups)

    def face_count(self) -> int:
        return sum(len(user.faces) for users in self.groups.values() for user in users.values())

    def faces(self, groups: Iterable[str] | None = None) -> set[tuple[str, str, str]]:
        """(group, uid, checksum) of every face, in `groups` or all."""
        names = self.groups if groups is None else [g for g in groups if g in self.groups]
        return {
            (group, uid, photo.sha256)
            for group in names
            for uid, user in self.groups[group].items()
            for photo in user.faces
        }

    def projection(self, groups: Iterable[str]) -> dict[str, dict[str, tuple[str, frozenset[str]]] | None]:
        """What the store's read endpoints show of `groups`: None for a group that is not registered,
        else each user's info and face tokens. Settling an unknown write compares this with a read."""
        shown: dict[str, dict[str, tuple[str, frozenset[str]]] | None] = {}
        for group in groups:
            users = self.groups.get(group)
            shown[group] = (
                None
                if users is None
                else {
                    uid: (user.info, frozenset(photo.token for photo in user.faces))
                    for uid, user in users.items()
                }
            )
        return shown


# Writes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One write as the test sends it. `kind` names the endpoint; the other fields are its parameters."""

    kind: str
    group: str = ""
    groups: tuple[str, ...] = ()
    uid: str = ""
    photo: Photo | None = None
    info: str | None = None
    action: str = ""
    dst: str = ""
    token: str = ""
    # `renlian import`: (uid, photos) in the order of the folders.
    imported: tuple[tuple[str, tuple[Photo, ...]], ...] = ()

    def describe(self) -> str:
        parts = [self.kind]
        if self.group:
            parts.append(f"group={self.group}")
        if self.groups:
            parts.append(f"groups={','.join(self.groups)}")
        if self.uid:
            parts.append(f"uid={self.uid}")
        if self.dst:
            parts.append(f"dst={self.dst}")
        if self.photo is not None:
            parts.append(f"photo={self.photo.name}")
        if self.action:
            parts.append(self.action)
        if self.info is not None:
            parts.append(f"info={self.info!r}")
        if self.token:
            parts.append(f"token={self.token[:8]}")
        if self.imported:
            parts.append(
                "import="
                + ";".join(f"{uid}:{'+'.join(p.name for p in photos)}" for uid, photos in self.imported)
            )
        return " ".join(parts)

    def footprint(self, state: State) -> set[str]:
        """The groups this write may change, given the state before it."""
        if self.kind in ("v3-delete", "v2-delete") and not (self.group or self.groups):
            return set(state.groups_of(self.uid))
        names = {self.group, self.dst, *self.groups} - {""}
        return names


def _append(user: User, photo: Photo) -> User:
    return User(user.info, (*user.faces, photo))


def apply(state: State, write: Write) -> tuple[int, State]:
    """The code the server must answer `write` with, and the state after it (unchanged on an error:
    every write is one transaction)."""
    kind = write.kind
    if kind in ("v3-add", "v3-update"):
        assert write.photo is not None
        return _v3_enrol(state, write, write.photo)
    if kind == "v3-delete":
        if write.group:
            if not state.registered(write.group):
                return V3_GROUP_NOT_EXIST, state
            targets = [write.group] if state.user(write.group, write.uid) else []
        else:
            targets = state.groups_of(write.uid)
        if not targets:
            return V3_USER_NOT_EXIST, state
        return OK, _remove(state, write.uid, targets)
    if kind == "v3-copy":
        src, dst = write.group, write.dst
        if not state.registered(src):
            return V3_GROUP_NOT_EXIST, state
        if not state.registered(dst):
            return V3_DST_GROUP_NOT_EXIST, state
        user = state.user(src, write.uid)
        if user is None:
            return V3_USER_NOT_EXIST, state
        if state.user(dst, write.uid) is not None:
            return V3_USER_EXISTS, state
        return OK, state.with_group(dst, {**state.groups[dst], write.uid: user})
    if kind == "v3-group-add":
        if state.registered(write.group):
            return V3_GROUP_EXISTS, state
        return OK, state.with_group(write.group, {})
    if kind == "v3-group-delete":
        if not state.registered(write.group):
            return V3_GROUP_NOT_EXIST, state
        return OK, state.with_group(write.group, None)
    if kind == "v3-face-delete":
        return _face_delete(state, write)
    if kind == "v2-add":
        return _v2_add(state, write)
    if kind == "v2-delete":
        present = state.groups_of(write.uid)
        targets = present if not write.groups else [g for g in write.groups if g in present]
        if not targets:
            return V2_USER_NOT_EXIST, state
        return OK, _remove(state, write.uid, targets)
    if kind == "import":
        return OK, _import(state, write)
    raise ValueError(f"unknown write {kind}")


def _v3_enrol(state: State, write: Write, photo: Photo) -> tuple[int, State]:
    """user/add (APPEND, REPLACE) and user/update (UPDATE, REPLACE): one photo into one group; a
    photo already in the group, whoever holds it, is 223105 (v3's unique_in_group)."""
    group, uid = write.group, write.uid
    users = dict(state.groups.get(group, {}))
    user = users.get(uid)
    replace = write.kind == "v3-update" or write.action == "REPLACE"
    if user is None:
        if write.kind == "v3-update" and write.action != "REPLACE":
            return V3_USER_NOT_EXIST, state
        user = User(write.info or "", ())
    elif write.info is not None:
        user = User(write.info, user.faces)
    if replace:
        user = User(user.info, ())
    others = [p for u, held in users.items() if u != uid for p in held.faces] + list(user.faces)
    if any(p.sha256 == photo.sha256 for p in others):
        return V3_FACE_EXISTS, state
    users[uid] = _append(user, photo)
    return OK, state.with_group(group, users)


def _v2_add(state: State, write: Write) -> tuple[int, State]:
    """v2 user/add into each group: the same photo twice for one uid is 216616 (for two uids it is
    allowed in v2, unlike v3)."""
    assert write.photo is not None and write.info is not None
    new = state
    for group in dict.fromkeys(write.groups):
        users = dict(new.groups.get(group, {}))
        held = users.get(write.uid)
        user = User(write.info, () if held is None or write.action == "replace" else held.faces)
        if any(p.sha256 == write.photo.sha256 for p in user.faces):
            return V2_IMAGE_EXISTED, state
        users[write.uid] = _append(user, write.photo)
        new = new.with_group(group, users)
    return OK, new


def _face_delete(state: State, write: Write) -> tuple[int, State]:
    group, uid = write.group, write.uid
    if not state.registered(group):
        return V3_GROUP_NOT_EXIST, state
    user = state.user(group, uid)
    if user is None:
        return V3_USER_NOT_EXIST, state
    kept = tuple(p for p in user.faces if not p.sha256.startswith(write.token))
    if len(kept) == len(user.faces):
        return V3_FACE_NOT_EXIST, state
    users = dict(state.groups[group])
    if kept:
        users[uid] = User(user.info, kept)
    else:  # the record goes with its last face; the group stays
        del users[uid]
    return OK, state.with_group(group, users)


def _remove(state: State, uid: str, groups: list[str]) -> State:
    for group in groups:
        users = dict(state.groups[group])
        del users[uid]
        state = state.with_group(group, users)
    return state


def _import(state: State, write: Write) -> State:
    """`renlian import`: each photo appended to its folder's uid, whose user_info becomes the uid."""
    users = dict(state.groups.get(write.group, {}))
    added = 0
    for uid, photos in write.imported:
        for photo in photos:
            held = users.get(uid)
            faces = () if held is None else held.faces
            if any(p.sha256 == photo.sha256 for p in faces):
                continue  # already enrolled for that uid: import skips it
            users[uid] = User(uid, (*faces, photo))
            added += 1
    # Each photo is its own transaction: with none enrolled, not even the group is registered.
    return state.with_group(write.group, users) if added else state


# Searches ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    group: str
    uid: str
    info: str
    score: float
    faces: tuple[float, ...] = ()  # the user's best face scores, best first (v2 identify answers them)


@dataclass(frozen=True)
class Answer:
    """A search answer reduced to what is compared: its code, and per probe face the users found."""

    code: int
    faces: tuple[tuple[Hit, ...], ...] = ()

    def describe(self) -> str:
        if self.code:
            return f"error {self.code}"
        return " | ".join(
            ", ".join(f"{h.group}/{h.uid}:{h.score:.2f}" for h in hits) or "-" for hits in self.faces
        )


@dataclass(frozen=True)
class Query:
    """One search request: `kind` is v3-search, v3-multi or v2-identify."""

    kind: str
    groups: tuple[str, ...]
    probe: Photo
    limit: int
    threshold: float | None = None  # None: the endpoint's default
    only_uid: str = ""
    max_faces: int = 1

    def describe(self) -> str:
        extra = f" threshold={self.threshold:g}" if self.threshold is not None else ""
        extra += f" user_id={self.only_uid}" if self.only_uid else ""
        extra += f" max_face_num={self.max_faces}" if self.kind == "v3-multi" else ""
        return f"{self.kind} groups={','.join(self.groups)} probe={self.probe.name} limit={self.limit}{extra}"


@dataclass(frozen=True)
class Expected:
    code: int
    faces: tuple[tuple[Hit, ...], ...] = ()  # per probe face, every candidate, best first, not cut
    limit: int = 1
    threshold: float = 0.0
    not_found: int | None = None  # the code that says nobody reached the threshold (v3 search)
    face_scores: bool = False  # compare each user's face scores too (v2 identify)


Scorer = Callable[[float], float]


def scorer(recognizer: str, bias: float = 0.0) -> Scorer:
    """Cosine to Baidu's score as the server maps it; `bias` is only for sabotage runs that check
    that a wrong model is caught."""
    return lambda cosine: similarity_score(cosine, recognizer) + bias


def ranked(
    state: State, groups: Iterable[str], embedding: Embedding, score: Scorer, only_uid: str = ""
) -> tuple[Hit, ...]:
    """Every (group, uid) of `groups` holding a face, by its best face's score: the brute force."""
    query = embedding.astype(np.float64)
    hits = []
    for group in dict.fromkeys(groups):
        for uid, user in state.groups.get(group, {}).items():
            if (only_uid and uid != only_uid) or not user.faces:
                continue
            scores = sorted(
                (score(float(np.dot(photo.embedding.astype(np.float64), query))) for photo in user.faces),
                reverse=True,
            )
            hits.append(Hit(group, uid, user.info, scores[0], tuple(scores[:FACES_PER_USER])))
    hits.sort(key=lambda hit: -hit.score)
    return tuple(hits)


def expect(state: State, query: Query, score: Scorer, gate: State | None = None) -> Expected:
    """What the server must answer `query` with when its index and store hold `state`.

    Each endpoint first checks that the groups exist (v2 identify asks the index whether each holds
    a face, v3 asks the store whether each is registered), then searches. `gate` is the state that
    check sees when it differs from the searched one: an answer only a different `gate` explains
    is a mixed read."""
    gate = state if gate is None else gate
    if query.kind == "v2-identify":
        for group in query.groups:
            if not any(user.faces for user in gate.groups.get(group, {}).values()):
                return Expected(V2_NO_USER_IN_GROUP)
        hits = ranked(state, query.groups, query.probe.embedding, score)
        return Expected(OK, (hits,), query.limit, 0.0, None, face_scores=True)
    for group in query.groups:
        if not gate.registered(group):
            return Expected(V3_GROUP_NOT_EXIST)
    if query.kind == "v3-search":
        threshold = V3_SEARCH_THRESHOLD if query.threshold is None else query.threshold
        hits = ranked(state, query.groups, query.probe.embedding, score, query.only_uid)
        return Expected(OK, (hits,), query.limit, threshold, V3_MATCH_USER_NOT_FOUND)
    threshold = V3_MULTI_THRESHOLD if query.threshold is None else query.threshold
    faces = tuple(ranked(state, query.groups, e, score) for e in query.probe.embeddings[: query.max_faces])
    return Expected(OK, faces, query.limit, threshold, None)


InfoCheck = Callable[[str, str, str], bool]


def compare(
    answer: Answer, expected: Expected, tolerance: float = TOLERANCE, info_ok: InfoCheck | None = None
) -> list[str]:
    """What differs between a server's answer and the brute force (empty when they agree). Scores may
    differ by `tolerance`, and users whose scores are that close may come in either order or either
    side of the cut; `info_ok(group, uid, info)` judges user_info (the store is read at answer time,
    so it may be newer than the index an allowed stale answer was searched in)."""
    if expected.code != OK:
        return (
            []
            if answer.code == expected.code
            else [f"answered {answer.describe()}, expected error {expected.code}"]
        )
    if expected.not_found is not None and answer.code == expected.not_found:
        best = [c for c in expected.faces[0][: expected.limit] if c.score >= expected.threshold + tolerance]
        return (
            [
                f"answered {answer.code} (no match) but {best[0].group}/{best[0].uid} "
                f"scores {best[0].score:.4f}"
            ]
            if best
            else []
        )
    if answer.code != OK:
        return [f"answered error {answer.code}, expected a result"]
    if len(answer.faces) != len(expected.faces):
        return [f"{len(answer.faces)} probe faces answered, expected {len(expected.faces)}"]
    problems: list[str] = []
    for number, (got, candidates) in enumerate(zip(answer.faces, expected.faces, strict=True)):
        prefix = f"face {number}: " if len(expected.faces) > 1 else ""
        problems += [prefix + p for p in _compare_ranked(got, candidates, expected, tolerance, info_ok)]
    return problems


def _compare_ranked(
    got: tuple[Hit, ...],
    candidates: tuple[Hit, ...],
    expected: Expected,
    tolerance: float,
    info_ok: InfoCheck | None,
) -> list[str]:
    problems = []
    by_key = {(c.group, c.uid): c for c in candidates}
    sure = sum(1 for c in candidates if c.score >= expected.threshold + tolerance)
    maybe = sum(1 for c in candidates if c.score >= expected.threshold - tolerance)
    low, high = min(expected.limit, sure), min(expected.limit, maybe)
    if not low <= len(got) <= high:
        problems.append(f"{len(got)} users answered, expected {low}" + (f"-{high}" if high != low else ""))
    seen = set()
    for hit in got:
        key = (hit.group, hit.uid)
        if key in seen:
            problems.append(f"{hit.group}/{hit.uid} answered twice")
        seen.add(key)
        candidate = by_key.get(key)
        if candidate is None:
            problems.append(f"{hit.group}/{hit.uid} (score {hit.score:.4f}) holds no face in the model")
            continue
        if abs(hit.score - candidate.score) > tolerance:
            problems.append(
                f"{hit.group}/{hit.uid} scores {hit.score:.4f}, brute force {candidate.score:.4f}"
            )
        faces_differ = len(hit.faces) != len(candidate.faces) or any(
            abs(a - b) > tolerance for a, b in zip(hit.faces, candidate.faces, strict=False)
        )
        if expected.face_scores and faces_differ:
            problems.append(
                f"{hit.group}/{hit.uid} face scores {[round(s, 4) for s in hit.faces]}, "
                f"brute force {[round(s, 4) for s in candidate.faces]}"
            )
        if hit.score < expected.threshold - tolerance:
            problems.append(
                f"{hit.group}/{hit.uid} scores {hit.score:.4f}, below the threshold {expected.threshold:g}"
            )
        if info_ok is not None and not info_ok(hit.group, hit.uid, hit.info):
            problems.append(f"{hit.group}/{hit.uid} user_info {hit.info!r}, the model has {candidate.info!r}")
    for first, second in itertools.pairwise(got):
        if second.score > first.score + tolerance:
            problems.append(
                f"{second.group}/{second.uid} ({second.score:.4f}) ranked below "
                f"{first.group}/{first.uid} ({first.score:.4f})"
            )
    floor = min((hit.score for hit in got), default=float("inf"))
    for candidate in candidates:
        if (candidate.group, candidate.uid) in seen or candidate.score < expected.threshold + tolerance:
            continue
        if len(got) < expected.limit or candidate.score > floor + tolerance:
            problems.append(
                f"{candidate.group}/{candidate.uid} (brute force {candidate.score:.4f}) is missing"
            )
    return problems


# History -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    state: State
    acked_at: float  # time.monotonic() when the write was acknowledged (settled, or the import ended)
    note: str


class History:
    """Every state an app's library has been in, in the order the writes were acknowledged."""

    def __init__(self) -> None:
        self.versions: list[Version] = [Version(State(), float("-inf"), "empty")]

    @property
    def latest(self) -> State:
        return self.versions[-1].state

    @property
    def last(self) -> int:
        return len(self.versions) - 1

    def commit(self, state: State, at: float, note: str) -> int:
        self.versions.append(Version(state, at, note))
        return self.last

    def current_at(self, moment: float) -> int:
        """The newest version acknowledged at or before `moment`."""
        for number in range(self.last, -1, -1):
            if self.versions[number].acked_at <= moment:
                return number
        return 0


def changed_faces(
    old: State, new: State, groups: Iterable[str]
) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(faces of `groups` in `new` and not `old`, faces in `old` and not `new`)."""
    names = list(groups)
    before, after = old.faces(names), new.faces(names)
    return after - before, before - after
