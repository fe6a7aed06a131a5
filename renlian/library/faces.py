"""What the library keeps of a face, and how it makes it again: a photo's largest face as an
embedding with its aligned crop (a JPEG, what a face_token resolves to), and `renlian reindex`, which
embeds the kept crops again with the current model. The library's only calls into vision.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from renlian.store.base import FaceStore, NewFace
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.image import BGRImage


def crop_jpeg(aligned: BGRImage) -> bytes:
    """How an aligned face crop is kept: what `renlian reindex` embeds again, and what a face_token
    resolves to."""
    ok, jpeg = cv2.imencode(".jpg", aligned, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return bytes(jpeg.tobytes())


def enrolment_face(analyzer: FaceAnalyzer, data: bytes, pixels: BGRImage) -> NewFace:
    """What the library keeps of a photo: its file's checksum (what "the same image" means), its
    largest face's embedding and aligned crop. The pixels can be dropped once this returns."""
    embedding, aligned = analyzer.enrolment_face(pixels)
    checksum = hashlib.sha256(data).hexdigest()
    return NewFace(checksum, analyzer.embedder.name, embedding, crop_jpeg(aligned))


def reembed(store: FaceStore, analyzer: FaceAnalyzer, batch: int = 64) -> int:
    """Embed again, from the kept crops, every face made by another model than the current one."""
    model = analyzer.embedder.name
    done = 0
    while rows := store.stale_crops(model, batch):
        for face_id, jpeg in rows:
            aligned = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if aligned is None:
                raise RuntimeError(f"the kept crop of face {face_id} cannot be decoded")
            store.set_embedding(face_id, model, analyzer.embedder.embed(aligned))
            done += 1
    return done
