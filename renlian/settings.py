"""Typed settings, read once from RENLIAN_* environment variables (CLI flags override them)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from renlian.core.fetch import ImageFetcher, parse_allow_list
from renlian.models.runtime import ExecutionProvider
from renlian.vision.analyzer import AnalyzerConfig
from renlian.vision.image import ImageLimits

RecognizerName = Literal["mbf", "sface"]


def _default_workers() -> int:
    return os.cpu_count() or 1


class Settings(BaseSettings):
    """Every knob of the service. Field names map to RENLIAN_<NAME> environment variables."""

    model_config = SettingsConfigDict(env_prefix="RENLIAN_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("renlian-data")
    model_dir: Path = Path("~/.cache/renlian/models")
    log_level: str = "info"
    # text, or json: one JSON object per line (the request log's fields as keys).
    log_format: Literal["text", "json"] = "text"
    # On SIGTERM: stop accepting, then let the requests in flight finish for at most this long.
    shutdown_grace_seconds: int = Field(default=30, ge=0, le=3600)
    # How long a database statement waits for another connection's lock (a backup, `renlian apps`,
    # `renlian import` beside the server) before the request fails with 216300 (safe to retry).
    db_busy_timeout_seconds: float = Field(default=5.0, ge=0.0, le=600.0)
    # postgresql://USER:PASS@HOST:PORT/DB: keep apps, tokens, usage and the face library in
    # PostgreSQL instead of the SQLite file in the data directory (docs/postgresql.md).
    database_url: str | None = None
    # Connections each process keeps open to it.
    database_pool_size: int = Field(default=8, ge=1, le=1000)
    # The longest one PostgreSQL statement may run before it is cancelled (216300).
    db_statement_timeout_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    # How often the search index checks that it holds every write committed to the store (by this
    # process, another node, or `renlian import` beside it), and how old that check may be before
    # the app's searches answer 216300 rather than risk missing an acknowledged face
    # (docs/library.md, docs/scale-out.md).
    index_poll_seconds: float = Field(default=0.2, gt=0.0, le=60.0)
    index_max_lag_seconds: float = Field(default=1.0, gt=0.0, le=3600.0)

    # Which face embedder serves match/identify. "mbf" (InsightFace w600k MobileFaceNet, 512-d) measures
    # best but its weights are for non-commercial research only; "sface" (OpenCV SFace, 128-d) is
    # Apache-2.0. See docs/models.md.
    recognizer: RecognizerName = "mbf"

    # Inference concurrency: `inference_workers` requests run models at once, each with
    # `threads_per_worker` intra-op threads. Their product should not exceed the cores, or concurrent
    # requests oversubscribe the CPU and every one of them gets slower. One thread a request and a
    # worker per core cost 10-20% less CPU per request than two threads a request, with the same
    # lone-request latency at these model sizes (bench.throughput, docs/benchmarks.md).
    inference_workers: int = Field(default_factory=_default_workers, ge=1, le=64)
    threads_per_worker: int = Field(default=1, ge=1, le=64)
    # Where onnxruntime runs the models: "cpu", or "cuda" for its CUDA provider where the
    # onnxruntime-gpu package replaces onnxruntime and a GPU is present; without either the models
    # run on the CPU and the log says why (docs/models.md). The face mesh (LiteRT) and the search's
    # first pass stay on the CPU either way.
    execution_provider: ExecutionProvider = "cpu"
    # Blocking work that is not inference runs in a pool per kind (api/pools.py), so that one kind
    # waiting cannot hold the threads another needs: image URL downloads (slow servers) cannot
    # delay logins and library reads. These threads mostly wait, so they may outnumber the cores.
    fetch_threads: int = Field(default=4, ge=1, le=256)
    # Store reads, and writes that embed nothing; with PostgreSQL, at most the connection pool's
    # size (RENLIAN_DATABASE_POOL_SIZE) query at once anyway.
    store_threads: int = Field(default=8, ge=1, le=256)
    # Token issue and look-up, app look-up, signature checks, quota admission.
    auth_threads: int = Field(default=4, ge=1, le=256)

    # The detector sees images whose longer side is at most this many pixels (faces smaller than
    # about 10 px at that scale are missed); boxes and landmarks are mapped back to the original.
    detect_max_side: int = Field(default=640, ge=160, le=4096)
    detect_score_threshold: float = Field(default=0.6, gt=0.0, lt=1.0)

    # Decoded-image limits: refuse before decoding, so a small file that inflates to gigapixels
    # (a decompression bomb) cannot exhaust memory.
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    max_image_side: int = Field(default=12_000, ge=16)
    min_image_side: int = Field(default=16, ge=1)

    # Images by URL (v3's image_type=URL): fetched only when the URL lies under one of these
    # comma-separated prefixes. Empty, the default, fetches nothing: a server that fetches any URL a
    # client names is a door into the network it sits in (docs/security.md, "Image URLs").
    image_url_allow: str = ""
    image_url_timeout_seconds: float = Field(default=5.0, gt=0.0, le=600.0)
    # Baidu's limit on a whole request.
    image_url_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)

    # face_tokens of faces that were seen but not enrolled (detect, search, match) resolve from a
    # cache of their aligned crops (7-9 KB each) for at least this long, unless more than
    # `face_token_cache` faces were seen since (docs/compat.md).
    face_token_ttl_seconds: int = Field(default=3600, ge=3600)
    face_token_cache: int = Field(default=10_000, ge=100)

    # Baidu's group capacity; lower it to keep a group smaller.
    max_group_faces: int = Field(default=300_000, ge=1, le=300_000)

    # Credentials and quotas.
    token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    max_clock_skew_seconds: int = Field(default=300, ge=0, le=3600)
    # The longest a bce-auth-v1 signature is accepted, whatever expiration period the client wrote
    # (Baidu's SDKs write 1800): the window in which a captured request can be replayed.
    max_signature_seconds: int = Field(default=1800, ge=1, le=24 * 3600)
    max_concurrent_requests: int = Field(default=64, ge=1)

    @field_validator("image_url_allow")
    @classmethod
    def _check_image_url_allow(cls, value: str) -> str:
        # A mistyped prefix stops the server at start-up rather than quietly refusing every URL.
        parse_allow_list(value)
        return value

    def model_cache(self) -> Path:
        return self.model_dir.expanduser()

    def store_path(self) -> Path:
        return self.data_dir / "renlian.sqlite3"

    def store_name(self) -> str:
        """Where the store is, for messages: the SQLite file, or the database URL without its password."""
        if self.database_url:
            from renlian.store.postgres import masked

            return masked(self.database_url)
        return str(self.store_path())

    def analyzer_config(self, *, recognizer: str | None = None, threads: int | None = None) -> AnalyzerConfig:
        """The models' settings; benches and tests override the recognizer or the thread count."""
        return AnalyzerConfig(
            recognizer=recognizer or self.recognizer,
            threads=threads or self.threads_per_worker,
            detect_max_side=self.detect_max_side,
            detect_score_threshold=self.detect_score_threshold,
            execution_provider=self.execution_provider,
        )

    def image_limits(self) -> ImageLimits:
        return ImageLimits(self.max_image_pixels, self.max_image_side, self.min_image_side)

    def image_fetcher(self) -> ImageFetcher:
        return ImageFetcher(
            parse_allow_list(self.image_url_allow), self.image_url_timeout_seconds, self.image_url_max_bytes
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
