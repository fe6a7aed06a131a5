"""The face analyzer: every model the service runs, loaded once, used from many threads.

onnxruntime sessions are safe to run from several threads at once; the detector keeps one OpenCV
object per thread. The analyzer itself holds no per-request state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from renlian.errors import ErrorCode, FaceApiError
from renlian.models.cache import ModelCache, verify_file
from renlian.models.registry import BUNDLED, models_for
from renlian.models.runtime import configure_opencv
from renlian.vision.detector import YuNetDetector
from renlian.vision.faces import Face
from renlian.vision.image import BGRImage
from renlian.vision.landmarks import Landmark106
from renlian.vision.liveness import LivenessScorer
from renlian.vision.pose import PoseEstimator
from renlian.vision.recognizer import Embedder, Embedding, align


@dataclass(frozen=True)
class AnalyzerConfig:
    recognizer: str
    threads: int
    detect_max_side: int
    detect_score_threshold: float


class FaceAnalyzer:
    def __init__(self, paths: dict[str, Path], config: AnalyzerConfig) -> None:
        self.detector = YuNetDetector(
            paths["yunet"],
            max_side=config.detect_max_side,
            score_threshold=config.detect_score_threshold,
        )
        self.landmarks = Landmark106(paths["landmark106"], threads=config.threads)
        self.pose = PoseEstimator(paths["tddfa"], paths["tddfa_norm"], threads=config.threads)
        self.embedder = Embedder(config.recognizer, paths[config.recognizer], threads=config.threads)
        self.liveness = LivenessScorer(paths["liveness"], threads=config.threads)

    def detect(self, image: BGRImage, max_faces: int, *, landmarks: bool = False) -> list[Face]:
        """The `max_faces` largest faces with head pose, and dense landmarks if asked for."""
        faces = self.detector.detect(image)[:max_faces]
        for face in faces:
            face.pose = self.pose(image, face)
            if landmarks:
                face.landmarks106 = self.landmarks(image, face)
        return faces

    def largest_face(self, image: BGRImage) -> Face:
        faces = self.detector.detect(image)
        if not faces:
            raise FaceApiError(ErrorCode.FACE_NOT_FOUND)
        return faces[0]

    def embed_largest(self, image: BGRImage) -> Embedding:
        """The embedding of the image's largest face; FACE_NOT_FOUND if it has none."""
        return self.enrolment_face(image)[0]

    def enrolment_face(self, image: BGRImage) -> tuple[Embedding, BGRImage]:
        """The largest face's embedding and the aligned 112x112 crop it was computed from."""
        aligned = align(image, self.largest_face(image).kps5)
        return self.embedder.embed(aligned), aligned

    def probe(self, image: BGRImage, *, liveness: bool) -> tuple[Embedding, float | None]:
        """The largest face's embedding, and its liveness score if asked for, from one detection."""
        face = self.largest_face(image)
        embedding = self.embedder.embed(align(image, face.kps5))
        return embedding, (self.liveness(image, face) if liveness else None)


def load_analyzer(cache: ModelCache, config: AnalyzerConfig, *, progress: bool = False) -> FaceAnalyzer:
    """Fetch any missing model (verifying every checksum), then load them all."""
    configure_opencv(config.threads)
    paths = cache.ensure(models_for(config.recognizer), progress=progress)
    for name, bundled in BUNDLED.items():
        paths[name] = verify_file(bundled.path, bundled.sha256, name)
    return FaceAnalyzer(paths, config)
