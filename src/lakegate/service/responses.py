"""An NDJSON answer: the headers, decided before the first byte, and the body, produced lazily in chunks."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

NDJSON = "application/x-ndjson; charset=utf-8"
CHUNK_BYTES = 1024 * 1024

# How a file line starts (protocol.md §4: snapshots `file`, history `add`/`remove`/`cdf`).
FILE_LINE_STARTS = (b'{"file":', b'{"add":', b'{"remove":', b'{"cdf":')
_AFTER_NEWLINE = tuple(b"\n" + start for start in FILE_LINE_STARTS)


class Lines(NamedTuple):
    """Whole lines of an answer, `files` of them file lines: what the renderer knows when it makes them, so
    nobody has to scan the bytes for it."""

    data: bytes
    files: int


Piece = bytes | Lines  # whole lines; for plain bytes the file lines are found by their starts


def file_lines_in(data: bytes) -> int:
    """The file lines among whole lines (for pieces that do not say: head lines, history lines)."""
    return data.startswith(FILE_LINE_STARTS) + sum(data.count(start) for start in _AFTER_NEWLINE)


@dataclass
class NdjsonAnswer:
    headers: dict[str, str]
    pieces: Iterable[Piece]  # whole lines, one or more per piece (file lines come in batches)
    # What the answer holds (version, files), known before the first byte: for the audit and metrics.
    stats: dict[str, int] = field(default_factory=dict)
    # Called on the event loop once the answer's last byte went to the server (a walk's next page starts
    # rendering then, not while this one is being sent); answers used outside HTTP never call it.
    after_sent: Callable[[], None] | None = None
    # (bytes, file lines) made up to the end of each chunk `chunks` has yielded: an answer cut short is audited
    # with the file lines of the chunks that went out (`files_within`). One entry per ~1 MiB.
    _ends: list[tuple[int, int]] = field(default_factory=list, init=False, repr=False)

    def chunks(self) -> Iterator[bytes]:
        """Lines joined into ~1 MiB chunks: one thread hop per chunk instead of per line (each hop waits for the
        GIL, so fewer, larger chunks stream faster; 1 MiB is ~1,400 file lines)."""
        buffer: list[bytes] = []
        size = files = made = counted = 0
        for item in self.pieces:
            data, n = item if isinstance(item, Lines) else (item, file_lines_in(item))
            buffer.append(data)
            size += len(data)
            files += n
            if size >= CHUNK_BYTES:
                made, counted = made + size, counted + files
                self._ends.append((made, counted))  # before the chunk can go out
                yield b"".join(buffer)
                buffer, size, files = [], 0, 0
        if buffer:
            self._ends.append((made + size, counted + files))
            yield b"".join(buffer)

    def files_within(self, sent_bytes: int) -> int:
        """The file lines in the chunks that lie wholly within the body's first `sent_bytes` bytes."""
        at = bisect_right(self._ends, (sent_bytes, float("inf")))
        return self._ends[at - 1][1] if at else 0

    @property
    def lines(self) -> Iterator[bytes]:
        """The answer line by line (tests and small answers; `chunks` streams)."""
        for piece in self.pieces:
            data = piece.data if isinstance(piece, Lines) else piece
            yield from data.splitlines(keepends=True)
