"""Vended credentials are reused per (location, identity) until half their life is spent, and a recipient
never
gets one with less than the minimum left."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from lakegate.cloud.base import CredentialVendor, TemporaryCredential
from lakegate.cloud.locations import Location
from lakegate.cloud.vending import CredentialCache
from lakegate.exceptions import VendingError
from lakegate.metrics import REGISTRY

T1 = Location.parse("s3://b/tables/t1")
T2 = Location.parse("s3://b/tables/t2")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingVendor(CredentialVendor):
    def __init__(self, clock: Clock, lifetime: float, name: str = "v", delay: float = 0.0) -> None:
        self.clock, self.lifetime, self.name, self.delay = clock, lifetime, name, delay
        self.calls = 0

    @property
    def identity(self) -> str:
        return self.name

    def vend(self, location: Location) -> TemporaryCredential:
        self.calls += 1
        time.sleep(self.delay)
        return TemporaryCredential(
            location.uri,
            "awsTempCredentials",
            {"n": str(self.calls)},
            int((self.clock() + self.lifetime) * 1000),
        )


def test_reused_until_half_life_then_renewed() -> None:
    clock = Clock()
    cache, vendor = CredentialCache(300, clock), CountingVendor(clock, 3600)
    first = cache.get(T1, vendor)
    clock.now += 1799
    assert cache.get(T1, vendor) is first
    clock.now += 2
    second = cache.get(T1, vendor)
    assert second is not first and vendor.calls == 2


def _cache_hits() -> float:
    return REGISTRY.get_sample_value("lakegate_credential_cache_hits_total") or 0.0


def test_only_answers_from_the_cache_count_as_cache_hits() -> None:
    clock = Clock()
    cache, vendor = CredentialCache(300, clock), CountingVendor(clock, 3600)
    before = _cache_hits()
    cache.get(T1, vendor)
    assert _cache_hits() == before  # vended, not a hit
    clock.now += 60
    cache.get(T1, vendor)
    cache.get(T1, vendor)
    assert _cache_hits() == before + 2 and vendor.calls == 1
    clock.now += 1800  # past half-life: renewed, not a hit
    cache.get(T1, vendor)
    assert _cache_hits() == before + 2 and vendor.calls == 2


def test_never_below_the_minimum_even_before_half_life() -> None:
    clock = Clock()
    # Lifetime 900 s, minimum 600 s: half-life (450 s) comes after the minimum line (300 s).
    cache, vendor = CredentialCache(600, clock), CountingVendor(clock, 900)
    first = cache.get(T1, vendor)
    clock.now += 301
    renewed = cache.get(T1, vendor)
    assert renewed is not first and renewed.remaining_s(clock.now) >= 600


def test_a_fresh_credential_shorter_than_the_minimum_is_an_error() -> None:
    clock = Clock()
    cache = CredentialCache(300, clock)
    with pytest.raises(VendingError, match="minimumCredentialSeconds"):
        cache.get(T1, CountingVendor(clock, 120))


def test_keyed_by_location_and_identity() -> None:
    clock = Clock()
    cache = CredentialCache(300, clock)
    a, b = CountingVendor(clock, 3600, "role-a"), CountingVendor(clock, 3600, "role-b")
    assert cache.get(T1, a) is not cache.get(T2, a)
    assert cache.get(T1, a) is not cache.get(T1, b)
    assert cache.get(Location.parse("s3a://b/tables/t1/"), a) is cache.get(T1, a)
    assert (a.calls, b.calls) == (2, 1)


def test_a_set_of_directories_is_its_own_key() -> None:
    """The credential for a table's root plus its Iceberg metadata is not the root's own (a wider scope)."""

    class ManyVendor(CountingVendor):
        covers_many = True

        def vend_all(self, locations: Sequence[Location]) -> TemporaryCredential:
            return self.vend(locations[0])

    clock = Clock()
    cache, vendor = CredentialCache(300, clock), ManyVendor(clock, 3600)
    both = cache.get_all([T1, T2], vendor)
    assert both is not cache.get(T1, vendor) and both is cache.get_all([T1, T2], vendor)
    assert vendor.calls == 2
    with pytest.raises(ValueError, match="one directory at a time"):
        cache.get_all([T1, T2], CountingVendor(clock, 3600, "one-at-a-time"))


def test_concurrent_requests_make_one_vend() -> None:
    clock = Clock()
    cache, vendor = CredentialCache(300, clock), CountingVendor(clock, 3600, delay=0.2)
    results: list[TemporaryCredential] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(T1, vendor))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert vendor.calls == 1 and len({id(r) for r in results}) == 1


def test_secrets_stay_out_of_repr() -> None:
    credential = TemporaryCredential("s3://b/t", "awsTempCredentials", {"secretAccessKey": "hush"}, 1)
    assert "hush" not in repr(credential)


def test_registry_refuses_lifetimes_below_the_minimum_at_start() -> None:
    from lakegate.cloud.registry import StoreRegistry
    from lakegate.cloud.vending import VendorRegistry
    from lakegate.config import parse_config
    from lakegate.exceptions import ConfigError
    from lakegate.keys import KeyRing

    def registry(extra: dict) -> VendorRegistry:
        config = parse_config({"version": 1, **extra})
        return VendorRegistry(config, StoreRegistry(config, KeyRing.random()))

    role = {"location": "s3://b/", "aws": {"roleArn": "arn:aws:iam::1:role/r", "durationSeconds": 900}}
    with pytest.raises(ConfigError, match="durationSeconds"):
        registry({"minimumCredentialSeconds": 900, "storage": [role]})
    with pytest.raises(ConfigError, match="temporaryCredentialValiditySeconds"):
        registry(
            {
                "temporaryCredentialValiditySeconds": 300,
                "storage": [{"location": "abfss://", "azure": {"directoryAccess": True}}],
            }
        )
    ok = registry({"storage": [role, {"location": "s3://plain/", "aws": {"region": "eu-west-1"}}]})
    assert ok.problem(Location.parse("s3://b/t")) is None
    assert "roleArn" in (ok.problem(Location.parse("s3://plain/t")) or "")
    assert "roleArn" in (ok.problem(Location.parse("s3://elsewhere/t")) or "")
    assert ok.problem(Location.parse("/local/table")) is not None
    assert "directoryAccess" in (ok.problem(Location.parse("gs://g/t")) or "")
