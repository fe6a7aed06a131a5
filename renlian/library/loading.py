"""Loading the search index at start-up: the snapshots, then the store's changes since."""

from __future__ import annotations

import logging
import os
import time

from renlian.library.index import FaceIndex
from renlian.store.base import FaceStore

logger = logging.getLogger("renlian.library")


def load_index(store: FaceStore, model: str, dim: int, *, search_threads: int | None = None) -> FaceIndex:
    """Load the search index of the faces `model` embedded. It needs no model loaded, so the server
    does it while the models load, and starts in about the longer of the two times."""
    where = store.snapshot_dir()
    index = FaceIndex(
        model,
        dim,
        where / model if where is not None else None,
        threads=search_threads or min(2, os.cpu_count() or 1),
    )
    started = time.perf_counter()
    loaded = index.open(store)
    logger.info("face index: %d faces loaded in %.2f s", loaded, time.perf_counter() - started)
    stale = store.count_stale(model)
    if stale:
        logger.warning(
            "%d faces were embedded by another model and cannot be searched; run `renlian reindex`", stale
        )
    return index
