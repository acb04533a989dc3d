"""Server configuration: the delta-io reference server's YAML, unchanged, plus lakegate's own keys.

Precedence: YAML file < LAKEGATE_* environment variables < command-line flags (`lakegate serve --host/--port`).
Unknown keys are reported (a warning naming each), invalid values raise ConfigError naming the key.
"""

from __future__ import annotations

import difflib
import logging
import os
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from lakegate.exceptions import ConfigError

log = logging.getLogger(__name__)


class _Model(BaseModel):
    # extra="allow" so unknown keys survive validation and can be reported by `unknown_keys`.
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class TableConfig(_Model):
    name: str
    location: str
    id: str = ""
    history_shared: bool = Field(False, alias="historyShared")
    start_version: int = Field(0, alias="startVersion", ge=0)
    auxiliary_locations: list[str] = Field(default_factory=list, alias="auxiliaryLocations")


class SchemaConfig(_Model):
    name: str
    tables: list[TableConfig] = Field(default_factory=list)


class ShareConfig(_Model):
    name: str
    id: str = ""
    display_name: str | None = Field(None, alias="displayName")
    comment: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    schemas: list[SchemaConfig] = Field(default_factory=list)


# Values copied from examples (the README's among them): a server started with one is open to anyone who read
# the example, so it is refused at start rather than warned about.
PLACEHOLDERS = {"change-me", "changeme", "a long random string shared by all replicas"}
MIN_SIGNING_KEY_BYTES = 16
WEAK_TOKEN_CHARS = 16


def _not_a_placeholder(value: SecretStr | None) -> SecretStr | None:
    if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDERS:
        raise ValueError("is the documentation's placeholder; set a random secret (openssl rand -base64 32)")
    return value


class AuthorizationConfig(_Model):
    bearer_token: SecretStr | None = Field(None, alias="bearerToken")
    # lakegate: without a token a request is refused (401) unless this is set; the reference server lets
    # every request in when no bearerToken is configured.
    allow_anonymous: bool = Field(False, alias="allowAnonymous")

    _placeholder = field_validator("bearer_token")(_not_a_placeholder)


class FederationConfig(_Model):
    """OIDC federation (docs/recipients.md): how lakegate fetches and trusts recipients' identity providers."""

    # A fetched key set is used this long, then fetched again (a key the IdP retired stops working by then).
    jwks_cache_seconds: int = Field(600, alias="jwksCacheSeconds", ge=1, le=86400)
    # A token naming a key id not in the cache refetches the issuer's keys at most once in this time.
    jwks_min_refresh_seconds: int = Field(60, alias="jwksMinRefreshSeconds", ge=1, le=86400)
    # Each request to an identity provider (discovery, key set) gives up after this long: 503 to the caller.
    fetch_timeout_seconds: float = Field(5.0, alias="fetchTimeoutSeconds", gt=0, le=60)
    # Tolerance on `exp` and `nbf` for clocks that differ between the IdP and this server.
    clock_skew_seconds: int = Field(60, alias="clockSkewSeconds", ge=0, le=600)


class OAuthConfig(_Model):
    """The token endpoint ({endpoint}/oauth/token) for recipients with a client secret or a registered key."""

    # How long an access token lives; revoking its credential or recipient still ends it at once.
    access_token_lifetime_seconds: int = Field(3600, alias="accessTokenLifetimeSeconds", ge=60, le=86400)
    # Failed client authentications allowed per window, per client id and per source address (429 past it).
    max_failed_per_client: int = Field(10, alias="maxFailedAuthenticationsPerClient", ge=1)
    max_failed_per_address: int = Field(50, alias="maxFailedAuthenticationsPerAddress", ge=1)
    failure_window_seconds: int = Field(300, alias="failedAuthenticationWindowSeconds", ge=1, le=86400)


class SslConfig(_Model):
    self_signed: bool = Field(False, alias="selfSigned")
    certificate_file: str | None = Field(None, alias="certificateFile")
    certificate_key_file: str | None = Field(None, alias="certificateKeyFile")
    certificate_password_file: str | None = Field(None, alias="certificatePasswordFile")


class AwsStorageConfig(_Model):
    endpoint: str | None = None
    region: str | None = None
    path_style: bool | None = Field(None, alias="pathStyle")
    profile: str | None = None
    access_key_id: str | None = Field(None, alias="accessKeyId")
    secret_access_key: SecretStr | None = Field(None, alias="secretAccessKey")
    session_token: SecretStr | None = Field(None, alias="sessionToken")
    # Directory access (temporary credentials) settings.
    role_arn: str | None = Field(None, alias="roleArn")
    external_id: SecretStr | None = Field(None, alias="externalId")
    duration_seconds: int = Field(3600, alias="durationSeconds", ge=900, le=43200)
    sts_endpoint: str | None = Field(None, alias="stsEndpoint")
    session_name: str = Field("lakegate", alias="sessionName")
    kms_key_arns: list[str] = Field(default_factory=list, alias="kmsKeyArns")
    federation_token: bool = Field(False, alias="federationToken")


