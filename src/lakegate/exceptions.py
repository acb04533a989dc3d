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
    ├── StorageError                   500 INTERNAL_ERROR (a store failed; details only in the log)
    └── ConfigError                    a configuration file or value is invalid (CLI: exit code 2)

Every non-2xx HTTP answer is rendered from these by one function (`lakegate.http.errors`). Cloud SDK errors
are translated inside `lakegate.cloud.*` with `raise ... from exc`.
"""

from __future__ import annotations


class LakegateError(Exception):
    status = 500
    error_code = "INTERNAL_ERROR"
    # Whether `str(self)` may be shown to a client. Internal errors are logged, never sent.
    public = False

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


class StorageError(LakegateError):
    """Reading a table's storage failed (missing log, access denied, network)."""


class VendingError(LakegateError):
    """The cloud refused or failed to issue a credential. The message is safe to show (it names no secret
    and no cloud account detail); what the cloud said is in the server log."""

    public = True


class ConfigError(LakegateError):
    """The configuration is invalid; the message names the key and the problem."""


INTERNAL_MESSAGE = "An internal error occurred; the server log has the details."


def public_message(exc: BaseException) -> str:
    """What a client may be told about `exc`: its message if the class is public, else a fixed sentence."""
    if isinstance(exc, LakegateError) and exc.public:
        return exc.message
    return INTERNAL_MESSAGE
