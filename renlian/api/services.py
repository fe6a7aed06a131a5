"""What the routes share for the life of the process: models, the thread pools, limits, log ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from renlian.api.envelope import LogIds
from renlian.api.pools import Pools
from renlian.auth.guard import Guard
from renlian.auth.tokens import TokenService
from renlian.core.controls import NO_CONTROLS
from renlian.core.faces import FaceOperations
from renlian.core.search import Recognition
from renlian.library.library import FaceLibrary
from renlian.store.base import NewFace
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.image import ImageLimits


@dataclass
class Services:
    analyzer: FaceAnalyzer
    library: FaceLibrary
    ops: FaceOperations
    recognition: Recognition
    tokens: TokenService
    guard: Guard
    pools: Pools
    limits: ImageLimits

    def enrolment_face(self, app_id: str, text: str) -> NewFace:
        """Decode one photo and keep only what the library stores of it: its pixels are garbage as
        soon as this returns, so a request with many photos holds one decoded image at a time."""
        return self.ops.enrolment(app_id, self.ops.base64_photo(text), NO_CONTROLS)[0]


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
