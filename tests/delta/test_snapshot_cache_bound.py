"""The snapshot cache's byte bound (`snapshotCacheBytes`): least recently used snapshots are evicted once the
cached bytes (Arrow add tables plus the file parts built from them) exceed it; the metric reports both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.config import parse_config
from lakegate.delta.cache import SnapshotCache
from lakegate.keys import KeyRing
from lakegate.metrics import Metrics
from lakegate.service.files import LineCache
from tests.tables import build_partitioned


def _tables(tmp_path: Path, n: int) -> list[Location]:
    roots = []
    for i in range(n):
        root = str(tmp_path / f"t{i}")
        build_partitioned(root)
        DeltaTable(root).create_checkpoint()  # column-wise snapshots: sizes from Arrow buffers
        roots.append(Location.parse(root))
    return roots


def _cache(max_bytes: int) -> tuple[SnapshotCache, LineCache]:
    keys = KeyRing.random()
    cache = SnapshotCache(StoreRegistry(parse_config({"version": 1}), keys), max_bytes=max_bytes)
    lines = LineCache()
    cache.sizer = lambda s: s.files.nbytes() + lines.nbytes(s)
    lines.on_built = cache.trim
    return cache, lines


def test_least_recently_used_tables_are_evicted_past_the_byte_bound(tmp_path: Path) -> None:
    first, second, third = _tables(tmp_path, 3)
    unbounded, lines = _cache(0)
    sizes = []
    for root in (first, second, third):
        snapshot = unbounded.latest(root)
        lines.parts(snapshot, root, (), "parquet", "parquet")
        sizes.append(unbounded.sizer(snapshot))
    assert unbounded.evictions == 0 and unbounded.cached_bytes() == sum(sizes)

    bounded, lines = _cache(sizes[0] + sizes[1])  # room for two tables with their parts
    kept = {}
    for root in (first, second, third):
        kept[root] = bounded.latest(root)
        lines.parts(kept[root], root, (), "parquet", "parquet")
    assert bounded.evictions == 1 and bounded.cached_bytes() <= sizes[0] + sizes[1]
    assert bounded.latest(second) is kept[second] and bounded.latest(third) is kept[third]  # still cached
    misses = bounded.misses
    assert bounded.latest(first) is not kept[first] and bounded.misses == misses + 1  # evicted: loaded again

    text = Metrics(bounded).exposition().decode()
    assert f"lakegate_snapshot_cache_bytes {float(bounded.cached_bytes())}" in text
    assert "lakegate_snapshot_cache_evictions_total 2.0" in text


def test_the_snapshot_in_use_is_never_evicted(tmp_path: Path) -> None:
    (root,) = _tables(tmp_path, 1)
    cache, lines = _cache(1)  # smaller than any snapshot
    snapshot = cache.latest(root)
    lines.parts(snapshot, root, (), "parquet", "parquet")
    assert cache.latest(root) is snapshot and cache.evictions == 0


def test_concurrent_requests_for_one_version_load_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from lakegate.delta import cache as cache_module
    from lakegate.delta import snapshot as snapshot_module

    (root,) = _tables(tmp_path, 1)
    loads = []
    original = snapshot_module.load_snapshot

    def slow_load(*args: Any) -> Any:
        loads.append(1)
        time.sleep(0.2)  # every thread arrives while the first loads
        return original(*args)

    monkeypatch.setattr(cache_module, "load_snapshot", slow_load)
    cache, _ = _cache(0)
    found = []
    threads = [threading.Thread(target=lambda: found.append(cache.at_version(root, 1))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(found) == 8 and all(s is found[0] for s in found) and found[0].version == 1
