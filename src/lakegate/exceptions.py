"""The one error tree of lakegate.

    LakegateError                      500 INTERNAL_ERROR (message hidden from clients)
    ├── InvalidParameterError          400 INVALID_PARAMETER_VALUE
    ├── MalformedRequestError          400 MALFORMED_REQUEST
    ├── UnsupportedOperationError      400 UNSUPPORTED_OPERATION
    ├── UnauthenticatedError           401 UNAUTHENTICATED
    ├── PermissionDeniedError          403 PERMISSION_DENIED
    ├── NotFoundError                  404 RESOURCE_DOES_NOT_EXIST
    ├── RequestTimeoutError            408 REQUEST_TIMEOUT (the client sent its request too slowly)
    ├── RequestTooLargeError           413 MALFORMED_REQUEST (a body past the configured bound)
    ├── TooManyRequestsError           429 REQUEST_LIMIT_EXCEEDED
    ├── TableFilesMissingError         400 RESOURCE_DOES_NOT_EXIST (the shared table has no Delta log)
    ├── TableStateError                500 INTERNAL_ERROR (the provider's table is broken: a commit missing
    │                                      from its log, a corrupt or truncated log file; details in the log)
    ├── StorageError                   500 INTERNAL_ERROR (a store failed; details only in the log)
    │   └── StorageUnavailableError    503 TEMPORARILY_UNAVAILABLE (the store cannot be reached right now)
    └── ConfigError                    a configuration file or value is invalid (CLI: exit code 2)

Every non-2xx HTTP answer is rendered from these by one function (`lakegate.http.errors`). Cloud SDK errors
are translated inside `lakegate.cloud.*` with `raise ... from exc`.
"""

from __future__ import annotations


class LakegateError(Exception):
    status = 500
    error_code = "INTERNAL_ERROR"
    # Whether `str(self)` may be shown to a client. Internal errors are logged, never sent: the client gets
    # `client_message` instead.
    public = False
    client_message = "An internal error occurred; the server log has the details."

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


class UnsupportedOperationError(_ClientError):
    status = 400
    error_code = "UNSUPPORTED_OPERATION"


class UnauthenticatedError(_ClientError):
    status = 401
    error_code = "UNAUTHENTICATED"


class PermissionDeniedError(_ClientError):
    status = 403
    error_code = "PERMISSION_DENIED"


class NotFoundError(_ClientError):
    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class RequestTimeoutError(_ClientError):
    status = 408
    error_code = "REQUEST_TIMEOUT"


class RequestTooLargeError(_ClientError):
    status = 413
    error_code = "MALFORMED_REQUEST"


class TooManyRequestsError(_ClientError):
    status = 429
    error_code = "REQUEST_LIMIT_EXCEEDED"


class TableFilesMissingError(_ClientError):
    """The reference server's answer for a table whose files are gone (400, so clients do not retry)."""

    status = 400
    error_code = "RESOURCE_DOES_NOT_EXIST"


class TableStateError(LakegateError):
    """The provider's table cannot be read as it stands: its log lost a commit that no checkpoint covers, or a
    log file is corrupt or truncated. It is the provider's problem, not the request's, hence a 5xx. The message
    (sent to recipients) names the problem and the version but never a storage path; `detail` (logged as an
    ERROR with the request's table) names the file."""

    status = 500
    error_code = "INTERNAL_ERROR"
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


class VendingError(LakegateError):
    """The cloud refused or failed to issue a credential. The message is safe to show (it names no secret
    and no cloud account detail); what the cloud said is in the server log."""

    public = True


class ConfigError(LakegateError):
    """The configuration is invalid; the message names the key and the problem."""


INTERNAL_MESSAGE = LakegateError.client_message


def public_message(exc: BaseException) -> str:
    """What a client may be told about `exc`: its message if the class is public, else its class's fixed
    sentence."""
    if isinstance(exc, LakegateError):
        return exc.message if exc.public else exc.client_message
    return INTERNAL_MESSAGE
