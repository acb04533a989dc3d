"""Request counts and durations folded into the Prometheus metrics in batches (`lakegate.metrics.RequestTally`):
the same samples as prometheus_client's own `inc` and `observe` one request at a time."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from lakegate.metrics import FOLD_SECONDS, RequestTally

TIMES = [0.0, 0.004, 0.005, 0.0051, 0.07, 0.3, 0.3, 2.0, 45.0, 61.0, 1e9]  # on, between and past every bound


def _metrics() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
    counter = Counter("r", "requests", ["route"], registry=registry)
    histogram = Histogram("d", "durations", ["route"], registry=registry, buckets=buckets)
    return registry, counter, histogram


def test_a_folded_batch_gives_the_samples_of_one_by_one_observations() -> None:
    expected, counter, histogram = _metrics()
    for seconds in TIMES:
        counter.labels("/a").inc()
        histogram.labels("/a").observe(seconds)
    counter.labels("/b").inc()
    histogram.labels("/b").observe(0.02)

    folded, counter, histogram = _metrics()
    tally = RequestTally()
    for seconds in TIMES:
        tally.add((counter.labels("/a"), histogram.labels("/a")), seconds)  # no event loop: folded at once
    tally.add((counter.labels("/b"), histogram.labels("/b")), 0.02)
    assert generate_latest(folded) == generate_latest(expected)


def test_on_an_event_loop_a_batch_is_folded_after_fold_seconds() -> None:
    registry, counter, histogram = _metrics()
    tally = RequestTally()
    series = (counter.labels("/a"), histogram.labels("/a"))

    async def run() -> list[float | None]:
        seen = []
        for seconds in TIMES:
            tally.add(series, seconds)
        seen.append(registry.get_sample_value("r_total", {"route": "/a"}))
        await asyncio.sleep(FOLD_SECONDS / 2)
        seen.append(registry.get_sample_value("r_total", {"route": "/a"}))
        await asyncio.sleep(FOLD_SECONDS)
        seen.append(registry.get_sample_value("r_total", {"route": "/a"}))
        tally.add(series, 0.1)  # a new batch, folded on demand (a scrape)
        tally.fold()
        seen.append(registry.get_sample_value("r_total", {"route": "/a"}))
        return seen

    assert asyncio.run(run()) == [0.0, 0.0, len(TIMES), len(TIMES) + 1]


def test_counters_are_folded_with_the_batch() -> None:
    registry = CollectorRegistry()
    files = Counter("files", "files signed", registry=registry)
    tally = RequestTally()

    async def run() -> list[float | None]:
        seen = []
        tally.count(files, 3)
        tally.count(files)
        seen.append(registry.get_sample_value("files_total"))
        await asyncio.sleep(FOLD_SECONDS * 1.5)
        seen.append(registry.get_sample_value("files_total"))
        tally.count(files, 2)  # a new batch, folded on demand (a scrape)
        tally.fold()
        seen.append(registry.get_sample_value("files_total"))
        return seen

    assert asyncio.run(run()) == [0.0, 4.0, 6.0]
