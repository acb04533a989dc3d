"""Temporary Azure credentials: a read + list SAS for exactly one table directory.

Hierarchical-namespace accounts (ADLS Gen2) get a directory SAS (`sr=d`, `sdd`, `sp=rl`): only that directory
and below. Flat-namespace accounts cannot scope a SAS to a prefix, so they get a container SAS (`sr=c`,
`sp=rl`) — offered only for a table at the container root or when `allowContainerSas` says the provider
accepts container-wide reads (`_dir_access_problem` in lakegate.cloud.azure). Signed with the account's
user-delegation key when the server has an Entra ID identity, else with the account key.
The expiry is `temporaryCredentialValiditySeconds` from now, capped to the delegation key's expiry.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from lakegate.cloud.azure.storage import AzureStore, describe_error, hierarchical
from lakegate.cloud.base import CredentialVendor, TemporaryCredential
from lakegate.cloud.locations import Location
from lakegate.config import AzureStorageConfig
from lakegate.exceptions import VendingError

log = logging.getLogger(__name__)
KIND = "azureUserDelegationSas"


class AzureVendor(CredentialVendor):
    def __init__(self, store: AzureStore, settings: AzureStorageConfig, validity_s: int) -> None:
        self._store = store
        self._settings = settings
        self._validity = timedelta(seconds=validity_s)
        self._identity = f"azure|{settings.endpoint or ''}|{store.identity_name}"

    @property
    def identity(self) -> str:
        return self._identity

    def vend(self, location: Location) -> TemporaryCredential:
        account = self._store.account(location)
        wanted = datetime.fromtimestamp(int(time.time()), UTC) + self._validity
        try:
            if location.path and hierarchical(location, self._settings.hierarchical_namespace):
                token, expiry = account.signer.directory_sas(location.bucket, location.path, wanted)
            else:
                token, expiry = account.signer.container_sas(location.bucket, wanted)
        except Exception as exc:  # noqa: BLE001  - azure-core raises many unrelated types
            log.error("Azure refused a SAS for %s: %s", location.uri, describe_error(exc))
            raise VendingError(
                "the cloud refused to issue a shared access signature for this table; "
                "the server log has the details"
            ) from None
        return TemporaryCredential(
            location.display, KIND, {"sasToken": token}, int(expiry.timestamp() * 1000)
        )
