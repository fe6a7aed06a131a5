"""The face operations both protocols share: read an image, find and examine its faces, name them.

Every method here blocks (decoding, models, the store) and runs in the inference pool, never on the
event loop. Protocol adapters (api/v2, api/v3) parse their requests into these calls and shape what
comes back; neither holds any of this logic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

from renlian.core.controls import NO_CONTROLS, Controls, failure
from renlian.core.facetokens import TOKEN, FaceTokenCache, Location, face_token, origin_of, with_origin
from renlian.core.fetch import ImageFetcher
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.faces import crop_jpeg
from renlian.library.library import FaceLibrary
from renlian.store.base import NewFace
from renlian.vision.analyzer import Examined, FaceAnalyzer
from renlian.vision.faces import Face
from renlian.vision.image import BGRImage, ImageLimits, decode_base64, decode_bytes

IMAGE_TYPES = ("BASE64", "URL", "FACE_TOKEN")
# A token's face is its aligned 112 px crop; framed by this much, the detector finds it again.
TOKEN_FRAME = 56


@dataclass(frozen=True)
class ImageRef:
    """An image as a v3 request names it: `image` and its `image_type`; a URL's bytes once fetched."""

    kind: str
    value: str
    downloaded: bytes | None = None


@dataclass(frozen=True)
class Photo:
    """Pixels to analyse, and the checksum its faces' tokens derive from.

    For an image named by a face_token the pixels are that face's aligned crop, framed, and the
    checksum starts with the token itself, so the face found there keeps its token; `origin` is
    where that face lay in the photo it was first seen in (None if its crop was kept without one).
    """

    sha256: str
    data: bytes
    pixels: BGRImage
    from_token: bool = False
    origin: Location | None = None

    def token(self, rank: int) -> str:
        return face_token(self.sha256, rank)

    def recorded(self, rank: int, face: Face) -> Location | None:
        """Where the face of `rank` lies in the photo it came from, as its token keeps it: measured
        here for a photo, the recorded origin for a token's face (the crop's frame says nothing
        about where the face was)."""
        if self.from_token and rank == 0:
            return self.origin
        height, width = self.pixels.shape[:2]
        return Location.of(face, width, height)

    def location(self, rank: int, face: Face) -> Location:
        """What a call reports as the face's location: the recorded one, or, for a token whose crop
        was kept without one, the box in the framed crop."""
        height, width = self.pixels.shape[:2]
        return self.recorded(rank, face) or Location.of(face, width, height)


@dataclass(frozen=True)
class SeenFace:
    face: Face
    token: str
    location: Location


@dataclass(frozen=True)
class Probe:
    """A face examined for recognition, with its token, its crop as kept for the token, and its
    location in the photo it came from."""

    examined: Examined
    token: str
    crop_jpeg: bytes
    location: Location