class AzureStorageConfig(_Model):
    """Azure Blob / ADLS Gen2. Identity, in this order: client secret (tenantId, clientId, clientSecret),
    managed identity, account key, else azure-identity's DefaultAzureCredential."""

    endpoint: str | None = None  # blob endpoint; default https://<account>.blob.core.windows.net
    account_key: SecretStr | None = Field(None, alias="accountKey")
    tenant_id: str | None = Field(None, alias="tenantId")
    client_id: str | None = Field(None, alias="clientId")
    client_secret: SecretStr | None = Field(None, alias="clientSecret")
    authority_host: str | None = Field(None, alias="authorityHost")
    managed_identity: bool = Field(False, alias="managedIdentity")
    ca_bundle: str | None = Field(None, alias="caBundle")  # extra trusted CA file (self-signed endpoints)
    # Directory access (temporary credentials) settings.
    directory_access: bool = Field(False, alias="directoryAccess")
    hierarchical_namespace: bool | None = Field(None, alias="hierarchicalNamespace")  # None: dfs host => True
    allow_container_sas: bool = Field(False, alias="allowContainerSas")
    user_delegation_key_seconds: int = Field(6 * 3600, alias="userDelegationKeySeconds", ge=900, le=7 * 86400)

    @model_validator(mode="after")
    def _tokens_need_https(self) -> AzureStorageConfig:
        # The SDK refuses to send a token over plain http: every request of the table would fail.
        token = self.client_secret is not None or self.managed_identity or self.account_key is None
        if token and (self.endpoint or "").lower().startswith("http://"):
            raise ValueError(
                "azure.endpoint over http:// needs accountKey: the Azure SDK sends tokens (client secret, "
                "managed identity, the default credential) only over https"
            )
        return self


class GcpStorageConfig(_Model):
    """Google Cloud Storage. Identity: a service-account key file, else Application Default Credentials."""

    service_account_key_file: str | None = Field(None, alias="serviceAccountKeyFile")
    project: str | None = None
    endpoint: str | None = None  # storage API endpoint (emulators); default Google's
    hmac_access_id: str | None = Field(None, alias="hmacAccessId")  # fast URL signing (GOOG4-HMAC-SHA256)
    hmac_secret: SecretStr | None = Field(None, alias="hmacSecret")
    # Directory access (downscoped tokens) settings.
    directory_access: bool = Field(False, alias="directoryAccess")
    token_exchange_endpoint: str = Field("https://sts.googleapis.com/v1/token", alias="tokenExchangeEndpoint")


class IcebergStorageConfig(_Model):
    # Where the Iceberg metadata generated for this entry's tables is written (a URI or a local directory);
    # default: beside the configuration file for local tables, none (refused) for cloud tables.
    metadata_location: str | None = Field(None, alias="metadataLocation")


class ConsoleConfig(_Model):
    """The provider console at /console (docs/console.md): off unless enabled."""

    enabled: bool = False
    # How long a console sign-in lasts before the admin token is asked for again.
    session_seconds: int = Field(8 * 3600, alias="sessionSeconds", ge=60, le=7 * 86400)


class ActivationLinksConfig(_Model):
    """Recipient activation links ({publicUrl}/activate/CODE): what their page says, and how long they live."""

    provider_name: str | None = Field(None, alias="providerName", max_length=255)
    contact: str | None = Field(None, max_length=255)  # whom a recipient asks for a new link
    validity_seconds: int = Field(7 * 86400, alias="validitySeconds", ge=60, le=90 * 86400)


class StorageConfig(_Model):
    """Per-location settings; the entry with the longest matching `location` prefix wins."""

    location: str
    aws: AwsStorageConfig | None = None
    azure: AzureStorageConfig | None = None
    gcp: GcpStorageConfig | None = None
    iceberg: IcebergStorageConfig | None = None


MAX_WORKERS = 256


