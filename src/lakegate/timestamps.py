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


def epoch_parts(unix_time: float) -> tuple[int, int]:
    """(whole seconds, microseconds) of a Unix time after 1970, rounded as `datetime.fromtimestamp` rounds it (half
    to even): the same instant without making a datetime."""
    second = int(unix_time)
    micro = round((unix_time - second) * 1e6)
    return (second + 1, 0) if micro == 1_000_000 else (second, micro)


_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last whole second formatted, and its text


def second_text(second: int) -> str:
    """`2026-07-01T12:00:00` of a Unix second (UTC), formatted once per second: lines written many per second."""
    known = _SECOND[0]
    if known[0] != second:
        known = _SECOND[0] = (second, datetime.fromtimestamp(second, UTC).isoformat()[:19])
    return known[1]


def iso_from_ms(epoch_ms: int) -> str:
    """Epoch milliseconds (Delta commit timestamps) in the format above, exactly (no float rounding)."""
    seconds, ms = divmod(epoch_ms, 1000)
    return iso(datetime.fromtimestamp(seconds, UTC).replace(microsecond=ms * 1000))
