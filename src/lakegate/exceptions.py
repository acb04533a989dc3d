"""The one error tree of lakegate: every error the server answers, with its HTTP status and error code.

    LakegateError                      500 INTERNAL_ERROR            message hidden from clients (logged)
    ├── InvalidParameterError          400 INVALID_PARAMETER_VALUE   a parameter's value is wrong
    ├── MalformedRequestError          400 MALFORMED_REQUEST         the request cannot be parsed
    │   ├── RequestTooLargeError       413 MALFORMED_REQUEST         the body is past the configured bound
    │   ├── UnsupportedMediaTypeError  415 MALFORMED_REQUEST         the body's media type is not accepted
    │   └── HeadersTooLargeError       431 MALFORMED_REQUEST         the headers are past the configured bound
    ├── UnsupportedOperationError      400 UNSUPPORTED_OPERATION     valid, but not offered (here, for this table)
    ├── TableFilesMissingError         400 RESOURCE_DOES_NOT_EXIST   the shared table has no Delta log (no retry)
    ├── UnauthenticatedError           401 UNAUTHENTICATED           no valid bearer token
    ├── PermissionDeniedError          403 PERMISSION_DENIED         authenticated, not allowed
    ├── NotFoundError                  404 RESOURCE_DOES_NOT_EXIST   no such share/schema/table/endpoint, or ungranted
    │   ├── NoSuchNamespaceError       404 RESOURCE_DOES_NOT_EXIST   Iceberg catalog: no such (or ungranted) schema
    │   └── NoSuchTableError           404 RESOURCE_DOES_NOT_EXIST   Iceberg catalog: no such (or ungranted) table
    ├── MethodNotAllowedError          405 METHOD_NOT_ALLOWED        the endpoint exists, the method does not
    ├── RequestTimeoutError            408 REQUEST_TIMEOUT           the client sent its request too slowly
    ├── ConflictError                  409 CONFLICT                  an admin change contradicts the catalog
    │   └── AlreadyExistsError         409 RESOURCE_ALREADY_EXISTS   the name is taken
    ├── RangeNotSatisfiableError       416 RANGE_NOT_SATISFIABLE     no asked range lies within the file
    ├── TooManyRequestsError           429 REQUEST_LIMIT_EXCEEDED    too many requests (a rate limit)
    ├── NotReadyError                  503 NOT_READY                 /readyz: the database does not answer
    ├── DatabaseUnavailableError       503 TEMPORARILY_UNAVAILABLE   the catalog's database dropped or refused
    │                                                                the connection (clients retry)
    ├── IdpUnavailableError            503 TEMPORARILY_UNAVAILABLE   a federated token's issuer (its IdP) did
    │                                                                not give its signing keys (clients retry)
    ├── VendingError                   500 CREDENTIAL_VENDING_FAILED the cloud refused or failed to issue a
    │                                                                credential (public message, details logged)
    ├── TableStateError                500 INTERNAL_ERROR            the provider's table is broken (a commit
    │                                                                missing, a corrupt log file): a public
    │                                                                message without paths, details logged
    ├── StorageError                   500 INTERNAL_ERROR            a store failed; details only in the log
    │   └── StorageUnavailableError    503 TEMPORARILY_UNAVAILABLE   the store cannot be reached right now
    └── ConfigError                    500 INTERNAL_ERROR            the configuration is invalid (CLI: exit 2)
        └── InvalidLocationError       500 INTERNAL_ERROR            a configured or logged location is unusable

Every non-2xx HTTP answer is one of these, rendered by one function (`lakegate.http.errors`), which also hands
the error code to the audit record. Framework errors (unknown endpoint, wrong method) are mapped onto this tree
there; anything else unexpected answers as `LakegateError` does. The connection guards
(`lakegate.http.connection`: 408, 431 and uvicorn's 400, before a request reaches the application) answer from
the same classes. Cloud SDK errors are translated inside `lakegate.cloud.*` with `raise ... from exc`. Where a
location comes from a client (a credential request, an admin's new table), the caller turns
`InvalidLocationError` into the client error it means.
"""

from __future__ import annotations


class LakegateError(Exception):
    status = 500
    error_code = "INTERNAL_ERROR"
    # Whether `str(self)` may be shown to a client. Internal errors are logged, never sent: the client gets
    # `client_message` instead.
    public = False
    client_message = "An internal error occurred; the server log has the details."
    # Extra headers of the answer (e.g. Content-Range of a 416).
    headers: dict[str, str] | None = None

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class _ClientError(LakegateError):
    public = True


class InvalidParameterError(_ClientError):
    status = 400
    error_code = "INVALID_PARAMETER_VALUE"


class MalformedRequestError(_ClientError):
    status = 400
    error_code = "MALFORMED_REQUEST"


