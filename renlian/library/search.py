"""Searching an app's groups in the index and merging what each group found into one ranking per
probe, with each record's user_info from the store. The caller (FaceLibrary.search_embeddings) has
made sure the index is current for the app.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.index import FaceIndex, UserHit
from renlian.store.base import FaceStore


@dataclass(frozen=True)
class GroupHit:
    group_id: str
    uid: str
    user_info: str
    scores: list[float]  # cosines, best first


def search_groups(
    searched: FaceIndex,
    store: FaceStore,
    app_id: str,
    groups: list[str],
    queries: NDArray[np.float32],
    users: int,
    faces_per_user: int = 5,
    only_uid: str | None = None,
    *,
    require_faces: bool = False,
) -> list[list[GroupHit]]:
    """For each probe (a row of `queries`, unit vectors), the best `users` (group, uid) records
    across `groups`, ranked by their best face's score; each group's faces are read once for all
    probes. Groups the index does not hold are skipped (the caller checks existence), or with
    `require_faces` refused (216618) as they are when they hold no face. With `only_uid`, only
    that uid's faces are compared."""
    queries = np.atleast_2d(np.asarray(queries, np.float32))
    found: list[list[tuple[str, UserHit]]] = [[] for _ in range(len(queries))]
    for group in groups:
        with searched.reading(app_id, group) as index:
            # Checked on the version searched: a check on an earlier one could pass for a
            # group that another node empties before the search reads it.
            if require_faces and (index is None or len(index) == 0):
                raise FaceApiError(ErrorCode.GROUP_NOT_EXIST, f"group {group} has no users")
            if index is None:
                continue
            if only_uid is None:
                per_probe = index.search_many(queries, users, faces_per_user)
            else:
                per_probe = [
                    [UserHit(only_uid, scores[:faces_per_user])] if scores else []
                    for scores in index.user_scores_many(queries, only_uid)
                ]
        for hits, more in zip(found, per_probe, strict=True):
            hits.extend((group, hit) for hit in more)
    infos: dict[tuple[str, str], str] = {}
    answer = []
    for hits in found:
        hits.sort(key=lambda item: -item[1].scores[0])
        ranked = []
        for group, hit in hits[:users]:
            if (group, hit.uid) not in infos:
                infos[group, hit.uid] = store.user_info(app_id, group, hit.uid) or ""
            ranked.append(GroupHit(group, hit.uid, infos[group, hit.uid], hit.scores))
        answer.append(ranked)
    return answer
