"""Prometheus metrics: what /metrics exposes, in one registry.

Labels carry endpoints, protocols, error codes, model names and app ids, never a uid, a token or a
key: a scrape is readable by whoever can reach /metrics (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from renlian import __version__

if TYPE_CHECKING:
    from renlian.library.sync import IndexSync

# Request latencies run from a few milliseconds (a page of ids) to seconds (ten 40 MP photos).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
QUOTA_CODES = frozenset({4, 17, 18, 19})


class Metrics:
    def __init__(self, recognizer: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "renlian_requests",
            "Requests answered, by endpoint, protocol and error code (0: success)",
            ("endpoint", "protocol", "error_code"),
            registry=self.registry,
        )
        self.responses = Counter(
            "renlian_http_responses",
            "Answers by endpoint and HTTP status (Baidu's errors are HTTP 200; the token endpoint's, "
            "the console's and unknown paths' are not)",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "renlian_request_seconds",
            "Time from a request's arrival to its answer, by endpoint",
            ("endpoint",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "renlian_inference_seconds",
            "Time spent in each model, per call",
            ("model",),
            buckets=INFERENCE_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge("renlian_requests_in_flight", "Requests being served", registry=self.registry)
        self.quota_refusals = Counter(
            "renlian_quota_refusals",
            "Requests refused by a quota or the concurrency cap, by error code",
            ("error_code",),
            registry=self.registry,
        )
        build = Gauge(
            "renlian_build_info", "The running build", ("version", "recognizer"), registry=self.registry
        )
        build.labels(__version__, recognizer).set(1)

    def watch_index(self, faces_per_app: Callable[[], dict[str, int]]) -> None:
        """Expose the search index's face count per app, read at each scrape."""
        self.registry.register(_IndexFaces(faces_per_app))

    def watch_sync(self, sync: IndexSync) -> None:
        """Expose how far behind a fleet node's index may be, read at each scrape."""
        self.registry.register(_IndexSync(sync))

    def observe_model(self, model: str, seconds: float) -> None:
        self.inference.labels(model).observe(seconds)


class _IndexFaces(Collector):
    def __init__(self, faces_per_app: Callable[[], dict[str, int]]) -> None:
        self._faces_per_app = faces_per_app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "renlian_index_faces", "Faces in the search index, by app", labels=("app_id",)
        )
        for app_id, count in sorted(self._faces_per_app().items()):
            family.add_metric((app_id,), count)
        yield family


class _IndexSync(Collector):
    def __init__(self, sync: IndexSync) -> None:
        self._sync = sync

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        lag = self._sync.lag_seconds()
        yield GaugeMetricFamily(
            "renlian_index_sync_lag_seconds",
            "Seconds since this node last proved its index holds every write in the store, for the "
            "app proven longest ago; -1 while an app is rebuilt (searches answer 216300 above "
            "RENLIAN_INDEX_MAX_LAG_SECONDS)",
            value=lag if lag != float("inf") else -1,
        )
        yield CounterMetricFamily(
            "renlian_index_sync_changes",
            "Numbered writes applied to this node's index (its own and other processes')",
            value=self._sync.applied_changes,
        )
        yield CounterMetricFamily(
            "renlian_index_sync_reloads",
            "Apps rebuilt from the store (missed changes pruned, a change the index could not take, "
            "or another database epoch)",
            value=self._sync.reloads,
        )
