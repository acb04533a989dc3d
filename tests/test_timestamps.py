"""One timestamp format for everything lakegate writes: UTC, milliseconds, a Z."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from lakegate.timestamps import epoch_parts, iso, iso_from_ms, iso_or_none, second_text

PLUS_TWO = timezone(timedelta(hours=2))


def test_aware_datetimes_are_written_in_utc_with_milliseconds() -> None:
    assert iso(datetime(2026, 7, 1, 14, 0, 5, 987_654, tzinfo=PLUS_TWO)) == "2026-07-01T12:00:05.987Z"
    assert iso(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == "2026-07-01T12:00:00.000Z"
    late = datetime(2026, 7, 1, 23, 59, 59, 999_999, tzinfo=UTC)
    assert iso(late) == "2026-07-01T23:59:59.999Z"  # cut, not rounded
    assert iso_or_none(None) is None
    assert iso_or_none(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000Z"


def test_epoch_milliseconds_are_exact() -> None:
    # 2025-07-01T00:00:00Z is 1_751_328_000 s after the epoch; float division would give .122999… for some ms.
    base = 1_751_328_000_000
    for ms in range(1000):
        assert iso_from_ms(base + 12 * 3_600_000 + ms) == f"2025-07-01T12:00:00.{ms:03d}Z"
    assert iso_from_ms(0) == "1970-01-01T00:00:00.000Z"


def test_epoch_parts_round_as_datetime_does() -> None:
    """The record writer process formats an event's time from (seconds, microseconds) without a datetime."""
    rng = random.Random(7)
    base = 1_782_907_200
    edges = [base + m / 1e6 + d for m in (0, 1, 499_999, 500_000, 999_999) for d in (-2e-7, 0, 2e-7, 5e-7)]
    edges += [base + 0.9999996, base + 0.9999995, base + 0.0000005, base + 0.0000015, base + 0.0000025]
    for moment in edges + [base + rng.random() * 86_400 * 400 for _ in range(50_000)]:
        second, micro = epoch_parts(moment)
        made = datetime.fromtimestamp(moment, UTC)
        assert (second, micro) == (int(made.timestamp()), made.microsecond), moment
        assert f"{second_text(second)}.{micro // 1000:03d}Z" == iso(made)