class ServerConfig(_Model):
    version: int
    shares: list[ShareConfig] = Field(default_factory=list)
    authorization: AuthorizationConfig | None = None
    federation: FederationConfig = Field(default_factory=FederationConfig)
    oauth: OAuthConfig = Field(default_factory=OAuthConfig)
    ssl: SslConfig | None = None
    host: str = "localhost"
    port: int = Field(8080, ge=0, le=65535)
    endpoint: str = "/delta-sharing"
    pre_signed_url_timeout_seconds: int = Field(3600, alias="preSignedUrlTimeoutSeconds", ge=1, le=604800)
    temporary_credential_validity_seconds: int = Field(3600, alias="temporaryCredentialValiditySeconds")
    # A recipient never receives a vended credential with less than this left (cached ones are re-vended).
    minimum_credential_seconds: int = Field(300, alias="minimumCredentialSeconds", ge=0)
    delta_table_cache_size: int = Field(10, alias="deltaTableCacheSize", ge=0)
    # Bytes of snapshots (Arrow add tables and file parts) kept in memory, least recently used evicted (0: no bound).
    snapshot_cache_bytes: int = Field(2 * 1024**3, alias="snapshotCacheBytes", ge=0)
    # Where checkpoints' add tables and file parts are kept as Arrow files mapped by every worker
    # (lakegate.sharedcache); default: a private directory per server run, removed at exit.
    snapshot_cache_directory: str | None = Field(None, alias="snapshotCacheDirectory", min_length=1)
    staleness_acceptable: bool = Field(False, alias="stalenessAcceptable")
    # Load the latest snapshots of up to deltaTableCacheSize tables in the background at start.
    warm_up: bool = Field(True, alias="warmUp")
    evaluate_predicate_hints: bool = Field(True, alias="evaluatePredicateHints")
    evaluate_json_predicate_hints: bool = Field(True, alias="evaluateJsonPredicateHints")
    evaluate_json_predicate_hints_v2: bool = Field(True, alias="evaluateJsonPredicateHintsV2")
    # The time a client may take to send a request's headers, and again its body (0: no limit).
    request_timeout_seconds: int = Field(30, alias="requestTimeoutSeconds", ge=0)
    query_table_page_size_limit: int = Field(10000, alias="queryTablePageSizeLimit", ge=1)
    query_table_page_token_ttl_ms: int = Field(259_200_000, alias="queryTablePageTokenTtlMs", ge=1)
    refresh_token_ttl_ms: int = Field(3_600_000, alias="refreshTokenTtlMs", ge=1)
    # Async queries (capability asyncquery=true) run in the background from this many files (snapshot) or
    # versions (startingVersion) on; smaller ones are answered at once, as the protocol allows.
    async_query_min_files: int = Field(10_000, alias="asyncQueryMinFiles", ge=0)
    # Async queries one recipient may have running at once (429 past it).
    async_query_max_pending_per_recipient: int = Field(8, alias="asyncQueryMaxPendingPerRecipient", ge=1)
    # lakegate keys
    max_request_body_bytes: int = Field(1 << 20, alias="maxRequestBodyBytes", ge=1024)
    max_request_header_bytes: int = Field(32 << 10, alias="maxRequestHeaderBytes", ge=1024)
    keep_alive_timeout_seconds: int = Field(5, alias="keepAliveTimeoutSeconds", ge=1)
    # Predicate work one request may ask for (a 400 past each bound).
    predicate_hints_max_length: int = Field(1 << 20, alias="predicateHintsMaxLength", ge=1)
    predicate_hints_max_depth: int = Field(100, alias="predicateHintsMaxDepth", ge=1)
    predicate_hints_max_count: int = Field(1000, alias="predicateHintsMaxCount", ge=1)
    storage: list[StorageConfig] = Field(default_factory=list)
    public_url: str | None = Field(None, alias="publicUrl")
    token_signing_key: SecretStr | None = Field(None, alias="tokenSigningKey")
    database: str | None = (
        None  # SQLAlchemy URL; default: SQLite file <config name>.db beside the config file
    )
    # The name this configuration records in its database, which refuses other configurations (replicas of one
    # configuration share it); default: the configuration file's name without its extension.
    config_id: str | None = Field(None, alias="configId", min_length=1, max_length=255)
    log_format: Literal["json", "text"] = Field("json", alias="logFormat")
    shutdown_timeout_seconds: int = Field(30, alias="shutdownTimeoutSeconds", ge=0)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    activation_links: ActivationLinksConfig = Field(
        default_factory=ActivationLinksConfig, alias="activationLinks"
    )
    # Processes serving the port (lakegate.workers): a number, or "auto" (the default) for one per core.
    workers: int | Literal["auto"] = "auto"
    # How long a replica answers authentications and lookups from memory (lakegate.catalog.recent).
    catalog_cache_seconds: float = Field(1.0, alias="catalogCacheSeconds", ge=0, le=60)
    # The directory of the configuration file: relative paths (the default database) are resolved from it.
    _base_dir: Path | None = PrivateAttr(None)
    # The configuration file's name without its extension ("lakegate" for a configuration made in code).
    _file_stem: str = PrivateAttr("lakegate")

    @property
    def base_dir(self) -> Path | None:
        return self._base_dir

    @property
    def file_stem(self) -> str:
        return self._file_stem

    @property
    def identity(self) -> str:
        """The configuration's name in its database: configId, else the file's name without extension."""
        return self.config_id or self._file_stem

    def absolute_location(self, location: str) -> str:
        """A table location as the YAML's are read: a relative path is taken from the configuration file's
        directory (the console's "Add a table" accepts what the file would)."""
        if self._base_dir is not None and _is_relative_path(location):
            return os.path.normpath(self._base_dir / location)
        return location

    def listen_url(self) -> str:
        """Where the server listens: http(s)://host:port{endpoint}."""
        scheme = "https" if self.ssl is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.endpoint}"

    def public_endpoint(self) -> str:
        """The URL recipients use (profiles' `endpoint`): publicUrl, else http(s)://host:port{endpoint}, with
        this machine's name for a wildcard listen address (0.0.0.0 is no address a recipient can reach)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self._listens_everywhere():
            scheme = "https" if self.ssl is not None else "http"
            return f"{scheme}://{socket.gethostname()}:{self.port}{self.endpoint}"
        return self.listen_url()

    def _listens_everywhere(self) -> bool:
        return self.host in ("0.0.0.0", "::", "")  # noqa: S104  - a check, not a bind

    def public_endpoint_warning(self) -> str | None:
        """Why profiles' endpoint may be wrong (a wildcard listen address and no publicUrl), or None."""
        if self.public_url or not self._listens_everywhere():
            return None
        return (
            f"publicUrl is not set and the server listens on all addresses: profiles name "
            f"{self.public_endpoint()} (this machine's name); set publicUrl to the URL recipients reach"
        )

    @field_validator("version")
    @classmethod
    def _version_is_one(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"must be 1, got {value}")
        return value

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_count_or_auto(cls, value: object) -> object:
        if value == "auto" or (type(value) is int and 1 <= value <= MAX_WORKERS):
            return value
        raise ValueError(f"must be a number from 1 to {MAX_WORKERS}, or auto")

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_a_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value.rstrip("/")

    @field_validator("token_signing_key")
    @classmethod
    def _signing_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SIGNING_KEY_BYTES:
            raise ValueError(
                f"must be at least {MIN_SIGNING_KEY_BYTES} bytes (a random string of 32 or more)"
            )
        return _not_a_placeholder(value)

    @field_validator("temporary_credential_validity_seconds")
    @classmethod
    def _validity_default(cls, value: int) -> int:
        return value if value > 0 else 3600  # the reference server treats <= 0 as the default

    @model_validator(mode="after")
    def _names_unique(self) -> ServerConfig:
        _check_unique("shares", [s.name for s in self.shares])
        for share in self.shares:
            _check_unique(f"shares[{share.name}].schemas", [s.name for s in share.schemas])
            for schema in share.schemas:
                _check_unique(
                    f"shares[{share.name}].schemas[{schema.name}].tables", [t.name for t in schema.tables]
                )
        return self

    def storage_for(self, location: str) -> StorageConfig | None:
        """The `storage:` entry whose location is the longest prefix of `location`."""
        best: StorageConfig | None = None
        for entry in self.storage:
            if location.startswith(entry.location) and (
                best is None or len(entry.location) > len(best.location)
            ):
                best = entry
        return best


