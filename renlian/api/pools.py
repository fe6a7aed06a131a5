"""The bounded thread pools that run blocking work off the event loop, one per kind of work.

Each kind waits on something different: models on the CPU, URL downloads on other people's servers,
the store on its disk or database, credentials and quotas on the store too but for every request.
In one shared pool a burst of slow downloads would take every thread and a login would queue behind
them; in pools of their own, one kind can only exhaust its own threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from renlian.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


class ThreadPool:
    """`threads` threads named after the pool (they show so in stack dumps); further calls wait in
    the executor's queue."""

    def __init__(self, name: str, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class Pools:
    # Models: with `inference_workers` x the sessions' intra-op threads kept at or below the core
    # count, concurrent requests queue here instead of oversubscribing the CPU.
    inference: ThreadPool
    # image_type=URL downloads, each up to RENLIAN_IMAGE_URL_TIMEOUT_SECONDS long.
    fetch: ThreadPool
    # The face library's calls that embed nothing: store reads, and writes whose faces are already
    # embedded (deletes, copies, groups).
    library: ThreadPool
    # Token issue and look-up, app look-up, signature checks, quota admission and usage flushes:
    # every request passes here first, so nothing slow may share these threads.
    auth: ThreadPool

    @classmethod
    def from_settings(cls, settings: Settings) -> Pools:
        return cls(
            inference=ThreadPool("inference", settings.inference_workers),
            fetch=ThreadPool("image-url", settings.fetch_threads),
            library=ThreadPool("library", settings.store_threads),
            auth=ThreadPool("auth", settings.auth_threads),
        )

    def shutdown(self) -> None:
        for pool in (self.inference, self.fetch, self.library, self.auth):
            pool.shutdown()
