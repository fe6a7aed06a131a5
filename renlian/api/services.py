"""What the routes share for the life of the process: models, the inference pool, limits, log ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from renlian.api.envelope import LogIds
from renlian.api.inference import InferencePool
from renlian.auth.guard import Guard
from renlian.auth.tokens import TokenService
from renlian.library.library import FaceLibrary, Photo
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.image import BGRImage, ImageLimits, decode_image, decode_photo


@dataclass
class Services:
    analyzer: FaceAnalyzer
    library: FaceLibrary
    tokens: TokenService
    guard: Guard
    pool: InferencePool
    limits: ImageLimits

    def decode(self, text: str) -> BGRImage:
        return decode_image(text, self.limits)

    def photo(self, text: str) -> Photo:
        return Photo.of(*decode_photo(text, self.limits))


LOG_IDS = LogIds()


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


def log_id(request: Request) -> int:
    """This request's log id, made on first use so that error handlers and routes agree on it."""
    existing: int | None = getattr(request.state, "log_id", None)
    if existing is None:
        existing = LOG_IDS.next()
        request.state.log_id = existing
    return existing
