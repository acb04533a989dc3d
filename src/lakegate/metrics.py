"""Prometheus metrics, served at /metrics.

Process-wide counters live in one registry that any module may increment (the credential cache counts its
hits with `CREDENTIAL_CACHE_HITS.inc()`), so this module imports nothing of lakegate; per-server values that
already exist as counters elsewhere (the snapshot cache's hits and misses) are read at scrape time rather than
copied on every request.
"""

from __future__ import annotations

import asyncio
import os
import threading
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The *_created samples double the output and nobody graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "lakegate_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "lakegate_http_request_duration_seconds",
    "Time from request to the last byte of the answer, by route template and method.",
    ["route", "method"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FILES_SIGNED = Counter(
    "lakegate_files_signed",
    "Files returned to recipients with a signed URL (query, changes).",
    registry=REGISTRY,
)
CREDENTIALS_VENDED = Counter(
    "lakegate_credentials_vended",
    "Temporary table credentials returned to recipients (directory access).",
    registry=REGISTRY,
)
CREDENTIAL_CACHE_HITS = Counter(
    "lakegate_credential_cache_hits",
    "Temporary credentials answered from the vending cache.",
    registry=REGISTRY,
)
UNAUTHENTICATED = Counter(
    "lakegate_unauthenticated_requests",
    "Requests refused for a missing, wrong, expired or revoked token (401); not stored in the audit table.",
    registry=REGISTRY,
)
SHARED_CACHE_BUILDS = Counter(
    "lakegate_snapshot_cache_files_written",
    "Checkpoint tables and file parts built and written to the snapshot cache directory (all workers).",
    registry=REGISTRY,
)
SHARED_CACHE_READS = Counter(
    "lakegate_snapshot_cache_files_mapped",
    "Checkpoint tables and file parts memory-mapped from the snapshot cache directory (all workers).",
    registry=REGISTRY,
)
AUDIT_FAILURES = Counter(
    "lakegate_audit_write_failures", "Audit events that could not be written.", registry=REGISTRY
)


class CacheCounts(Protocol):
    """What a cache exposes to be scraped (the snapshot cache does)."""

    hits: int
    misses: int
    evictions: int

    def cached_bytes(self) -> int: ...


class _SnapshotCacheCollector:
    def __init__(self, cache: CacheCounts) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "lakegate_snapshot_cache_hits", "Table snapshots served from the cache.", value=self._cache.hits
        )
        yield CounterMetricFamily(
            "lakegate_snapshot_cache_misses",
            "Table snapshots loaded or moved forward.",
            value=self._cache.misses,
        )
        yield CounterMetricFamily(
            "lakegate_snapshot_cache_evictions",
            "Snapshots dropped to keep the cache within snapshotCacheBytes.",
            value=self._cache.evictions,
        )
        yield GaugeMetricFamily(
            "lakegate_snapshot_cache_bytes",
            "Bytes of the cached snapshots: Arrow add tables and the file parts built from them.",
            value=self._cache.cached_bytes(),
        )


MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
FOLD_SECONDS = 0.25  # how late a request may be counted in REQUESTS and LATENCY (see RequestTally)


class RequestTally:
    """Each request's count and duration, folded into REQUESTS and LATENCY a batch at a time, and the counters a
    request adds to (files signed, credentials vended, unauthenticated requests): prometheus_client's labelled
    `inc` and `observe` (a lock each and a walk of the buckets; with several workers, writes to their shared
    files) cost ~2.5 µs per request, a tenth of a small request's CPU. A batch is folded FOLD_SECONDS after its
    first request (a timer on the event loop), before this process answers /metrics and when it stops cleanly: a
    scrape sees every request of the process that answers it, another worker's up to FOLD_SECONDS late; a worker
    killed outright loses its last FOLD_SECONDS of counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # (a scrape folds from a thread)
        self._pending: dict[tuple[Any, Any], list[float]] = {}
        self._counts: dict[Any, float] = {}

    def add(self, series: tuple[Any, Any], seconds: float) -> None:
        """Count a request of `series` (REQUESTS' and LATENCY's labelled children) that took `seconds`."""
        with self._lock:
            first = not self._pending and not self._counts
            times = self._pending.get(series)
            if times is None:
                times = self._pending[series] = []
            times.append(seconds)
        if first:
            self._fold_soon()

    def count(self, counter: Any, amount: float = 1) -> None:
        """`counter.inc(amount)`, folded with the batch."""
        with self._lock:
            first = not self._pending and not self._counts
            self._counts[counter] = self._counts.get(counter, 0) + amount
        if first:
            self._fold_soon()

    def _fold_soon(self) -> None:
        try:
            asyncio.get_running_loop().call_later(FOLD_SECONDS, self.fold)
        except RuntimeError:  # not on an event loop: at once
            self.fold()

    def fold(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            counts, self._counts = self._counts, {}
        for (requests, latency), times in pending.items():
            requests.inc(len(times))
            _observe_all(latency, times)
        for counter, amount in counts.items():
            counter.inc(amount)


def _observe_all(histogram: Any, times: list[float]) -> None:
    """`histogram.observe(t)` for each of `times`: each bucket and the sum added to once (prometheus_client's own
    attributes, as its `observe` uses them; one by one where they are not there)."""
    bounds, buckets, total = (
        getattr(histogram, name, None) for name in ("_upper_bounds", "_buckets", "_sum")
    )
    if bounds is None or buckets is None or total is None:
        for seconds in times:
            histogram.observe(seconds)
        return
    counts = [0] * len(bounds)
    for seconds in times:
        counts[bisect_left(bounds, seconds)] += 1  # the first bound >= seconds, as `observe` looks for it
    total.inc(sum(times))
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)


TALLY = RequestTally()


def share_between_processes(directory: str) -> None:
    """Count in files under `directory` that every worker process writes and each scrape sums
    (prometheus_client's multiprocess mode; `lakegate serve --workers N`). Called by the supervisor before it
    forks: the metrics were made at import with in-memory values, so each is given file-backed ones (through
    prometheus_client's value class and `_metric_init`, its documented mode applied after import)."""
    os.environ[MULTIPROCESS_DIR] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, MetricWrapperBase):
            if collector._labelnames:
                with collector._lock:
                    collector._metrics.clear()
            else:
                collector._metric_init()  # type: ignore[no-untyped-call]


class Metrics:
    """The exposition of one server: the process-wide counters (of every worker, when several serve) and this
    process's caches."""

    def __init__(self, snapshots: CacheCounts) -> None:
        self._local = CollectorRegistry(auto_describe=False)
        self._local.register(_SnapshotCacheCollector(snapshots))

    def exposition(self) -> bytes:
        TALLY.fold()
        if MULTIPROCESS_DIR not in os.environ:
            return generate_latest(REGISTRY) + generate_latest(self._local)
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
        return generate_latest(workers) + generate_latest(self._local)