class FaceOperations:
    def __init__(
        self,
        analyzer: FaceAnalyzer,
        library: FaceLibrary,
        limits: ImageLimits,
        fetcher: ImageFetcher,
        tokens: FaceTokenCache,
    ) -> None:
        self.analyzer = analyzer
        self.library = library
        self.limits = limits
        self.fetcher = fetcher
        self.tokens = tokens

    # Images -------------------------------------------------------------------------------------

    def photo(self, app_id: str, ref: ImageRef) -> Photo:
        """Resolve an image of any type, with the same checks for all (BASE64 and a download go
        through the same decoder and limits)."""
        if ref.kind == "BASE64":
            return self.base64_photo(ref.value)
        if ref.kind == "URL":
            data = ref.downloaded if ref.downloaded is not None else self.fetcher.fetch(ref.value)
            return Photo(hashlib.sha256(data).hexdigest(), data, decode_bytes(data, self.limits))
        if ref.kind == "FACE_TOKEN":
            return self._token_photo(app_id, ref.value)
        raise FaceApiError(
            ErrorCode.INVALID_PARAM, f"image_type must be one of {', '.join(IMAGE_TYPES)}", field="image_type"
        )

    def download(self, ref: ImageRef) -> ImageRef:
        """A URL image's bytes fetched (blocking network I/O, for a thread outside the inference
        pool, so a slow server never holds a worker); other images as they are."""
        if ref.kind != "URL" or ref.downloaded is not None:
            return ref
        return ImageRef(ref.kind, ref.value, self.fetcher.fetch(ref.value))

    def base64_photo(self, text: str) -> Photo:
        data = decode_base64(text)
        return Photo(hashlib.sha256(data).hexdigest(), data, decode_bytes(data, self.limits))

    def _token_photo(self, app_id: str, token: str) -> Photo:
        if not TOKEN.fullmatch(token):
            raise FaceApiError(ErrorCode.INVALID_PARAM, "a face_token is 32 hex digits", field="face_token")
        cached = self.tokens.get(app_id, token)
        crop = cached.crop_jpeg if cached is not None else self.library.store.crop_by_token(app_id, token)
        if crop is None:
            raise FaceApiError(
                ErrorCode.FACE_TOKEN_NOT_EXIST, "no face of this app has that token, or it expired"
            )
        aligned = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
        if aligned is None:
            raise RuntimeError(f"the kept crop of face_token {token} cannot be decoded")
        framed = cv2.copyMakeBorder(aligned, *(TOKEN_FRAME,) * 4, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        # A checksum that starts with the token: the face found in the frame is named by it again.
        checksum = token + hashlib.sha256(token.encode()).hexdigest()[:32]
        return Photo(checksum, crop, framed, from_token=True, origin=origin_of(crop))

    def _remember(self, app_id: str, token: str, aligned: BGRImage, origin: Location | None) -> bytes:
        """Keep a face's crop, with where it lay in its photo, for its token; the JPEG is returned,
        so an enrolment stores the same bytes rather than encoding the crop again."""
        jpeg = with_origin(crop_jpeg(aligned), origin)
        self.tokens.put(app_id, token, jpeg)
        return jpeg

    # Faces --------------------------------------------------------------------------------------

    def faces(
        self,
        photo: Photo,
        max_faces: int,
        *,
        landmarks: bool,
        attributes: frozenset[str],
        mesh: bool = False,
    ) -> list[Face]:
        """The largest faces with pose (and landmarks, the face mesh and attributes if asked for),
        unnamed: v2 detect's answer, and what `detect` names."""
        return self.analyzer.detect(
            photo.pixels, max_faces, landmarks=landmarks, attributes=attributes, mesh=mesh
        )

    def liveness(self, photo: Photo, face: Face) -> float:
        """The face's passive liveness score (v3 faceverify's livemapscore)."""
        return self.analyzer.liveness_score(photo.pixels, face)

    def detect(
        self,
        app_id: str,
        photo: Photo,
        max_faces: int,
        *,
        landmarks: bool,
        attributes: frozenset[str],
        mesh: bool = False,
        controls: Controls = NO_CONTROLS,
    ) -> list[SeenFace]:
        """The largest faces with pose (and landmarks, the face mesh and attributes if asked for), each
        named by a token that later calls can use; faces failing `controls` are left out."""
        faces = self.faces(photo, max_faces, landmarks=landmarks, attributes=attributes, mesh=mesh)
        seen = []
        for rank, face in enumerate(faces):
            aligned = self.analyzer.aligned(photo.pixels, face)
            if controls.needs_liveness or controls.needs_qualities:
                live, qualities = self.analyzer.judge(
                    photo.pixels,
                    face,
                    aligned,
                    liveness=controls.needs_liveness,
                    qualities=controls.needs_qualities,
                )
                if failure(controls, qualities, live) is not None:
                    continue
            token = photo.token(rank)
            self._remember(app_id, token, aligned, photo.recorded(rank, face))
            seen.append(SeenFace(face, token, photo.location(rank, face)))
        return seen

    def probe(
        self,
        app_id: str,
        photo: Photo,
        controls: Controls,
        *,
        pose: bool = False,
        liveness: bool = False,
        qualities: bool = False,
    ) -> Probe:
        """The largest face examined for recognition; its controls' failure is the call's error.
        `liveness` and `qualities` measure them without a threshold (v2 reports them)."""
        face = self.analyzer.largest_face(photo.pixels)
        examined = self.analyzer.examine(
            photo.pixels,
            face,
            liveness=liveness or controls.needs_liveness,
            qualities=qualities or controls.needs_qualities,
            pose=pose,
        )
        problem = failure(controls, examined.qualities, examined.liveness)
        if problem is not None:
            raise problem
        return self._probe(app_id, photo, 0, examined)

    def probes(self, app_id: str, photo: Photo, max_faces: int, controls: Controls) -> list[Probe]:
        """Up to `max_faces` faces examined for recognition; those failing their controls are dropped
        (v3 multi-search's rule), and no face at all is 222202."""
        faces = self.analyzer.find_faces(photo.pixels)[:max_faces]
        if not faces:
            raise FaceApiError(ErrorCode.FACE_NOT_FOUND)
        found = []
        for rank, face in enumerate(faces):
            examined = self._examine(photo, face, controls, pose=True)
            if failure(controls, examined.qualities, examined.liveness) is None:
                found.append(self._probe(app_id, photo, rank, examined))
        return found

    def _probe(self, app_id: str, photo: Photo, rank: int, examined: Examined) -> Probe:
        token = photo.token(rank)
        jpeg = self._remember(app_id, token, examined.aligned, photo.recorded(rank, examined.face))
        return Probe(examined, token, jpeg, photo.location(rank, examined.face))

    def _examine(self, photo: Photo, face: Face, controls: Controls, *, pose: bool) -> Examined:
        return self.analyzer.examine(
            photo.pixels,
            face,
            liveness=controls.needs_liveness,
            qualities=controls.needs_qualities,
            pose=pose,
        )

    def enrolment(
        self, app_id: str, photo: Photo, controls: Controls, *, pose: bool = False
    ) -> tuple[NewFace, Probe]:
        """What the library stores of a photo's largest face, which must pass its controls; with
        `pose`, the face's head pose too (v3 answers the box's rotation)."""
        probe = self.probe(app_id, photo, controls, pose=pose)
        face = NewFace(photo.sha256, self.analyzer.embedder.name, probe.examined.embedding, probe.crop_jpeg)
        return face, probe