# Reference keys that are accepted for compatibility but have no effect here, with the reason.
NOT_USED = {
    "evaluateJsonPredicateHints": "JSON predicate hints are always evaluated over partition values and stats",
    "evaluateJsonPredicateHintsV2": "JSON predicate hints are always evaluated over partition values and stats",
}


def _check_unique(where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        # A '/' splits the name across the path's segments: recipients could never reach it (the admin API and
        # CLI refuse such names too).
        if "/" in name or not name.isprintable():
            raise ValueError(f"{where}: name {name!r} must not contain '/' or control characters")
        if name.lower() in seen:
            raise ValueError(f"{where}: duplicate name '{name}' (names are case-insensitive)")
        seen.add(name.lower())


def unknown_keys(model: BaseModel, path: str = "") -> list[str]:
    """Dotted paths of keys the configuration has but lakegate does not know."""
    return [key for key, _ in unknown_keys_with_hints(model, path)]


def unknown_keys_with_hints(model: BaseModel, path: str = "") -> list[tuple[str, str | None]]:
    """(dotted path, the known key at that level it most resembles, or None) of every unknown key."""
    known = [field.alias or name for name, field in type(model).model_fields.items()]
    found: list[tuple[str, str | None]] = [
        (f"{path}{key}", next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None))
        for key in (model.model_extra or {})
    ]
    for name, field in type(model).model_fields.items():
        key = f"{path}{field.alias or name}"
        value = getattr(model, name)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, BaseModel):
                suffix = f"[{i}]." if isinstance(value, list) else "."
                found += unknown_keys_with_hints(item, key + suffix)
    return found


