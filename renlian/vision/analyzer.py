"""The face analyzer: every model the service runs, loaded once, used from many threads.

onnxruntime sessions are safe to run from several threads at once. The analyzer itself holds no
per-request state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from renlian.errors import ErrorCode, FaceApiError
from renlian.models.cache import ModelCache, verify_file
from renlian.models.registry import BUNDLED, MODELS
from renlian.models.runtime import ExecutionProvider, configure_opencv, use_execution_provider
from renlian.vision.attributes import LANDMARK_FIELDS, AttributeModel, Attributes, Qualities
from renlian.vision.backbone import FaceFeatures, FeatureBackbone
from renlian.vision.detector import YuNetDetector
from renlian.vision.faces import Face, Points, Pose
from renlian.vision.image import BGRImage
from renlian.vision.landmarks import Landmark106
from renlian.vision.liveness import ServedLiveness
from renlian.vision.measures import blur, illumination, incompleteness
from renlian.vision.mesh import FaceMesh
from renlian.vision.pose import PoseEstimator
from renlian.vision.recognizer import Embedder, Embedding, align, normalised
from renlian.vision.v3fields import V3_FIELDS, V3FieldModel

T = TypeVar("T")


def _ignore(model: str, seconds: float) -> None:
    pass


@dataclass(frozen=True)
class Examined:
    face: Face
    aligned: BGRImage
    embedding: Embedding
    liveness: float | None
    qualities: Qualities | None


@dataclass(frozen=True)
class AnalyzerConfig:
    recognizer: str
    threads: int
    detect_max_side: int
    detect_score_threshold: float
    execution_provider: ExecutionProvider = "cpu"


class FaceAnalyzer:
    def __init__(self, paths: dict[str, Path], config: AnalyzerConfig) -> None:
        self.detector = YuNetDetector(
            paths["yunet"],
            max_side=config.detect_max_side,
            score_threshold=config.detect_score_threshold,
            threads=config.threads,
        )
        self.landmarks = Landmark106(paths["landmark106"], threads=config.threads)
        self.mesh = FaceMesh(paths["facemesh"], paths["iris"], threads=config.threads)
        self.pose = PoseEstimator(paths["tddfa"], paths["tddfa_norm"], threads=config.threads)
        self.liveness = ServedLiveness(paths, threads=config.threads)
        self.backbone = FeatureBackbone(paths["sface"], paths["mbf"], threads=config.threads)
        self.embedder = Embedder(config.recognizer, self.backbone.nets[config.recognizer])
        self.attributes = AttributeModel(paths["attributes"])
        self.v3fields = V3FieldModel(paths["v3fields"])
        # Told each model call's duration (model name, seconds); the API layer feeds its metrics.
        self.observe: Callable[[str, float], None] = _ignore

    def _timed(self, model: str, run: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return run()
        finally:
            self.observe(model, time.perf_counter() - started)

    def find_faces(self, image: BGRImage) -> list[Face]:
        """Every face the detector finds, largest first."""
        return self._timed("yunet", lambda: self.detector.detect(image))

    def liveness_score(self, image: BGRImage, face: Face) -> float:
        return self._timed("liveness", lambda: self.liveness(image, face))

    def _pose(self, image: BGRImage, face: Face) -> Pose:
        return self._timed("tddfa", lambda: self.pose(image, face))

    def _embed(self, aligned: BGRImage) -> Embedding:
        return self._timed(self.embedder.name, lambda: self.embedder.embed(aligned))

    def _landmarks(self, image: BGRImage, face: Face) -> Points:
        return self._timed("landmark106", lambda: self.landmarks(image, face))

    def _mesh(self, image: BGRImage, face: Face) -> Points:
        return self._timed("facemesh", lambda: self.mesh(image, face))

    def _features(self, aligned: BGRImage) -> FaceFeatures:
        return self._timed("backbone", lambda: self.backbone(aligned))

    def detect(
        self,
        image: BGRImage,
        max_faces: int,
        *,
        landmarks: bool = False,
        attributes: frozenset[str] = frozenset(),
        mesh: bool = False,
    ) -> list[Face]:
        """The `max_faces` largest faces with head pose, and dense landmarks, the face mesh and
        attributes if asked for."""
        faces = self.find_faces(image)[:max_faces]
        for face in faces:
            face.pose = self._pose(image, face)
            if landmarks or attributes & LANDMARK_FIELDS:
                face.landmarks106 = self._landmarks(image, face)
            if mesh:
                face.mesh = self._mesh(image, face)
            if attributes:
                aligned = align(image, face.kps5)
                face.attributes = self._describe(image, face, attributes, aligned, self._features(aligned))
        return faces

    def _describe(
        self, image: BGRImage, face: Face, fields: frozenset[str], aligned: BGRImage, features: FaceFeatures
    ) -> Attributes:
        """The requested attribute fields of one face, from its aligned crop and one backbone pass."""
        measures = None
        if "qualities" in fields:
            measures = (
                blur(aligned, self.attributes.rules.blur_midpoint),
                illumination(image, face),
                incompleteness(image.shape, face.kps5),
            )
        described = self.attributes.predict(fields, features, face.landmarks106, measures)
        if fields & V3_FIELDS:
            self.v3fields.describe(fields, aligned, features, self._features, described)
        return described

    def aligned(self, image: BGRImage, face: Face) -> BGRImage:
        return align(image, face.kps5)

    def largest_face(self, image: BGRImage) -> Face:
        faces = self.find_faces(image)
        if not faces:
            raise FaceApiError(ErrorCode.FACE_NOT_FOUND)
        return faces[0]

    def embed_largest(self, image: BGRImage) -> Embedding:
        """The embedding of the image's largest face; FACE_NOT_FOUND if it has none."""
        return self.enrolment_face(image)[0]

    def enrolment_face(self, image: BGRImage) -> tuple[Embedding, BGRImage]:
        """The largest face's embedding and the aligned 112x112 crop it was computed from."""
        aligned = align(image, self.largest_face(image).kps5)
        return self._embed(aligned), aligned

    def probe(self, image: BGRImage, *, liveness: bool) -> tuple[Embedding, float | None]:
        """The largest face's embedding, and its liveness score if asked for, from one detection."""
        embedding, live, _ = self.inspect(image, liveness=liveness, qualities=False)
        return embedding, live

    def inspect(
        self, image: BGRImage, *, liveness: bool, qualities: bool
    ) -> tuple[Embedding, float | None, Qualities | None]:
        """`probe`, plus the face's qualities if asked for (match's ext_fields=qualities)."""
        found = self.examine(image, self.largest_face(image), liveness=liveness, qualities=qualities)
        return found.embedding, found.liveness, found.qualities

    def examine(
        self, image: BGRImage, face: Face, *, liveness: bool, qualities: bool, pose: bool = False
    ) -> Examined:
        """One detected face's embedding and aligned crop, and its liveness score, qualities and head
        pose if asked for: what recognition needs, and what v3's quality and liveness controls judge."""
        aligned = align(image, face.kps5)
        live = self.liveness_score(image, face) if liveness else None
        if pose:
            face.pose = self._pose(image, face)
        if not qualities:
            return Examined(face, aligned, self._embed(aligned), live, None)
        # One pass of the backbone gives the recognizer's embedding and the qualities' features.
        features, found = self._qualities(image, face, aligned)
        return Examined(face, aligned, normalised(features.embeddings[self.embedder.name]), live, found)

    def judge(
        self, image: BGRImage, face: Face, aligned: BGRImage, *, liveness: bool, qualities: bool
    ) -> tuple[float | None, Qualities | None]:
        """What v3's liveness and quality controls judge of a face, and no embedding: detect answers
        none, and the recognizer would be most of the cost of a liveness check. Qualities `detect`
        already measured for the answer (face_field=quality) are not measured again."""
        live = self.liveness_score(image, face) if liveness else None
        if not qualities:
            return live, None
        measured = face.attributes.qualities if face.attributes is not None else None
        return live, measured if measured is not None else self._qualities(image, face, aligned)[1]

    def _qualities(
        self, image: BGRImage, face: Face, aligned: BGRImage
    ) -> tuple[FaceFeatures, Qualities | None]:
        features = self._features(aligned)
        return features, self._describe(image, face, frozenset({"qualities"}), aligned, features).qualities


def load_analyzer(cache: ModelCache, config: AnalyzerConfig, *, progress: bool = False) -> FaceAnalyzer:
    """Fetch any missing model (verifying every checksum), then load them all."""
    configure_opencv(config.threads)
    use_execution_provider(config.execution_provider)
    paths = cache.ensure(list(MODELS.values()), progress=progress)
    for name, bundled in BUNDLED.items():
        paths[name] = verify_file(bundled.path, bundled.sha256, name)
    return FaceAnalyzer(paths, config)
