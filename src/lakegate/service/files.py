"""Turning a snapshot's add actions into signed file lines, fast.

Per snapshot and response format, each file's id, location and the unchanging part of its line are computed
once and cached on the snapshot; per request only the URL is signed and spliced in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from lakegate._gc import paused_gc
from lakegate.cloud.base import ObjectStore, SignRequest, UrlSigner
from lakegate.cloud.locations import Location
from lakegate.cloud.registry import StoreRegistry
from lakegate.delta.files import data_location, deletion_vector_location
from lakegate.delta.snapshot import Snapshot
from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA

_lock = threading.Lock()


@dataclass(slots=True)
class FileEntry:
    add: dict
    location: Location
    file_id: str
    tail: bytes  # pre-encoded fields after the URL (parquet) or after the path (delta)


def entries(snapshot: Snapshot, root: Location, allowed: tuple[Location, ...], fmt: str,
            id_scheme: str) -> dict[tuple[str, str], FileEntry]:
    key = f"{fmt}:{id_scheme}"
    cached = snapshot.fragments.get(key)
    if cached is None:
        tail = lines.delta_action_tail if fmt == DELTA else lines.parquet_tail
        with paused_gc():
            cached = {
                k: FileEntry(add, data_location(root, add["path"], allowed), lines.file_id(add["path"], id_scheme),
                             tail(add))
                for k, add in snapshot.files.items()
            }
        with _lock:
            snapshot.fragments[key] = cached
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


def file_lines(selected: Iterable[FileEntry], fmt: str, signers: Signers, root: Location,
               allowed: tuple[Location, ...], kind: str = "file",
               extra: Callable[[FileEntry], bytes] | None = None) -> Iterator[bytes]:
    """Signed lines for the files; `kind` is the parquet wrapper (`file`, `add`, `remove`, `cdf`) or the delta
    action (`add`, `remove`, `cdc`) name; `extra` gives per-file `version`/`timestamp` fields."""
    expiry = lines.extra_fields(expirationTimestamp=signers.expires_ms)
    sign_root = signers.for_location(root)
    for entry in selected:
        loc = entry.location
        url = sign_root(loc) if root.contains(loc) else signers.sign(loc)
        more = expiry + (extra(entry) if extra else b"")
        if fmt == DELTA:
            tail = entry.tail
            descriptor = entry.add.get("deletionVector")
            if descriptor:
                tail = lines.delta_action_tail(_presigned_dv(entry.add, descriptor, signers, root, allowed))
            yield lines.delta_file_line("add" if kind == "file" else kind, url, entry.file_id, tail, more)
        else:
            yield lines.parquet_file_line(kind, url, entry.file_id, entry.tail, more)


def _presigned_dv(add: dict, descriptor: dict, signers: Signers, root: Location,
                  allowed: tuple[Location, ...]) -> dict:
    """The recipient rebuilds a log elsewhere, so a DV stored beside the table must be handed out as an
    absolute (`p`) signed URL; inline DVs stay as they are."""
    dv_file = deletion_vector_location(root, descriptor, allowed)
    if dv_file is None:
        return {k: v for k, v in add.items() if k != "path"}
    rewritten = {**descriptor, "storageType": "p", "pathOrInlineDv": signers.sign(dv_file)}
    return {**{k: v for k, v in add.items() if k != "path"}, "deletionVector": rewritten}