def parse_config(data: Any, source: str = "config") -> ServerConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must be a YAML mapping")
    try:
        config = ServerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None
    _warn_about_weak_token(config, source)
    for key, hint in unknown_keys_with_hints(config):
        did_you_mean = f" (did you mean '{hint}'?)" if hint else ""
        log.warning("%s: unknown key '%s' is ignored%s", source, key, did_you_mean)
    for key, reason in NOT_USED.items():
        if key in data:
            log.info("%s: key '%s' is accepted but has no effect: %s", source, key, reason)
    return config


def load_config(path: str | Path) -> ServerConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}): is it the configuration file?"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except RecursionError:  # PyYAML's composer recurses once per level of nesting
        raise ConfigError(f"{path}: nested too deeply to be a configuration") from None
    base_dir = path.resolve().parent
    config = apply_environment(parse_config(_resolve_table_paths(data, base_dir), str(path)))
    config._base_dir = base_dir
    config._file_stem = path.stem
    return config


def _resolve_table_paths(data: Any, base_dir: Path) -> Any:
    """The YAML with relative table locations (`tables/orders`, `../lake/orders`) made absolute from the
    configuration file's directory, as `database:` and the ssl files are: where the server was started from
    must not change which table it serves."""
    if not isinstance(data, dict) or not isinstance(data.get("shares"), list):
        return data
    for share in data["shares"]:
        for schema in share.get("schemas") or () if isinstance(share, dict) else ():
            for table in schema.get("tables") or () if isinstance(schema, dict) else ():
                if not isinstance(table, dict):
                    continue
                if _is_relative_path(table.get("location")):
                    table["location"] = os.path.normpath(base_dir / table["location"])
                aux = table.get("auxiliaryLocations")
                if isinstance(aux, list):
                    table["auxiliaryLocations"] = [
                        os.path.normpath(base_dir / a) if _is_relative_path(a) else a for a in aux
                    ]
    return data


def _is_relative_path(location: Any) -> bool:
    """A location with no scheme that is not absolute: a path relative to the configuration file."""
    return (
        isinstance(location, str)
        and bool(location.strip())
        and not location.startswith("/")
        and not urlsplit(location).scheme
    )


def apply_environment(config: ServerConfig) -> ServerConfig:
    """LAKEGATE_HOST, LAKEGATE_PORT, LAKEGATE_PUBLIC_URL, LAKEGATE_DATABASE, LAKEGATE_TOKEN_SIGNING_KEY."""
    updates: dict[str, Any] = {}
    for env, field in (
        ("LAKEGATE_HOST", "host"),
        ("LAKEGATE_PORT", "port"),
        ("LAKEGATE_PUBLIC_URL", "public_url"),
        ("LAKEGATE_DATABASE", "database"),
        ("LAKEGATE_TOKEN_SIGNING_KEY", "token_signing_key"),
    ):
        if env in os.environ:
            updates[field] = os.environ[env]
    if not updates:
        return config
    merged = config.model_dump(by_alias=False)
    merged.update(updates)
    try:
        return ServerConfig.model_validate({_alias(k): v for k, v in merged.items()})
    except ValidationError as exc:
        raise ConfigError(f"environment: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    """`key: problem` of the first error, without pydantic's "Value error, " prefix."""
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]) or "(top level)"
    return f"{key}: {err['msg'].removeprefix('Value error, ')}"


def _warn_about_weak_token(config: ServerConfig, source: str) -> None:
    token = config.authorization.bearer_token if config.authorization else None
    if token is not None and len(token.get_secret_value()) < WEAK_TOKEN_CHARS:
        log.warning(
            "%s: authorization.bearerToken is shorter than %d characters and can be guessed; "
            "use a random secret (openssl rand -base64 32)",
            source,
            WEAK_TOKEN_CHARS,
        )


def _alias(field: str) -> str:
    info = ServerConfig.model_fields.get(field)
    return (info.alias or field) if info else field
