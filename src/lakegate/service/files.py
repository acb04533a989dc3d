"""Turning a snapshot's add actions into signed file lines, fast.

Per snapshot and response format, each file's id, location and the unchanging part of its line are computed
once and cached on the snapshot; per request only the URL is signed and spliced in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lakegate._gc import paused_gc
from lakegate.cloud.base import ObjectStore, SignRequest, UrlSigner
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.delta.actions import data_location, deletion_vector_location
from lakegate.delta.snapshot import Snapshot
from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA

_lock = threading.Lock()


@dataclass(slots=True)
class FileEntry:
    add: dict[str, Any]
    location: Location
    file_id: str
    tail: bytes  # pre-encoded fields after the URL (parquet) or after the path (delta)
    in_root: bool = True  # below the table root (signed by the root's store), else an auxiliary location


def make_entry(
    add: dict[str, Any],
    root: Location,
    allowed: tuple[Location, ...],
    id_scheme: str,
    tail: Callable[[dict[str, Any]], bytes],
) -> FileEntry:
    path = add["path"]
    location = data_location(root, path, allowed)
    relative = "://" not in path and not path.startswith("/")
    return FileEntry(
        add, location, lines.file_id(path, id_scheme), tail(add), relative or root.contains(location)
    )


def entries(
    snapshot: Snapshot, root: Location, allowed: tuple[Location, ...], fmt: str, id_scheme: str
) -> dict[tuple[str, str], FileEntry]:
    """The snapshot's file entries for one format, built once; entries of the snapshot it was derived from are
    reused for files that did not change, so a commit to a large table costs only its own files."""
    key = f"{fmt}:{id_scheme}"
    cached = snapshot.fragments.get(key)
    if cached is None:
        tail = lines.delta_action_tail if fmt == DELTA else lines.parquet_tail
        previous = snapshot.previous.fragments.get(key, {}) if snapshot.previous is not None else {}
        with paused_gc():
            cached = {}
            for k, add in snapshot.files.items():
                entry = previous.get(k)
                cached[k] = (
                    entry
                    if entry is not None and entry.add is add
                    else make_entry(add, root, allowed, id_scheme, tail)
                )
        with _lock:
            snapshot.fragments[key] = cached
            snapshot.previous = None  # let the older snapshot's entries go
    return cached


class Signers:
    """One URL signer per store for one response (all URLs share one expiry)."""

    def __init__(self, stores: StoreRegistry, request: SignRequest) -> None:
        self._stores = stores
        self._request = request
        self._by_store: dict[int, UrlSigner] = {}
        self.expires_ms = request.expires_at_s * 1000

    def for_location(self, location: Location) -> UrlSigner:
        store: ObjectStore = self._stores.store_for(location)
        signer = self._by_store.get(id(store))
        if signer is None:
            signer = self._by_store[id(store)] = store.url_signer(self._request)
        return signer

    def sign(self, location: Location) -> str:
        return self.for_location(location)(location)


def file_lines(
    selected: Iterable[FileEntry],
    fmt: str,
    signers: Signers,
    root: Location,
    allowed: tuple[Location, ...],
    kind: str = "file",
    extra: Callable[[FileEntry], bytes] | None = None,
) -> Iterator[bytes]:
    """Signed lines for the files; `kind` is the parquet wrapper (`file`, `add`, `remove`, `cdf`) or the delta
    action (`add`, `remove`, `cdc`) name; `extra` gives per-file `version`/`timestamp` fields."""
    expiry = lines.extra_fields(expirationTimestamp=signers.expires_ms)
    sign_root = signers.for_location(root)
    for entry in selected:
        loc = entry.location
        url = sign_root(loc) if entry.in_root else signers.sign(loc)
        more = expiry + (extra(entry) if extra else b"")
        if fmt == DELTA:
            tail = entry.tail
            descriptor = entry.add.get("deletionVector")
            if descriptor:
                tail = lines.delta_action_tail(_presigned_dv(entry.add, descriptor, signers, root, allowed))
            yield lines.delta_file_line("add" if kind == "file" else kind, url, entry.file_id, tail, more)
        else:
            yield lines.parquet_file_line(kind, url, entry.file_id, entry.tail, more)


def _presigned_dv(
    add: dict[str, Any],
    descriptor: dict[str, Any],
    signers: Signers,
    root: Location,
    allowed: tuple[Location, ...],
) -> dict[str, Any]:
    """The recipient rebuilds a log elsewhere, so a DV stored beside the table must be handed out as an
    absolute (`p`) signed URL; inline DVs stay as they are."""
    dv_file = deletion_vector_location(root, descriptor, allowed)
    if dv_file is None:
        return {k: v for k, v in add.items() if k != "path"}
    rewritten = {**descriptor, "storageType": "p", "pathOrInlineDv": signers.sign(dv_file)}
    return {**{k: v for k, v in add.items() if k != "path"}, "deletionVector": rewritten}