class RequestTooLargeError(MalformedRequestError):
    status = 413


class UnsupportedMediaTypeError(MalformedRequestError):
    status = 415


class HeadersTooLargeError(MalformedRequestError):
    status = 431


class UnsupportedOperationError(_ClientError):
    status = 400
    error_code = "UNSUPPORTED_OPERATION"


class TableFilesMissingError(_ClientError):
    """The reference server's answer for a table whose files are gone (400, so clients do not retry)."""

    status = 400
    error_code = "RESOURCE_DOES_NOT_EXIST"


class UnauthenticatedError(_ClientError):
    status = 401
    error_code = "UNAUTHENTICATED"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        # RFC 7235 §3.1 / RFC 6750 §3: a 401 names the scheme it wants (Bearer only: a Basic challenge would
        # make a browser prompt for a password; Basic recipients send theirs unasked).
        self.headers = {"WWW-Authenticate": 'Bearer realm="lakegate"'}


class PermissionDeniedError(_ClientError):
    status = 403
    error_code = "PERMISSION_DENIED"


class NotFoundError(_ClientError):
    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class NoSuchNamespaceError(NotFoundError):
    """The Iceberg catalog's NoSuchNamespaceException (its clients tell a missing namespace from a missing
    table by the error's type)."""


class NoSuchTableError(NotFoundError):
    """The Iceberg catalog's NoSuchTableException."""


class MethodNotAllowedError(_ClientError):
    status = 405
    error_code = "METHOD_NOT_ALLOWED"


class RequestTimeoutError(_ClientError):
    status = 408
    error_code = "REQUEST_TIMEOUT"


class ConflictError(_ClientError):
    """An administrative change that contradicts the catalog's state (e.g. a share the YAML declares)."""

    status = 409
    error_code = "CONFLICT"


class AlreadyExistsError(ConflictError):
    error_code = "RESOURCE_ALREADY_EXISTS"


class RangeNotSatisfiableError(_ClientError):
    status = 416
    error_code = "RANGE_NOT_SATISFIABLE"

    def __init__(self, message: str = "", size: int | None = None) -> None:
        super().__init__(message)
        if size is not None:  # the file's size, which the client needs to ask again
            self.headers = {"Content-Range": f"bytes */{size}"}


class TooManyRequestsError(_ClientError):
    status = 429
    error_code = "REQUEST_LIMIT_EXCEEDED"


class NotReadyError(_ClientError):
    status = 503
    error_code = "NOT_READY"


class DatabaseUnavailableError(LakegateError):
    """The catalog's database refused or dropped the connection (stopped, restarting, failing over): 503, so
    clients retry; the connection pool pings before reuse, so requests succeed again once it is back."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    client_message = "The server's database is unavailable right now; try again shortly."


class IdpUnavailableError(LakegateError):
    """The identity provider of a federated token's issuer could not give its signing keys (unreachable, slow,
    an error answer, or a document that is not what OpenID Connect Discovery says). Nothing is wrong with the
    request as such: 503, so clients retry. The message (logged) names the URL; the client hears less."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    client_message = "The token's identity provider cannot be reached to verify it; try again shortly."


class VendingError(LakegateError):
    """The cloud refused or failed to issue a credential. The message is safe to show (it names no secret
    and no cloud account detail); what the cloud said is in the server log."""

    error_code = "CREDENTIAL_VENDING_FAILED"
    public = True


class TableStateError(LakegateError):
    """The provider's table cannot be read as it stands: its log lost a commit that no checkpoint covers, or a
    log file is corrupt or truncated. It is the provider's problem, not the request's, hence a 5xx. The message
    (sent to recipients) names the problem and the version but never a storage path; `detail` (logged as an
    ERROR with the request's table) names the file."""

    public = True

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class StorageError(LakegateError):
    """Reading a table's storage failed (missing log, access denied, network)."""

    client_message = "The provider's storage could not be read; the server log has the details."


class StorageUnavailableError(StorageError):
    """The store could not be reached (connection refused or reset, timeout, a 5xx from the store): worth a
    retry, which the official clients do on a 5xx."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    client_message = "The provider's storage cannot be reached right now; try again shortly."


class ConfigError(LakegateError):
    """The configuration is invalid; the message names the key and the problem."""


class InvalidLocationError(ConfigError):
    """A storage location this server cannot use: in the configuration or catalog (a table's location), or in
    a table's log (an absolute file path). The server's problem, not the client's: a 500 whose message, which
    names the location, stays in the log."""


INTERNAL_MESSAGE = LakegateError.client_message


def public_message(exc: BaseException) -> str:
    """What a client may be told about `exc`: its message if the class is public, else its class's fixed
    sentence."""
    if isinstance(exc, LakegateError):
        return exc.message if exc.public else exc.client_message
    return INTERNAL_MESSAGE
