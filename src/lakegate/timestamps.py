"""Timestamps as lakegate writes them, one format everywhere: `2026-07-01T12:00:00.000Z` (UTC, milliseconds).

It is the protocol's format (profiles' `expirationTime`), readable by the official client; the admin API, the
CLI, the audit trail and error messages use it too.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """An aware datetime in the format above (sub-millisecond digits are dropped)."""
    if moment.tzinfo is UTC and moment.year >= 1000:  # most (every audit event's): C's isoformat, ~5x faster
        return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def iso_from_ms(epoch_ms: int) -> str:
    """Epoch milliseconds (Delta commit timestamps) in the format above, exactly (no float rounding)."""
    seconds, ms = divmod(epoch_ms, 1000)
    return iso(datetime.fromtimestamp(seconds, UTC).replace(microsecond=ms * 1000))
