"""Tables on local disk. Recipients cannot read the server's disk, so lakegate serves the files itself under
signed, expiring URLs: `{base}/files/{share}/{schema}/{table}/{path}?Expires=…&X-Amz-Signature=…`.

The signature is an HMAC over the table, the path and the expiry. The parameter is named `X-Amz-Signature`
because delta-kernel (used by the official client for delta-format reads) only fetches an http(s) URL over
HTTP when its query carries one of a few known signature keys; otherwise it looks the path up on local disk.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import SplitResult, quote

import pyarrow as pa
import pyarrow.compute as pc

from lakegate import inline
from lakegate._arrow import byte_set, encoded, has_any, string_buffers
from lakegate.cloud.backends import LocationSyntax
from lakegate.cloud.base import Backend, ObjectInfo, ObjectStore, SignRequest, UrlSigner
from lakegate.cloud.locations import Location, clean_path
from lakegate.config import StorageConfig
from lakegate.exceptions import InvalidLocationError, StorageError, UnsupportedOperationError
from lakegate.keys import KeyRing

PURPOSE = "local-file-url"
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/=-]*")
_URL_UNSAFE = r"[^A-Za-z0-9_.~/=-]"  # the same, column-wise
_JSON_SPECIAL = re.compile(r'["\\\x00-\x1f]')  # characters a JSON string escapes
_NO_SEPARATOR = pa.scalar("", pa.string())  # binary_join_element_wise's last argument
_URL_UNSAFE_BYTES = byte_set(
    set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~/=-")
)


def file_url_payload(table_path: str, relative: str, expires_s: int) -> bytes:
    return f"{table_path}\n{relative}\n{expires_s}".encode()


class LocalStore(ObjectStore):
    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys

    def list_dir(self, directory: Location, start_after: str | None = None) -> list[ObjectInfo]:
        inline.must_not_block()  # a directory of any size: not on the event loop (lakegate.inline)
        try:
            entries = list(os.scandir(directory.local_path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise StorageError(f"listing {directory.local_path} failed: {exc}") from exc
        infos = []
        for entry in entries:
            if start_after is not None and entry.name <= start_after:
                continue
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except FileNotFoundError:
                continue  # a writer's temporary file, renamed or removed since the directory was read
            infos.append(ObjectInfo(entry.name, st.st_size, st.st_mtime_ns // 1_000_000))
        infos.sort(key=lambda i: i.name)
        return infos

    def read(self, location: Location) -> bytes:
        if inline.active():
            # On the event loop only a missing file is answered (one stat: the probe for a newer commit of a
            # cached snapshot); a file to read, of any size, is read in a worker thread.
            if not os.path.lexists(location.local_path):
                raise FileNotFoundError(location.uri)
            inline.must_not_block()
        try:
            return Path(location.local_path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(location.uri) from None
        except OSError as exc:  # permission denied, I/O error: the provider's disk, not the request
            raise StorageError(f"reading {location.local_path} failed: {exc}") from exc

    def reader(self, location: Location) -> pa.NativeFile:
        """The file opened for positioned reads (a checkpoint's column chunks are read a buffer at a time: no
        copy of the whole file in memory). Read, not memory-mapped: a writer truncating the file in place makes
        a read fail (a corrupt checkpoint), where touching a mapped page past the new end would kill the
        process (SIGBUS)."""
        if inline.active():  # as `read`: only a missing file is answered on the event loop
            if not os.path.lexists(location.local_path):
                raise FileNotFoundError(location.uri)
            inline.must_not_block()
        try:
            return pa.OSFile(location.local_path)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(location.uri) from None
        except OSError as exc:
            if os.path.isdir(location.local_path):
                raise FileNotFoundError(location.uri) from None
            raise StorageError(f"reading {location.local_path} failed: {exc}") from exc

    def write(self, location: Location, data: bytes) -> None:
        inline.must_not_block()
        # Written beside and renamed into place: a reader (another worker) sees the whole file or none.
        target = Path(location.local_path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_bytes(data)
            temporary.replace(target)
        except OSError as exc:
            raise StorageError(f"writing {location.local_path} failed: {exc}") from exc

    def url_signer(self, request: SignRequest) -> UrlSigner:
        root = request.root
        if root is None or not request.base_url or not request.table_path:
            raise ValueError("local file URLs need the table root, the table path and the base URL")
        sign_relative = self._relative_url(request)
        root_prefix = root.path + "/"

        def sign(location: Location) -> str:
            in_root = location.path.startswith(root_prefix) and location.same_store(root)
            if not in_root and not root.contains(location):
                # The file route serves files below the table root only (docs/security.md): a file in one of a
                # local table's auxiliary locations has no URL. A clear refusal, not a 500 from relative().
                raise UnsupportedOperationError(
                    "the table has files in an auxiliary location of local storage, which cannot be shared by "
                    "URL; the provider must move them below the table's location"
                )
            return sign_relative(location.path[len(root_prefix) :] if in_root else root.relative(location))

        return sign

    def relative_signer(self, request: SignRequest, root: Location) -> Callable[[str], str]:
        """One URL at a time, in Python: for a few files (a small answer) this is cheaper than the column-wise
        `relative_batch_signer`, whose every Arrow call costs ~10 µs; both make the same URLs."""
        return self._relative_url(request)

    def _relative_url(self, request: SignRequest) -> Callable[[str], str]:
        if not request.base_url or not request.table_path:
            raise ValueError("local file URLs need the table path and the base URL")
        prefix = f"{request.base_url.rstrip('/')}/files/{quote(request.table_path)}/"
        expires = request.expires_at_s
        mac = self._keys.signer(PURPOSE)
        table_path = request.table_path

        def sign(relative: str) -> str:
            signature = mac(file_url_payload(table_path, relative, expires))
            # quote() costs ~20 µs; most Delta file names need no escaping at all.
            path = relative if _URL_SAFE.fullmatch(relative) else quote(relative)
            return f"{prefix}{path}?Expires={expires}&X-Amz-Signature={signature}"

        return sign

    def batch_urls_json_safe(self, request: SignRequest) -> bool:
        """The URLs are the prefix and query below, paths quoted to `_URL_SAFE`'s characters and base64url
        signatures: safe when the prefix (the base URL) is."""
        base = f"{(request.base_url or '').rstrip('/')}/files/{quote(request.table_path or '')}/"
        return not _JSON_SPECIAL.search(base)

    def relative_batch_signer(self, request: SignRequest, root: Location) -> Callable[[pa.Array], pa.Array]:
        """What url_signer's sign does, for a column of paths below the root, column-wise: per file only the
        MAC is Python work (the payloads, their base64 and the URLs are joined by Arrow)."""
        if not request.base_url or not request.table_path:
            raise ValueError("local file URLs need the table path and the base URL")
        # Arrow scalars made once per signer: a `str` argument of a compute call is made into one on every call
        # (~5 µs each, most of the joins' time for a page of files).
        prefix, query, head, tail = (
            pa.scalar(text, pa.string())
            for text in (
                f"{request.base_url.rstrip('/')}/files/{quote(request.table_path)}/",
                f"?Expires={request.expires_at_s}&X-Amz-Signature=",
                f"{request.table_path}\n",
                f"\n{request.expires_at_s}",
            )
        )
        macs = self._keys.column_signer(PURPOSE)

        def sign(relatives: pa.Array) -> pa.Array:
            signatures = macs(encoded(pc.binary_join_element_wise(head, relatives, tail, _NO_SEPARATOR)))
            if has_any(string_buffers(relatives)[2], _URL_UNSAFE_BYTES):
                # quote() costs ~20 µs; most Delta file names need no escaping at all
                unsafe = pc.match_substring_regex(relatives, _URL_UNSAFE)
                quoted = pa.array([quote(r) for r in relatives.filter(unsafe).to_pylist()], pa.string())
                relatives = pc.replace_with_mask(relatives, unsafe, quoted)
            return pc.binary_join_element_wise(prefix, relatives, query, signatures, _NO_SEPARATOR)

        return sign


def _store(settings: StorageConfig | None, keys: KeyRing) -> ObjectStore:
    return LocalStore(keys)


# Local tables are served by lakegate itself: no SDK, no directory access.
BACKEND = Backend("file", "", _store)


def _parse(parts: SplitResult, uri: str) -> tuple[str, str, str]:
    """`file:///abs` (a bare `/abs` is read as local disk by `Location.parse` itself)."""
    if parts.netloc not in ("", "localhost"):
        raise InvalidLocationError(f"unsupported file URI host in location '{uri}'")
    return "", clean_path(parts.path), ""


def _uri(bucket: str, path: str, account: str) -> str:
    return "file:///" + path


SYNTAX = LocationSyntax(_parse, _uri)
