"""The `Range` header of a file download, checked as RFC 9110 §14 asks before Starlette's FileResponse sees it.

Starlette answers a Range it cannot use with a text/plain 400 and refuses a whole set when one range is past the
end. RFC 9110 lets a server ignore a Range it does not understand (unknown unit, bad syntax: the whole file,
200) and asks for 416 only when no range is satisfiable; the satisfiable ones of a set are served. Hand-written:
a few string splits, linear in the header's length.
"""

from __future__ import annotations

from dataclasses import dataclass

_MAX_DIGITS = 18  # beyond any file size; keeps int() cheap and within int64


@dataclass(frozen=True)
class RangeCheck:
    header: (
        str | None
    )  # the Range header to pass on (satisfiable ranges only), or None to serve the whole file
    unsatisfiable: bool = False  # answer 416


def _number(text: str) -> int | None:
    text = text.strip()
    if not text or len(text) > _MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def check_range(header: str | None, size: int) -> RangeCheck:  # noqa: PLR0911  - one return per case
    """What to do with the request's `Range` header for a file of `size` bytes."""
    if header is None:
        return RangeCheck(None)
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return RangeCheck(None)  # an unknown unit or no unit at all: ignored (§14.2)
    keep: list[str] = []
    for part in spec.split(","):
        first_text, dash, last_text = part.strip().partition("-")
        if not dash:
            return RangeCheck(None)  # invalid syntax: the whole header is ignored
        if first_text.strip() == "":  # suffix range: the last N bytes
            suffix = _number(last_text)
            if suffix is None:
                return RangeCheck(None)
            if suffix > 0 and size > 0:
                keep.append(f"-{suffix}")
            continue
        first = _number(first_text)
        last = _number(last_text) if last_text.strip() else None
        if first is None or (last_text.strip() and (last is None or last < first)):
            return RangeCheck(None)
        if first < size:
            keep.append(f"{first}-" if last is None else f"{first}-{last}")
    if not keep:
        return RangeCheck(None, unsatisfiable=True)
    return RangeCheck("bytes=" + ",".join(keep))
