"""Recognition both protocols share: two faces compared, a photo's faces searched in groups, a user
verified; every score on the calibrated 0-100 scale (vision/score.py).

v2 identify and v3 search are one call here (so are v2 verify and v3 search with a user_id, and v2
and v3 match); the protocols differ only in what they ask for (v2: a group exists while it holds
faces, and liveness without a threshold; v3: controls, a group registry checked by the route) and
in how they shape the answer. Every method blocks and runs in the inference pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from renlian.core.controls import NO_CONTROLS, Controls
from renlian.core.faces import FaceOperations, Photo, Probe
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import FaceLibrary
from renlian.library.search import GroupHit
from renlian.vision.score import similarity_score


@dataclass(frozen=True)
class Match:
    """A user record found for a face: its best faces' scores (0-100), best first."""

    group_id: str
    uid: str
    user_info: str
    scores: list[float]


class Recognition:
    def __init__(self, ops: FaceOperations, library: FaceLibrary) -> None:
        self.ops = ops
        self.library = library

    @property
    def _model(self) -> str:
        return self.ops.analyzer.embedder.name

    def similarity(self, first: Probe, second: Probe) -> float:
        """The score of two examined faces."""
        return similarity_score(float(first.examined.embedding @ second.examined.embedding), self._model)

    def _matches(self, hits: list[GroupHit]) -> list[Match]:
        return [
            Match(
                hit.group_id, hit.uid, hit.user_info, [similarity_score(c, self._model) for c in hit.scores]
            )
            for hit in hits
        ]

    def search(
        self,
        app_id: str,
        groups: list[str],
        photo: Photo,
        users: int,
        *,
        controls: Controls = NO_CONTROLS,
        liveness: bool = False,
        only_uid: str | None = None,
        faces_per_user: int = 5,
        require_faces: bool = False,
        at_least: int = 0,
    ) -> tuple[Probe, list[Match]]:
        """The photo's largest face (which must pass `controls`; with its liveness score if asked
        for) and the best `users` records across `groups`, or only `only_uid`'s. `require_faces`: a
        group without a searchable face does not exist (v2's rule; 216618), checked before the
        models run, since most requests for an empty group stop there. `at_least`: a change number
        the index must have applied first (FaceLibrary.require_groups)."""
        if require_faces:
            for group in groups:
                if not self.library.group_exists_in_index(app_id, group):
                    raise FaceApiError(ErrorCode.GROUP_NOT_EXIST, f"group {group} has no users")
        probe = self.ops.probe(app_id, photo, controls, liveness=liveness)
        hits = self.library.search_embeddings(
            app_id,
            groups,
            probe.examined.embedding[np.newaxis, :],
            users,
            faces_per_user,
            only_uid,
            require_faces=require_faces,
            at_least=at_least,
        )
        return probe, self._matches(hits[0])

    def search_faces(
        self,
        app_id: str,
        groups: list[str],
        photo: Photo,
        max_faces: int,
        users: int,
        *,
        controls: Controls = NO_CONTROLS,
        at_least: int = 0,
    ) -> list[tuple[Probe, list[Match]]]:
        """`search` for each of the photo's largest `max_faces` faces that pass `controls`, all of
        them in one pass over each group."""
        probes = self.ops.probes(app_id, photo, max_faces, controls)
        if not probes:
            return []
        queries = np.stack([probe.examined.embedding for probe in probes])
        hits = self.library.search_embeddings(app_id, groups, queries, users, at_least=at_least)
        return [(probe, self._matches(found)) for probe, found in zip(probes, hits, strict=True)]

    def verify(
        self, app_id: str, uid: str, groups: list[str], photo: Photo, top: int, *, liveness: bool = False
    ) -> tuple[Probe, list[float]]:
        """The scores of the uid's best `top` faces in `groups` against the photo's largest face,
        best first (216611 when the uid has none there): `search` restricted to the user."""
        probe, matches = self.search(
            app_id, groups, photo, len(groups), liveness=liveness, only_uid=uid, faces_per_user=top
        )
        scores = sorted((score for match in matches for score in match.scores), reverse=True)[:top]
        if not scores:
            raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not enrolled in {','.join(groups)}")
        return probe, scores
