"""lakegate's recipient client: open shared tables in directory mode (vended credentials, deltalake) and fall
back to URL mode (the official delta-sharing client) where a table offers only that.

    from lakegate.client import open_table, load_as_pandas
    table = open_table("profile.share#share.schema.table", storage_options={...})   # a deltalake.DeltaTable
"""

from lakegate.client.errors import (
    ClientError,
    CredentialError,
    DirectoryAccessUnavailable,
    ProfileError,
    SharingError,
)
from lakegate.client.profile import Profile, TableRef, parse_table_url
from lakegate.client.rest import RestClient
from lakegate.client.table import (
    SharedTable,
    load_as_pandas,
    load_as_pyarrow,
    open_table,
    storage_options,
)

__all__ = [
    "ClientError",
    "CredentialError",
    "DirectoryAccessUnavailable",
    "Profile",
    "ProfileError",
    "RestClient",
    "SharedTable",
    "SharingError",
    "TableRef",
    "load_as_pandas",
    "load_as_pyarrow",
    "open_table",
    "parse_table_url",
    "storage_options",
]
