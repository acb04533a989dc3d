"""What every store offers the rest of the server: list and read a table's files, and sign URLs for them.

Cloud SDKs are imported only inside `lakegate.cloud.<name>`, lazily, so a provider who shares only S3 tables
needs no Azure or Google packages installed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from lakegate.cloud.locations import Location


@dataclass(frozen=True)
class ObjectInfo:
    name: str  # file name inside the listed directory
    size: int
    mtime_ms: int


@dataclass(frozen=True)
class SignRequest:
    """What a signer needs to know beyond the file: when URLs expire and, for files served by lakegate
    itself, the public base URL and the table the files belong to."""

    expires_at_s: int
    now_s: int
    base_url: str = ""
    table_path: str = ""  # "share/schema/table", for lakegate's own file URLs
    root: Location | None = None


UrlSigner = Callable[[Location], str]


class ObjectStore(ABC):
    @abstractmethod
    def list_dir(self, directory: Location, start_after: str | None = None) -> list[ObjectInfo]:
        """Files directly in `directory` whose names sort after `start_after`, sorted by name.
        A missing directory lists as empty."""

    @abstractmethod
    def read(self, location: Location) -> bytes:
        """The whole object; raises FileNotFoundError if it does not exist."""

    @abstractmethod
    def url_signer(self, request: SignRequest) -> UrlSigner:
        """A function giving a pre-signed GET URL for a file location, valid until `request.expires_at_s`."""
