"""Every error the recipient client raises derives from `ClientError` (catch that one). Each also keeps the
built-in base it had before there was a root, so existing `except ValueError`/`RuntimeError` code still works.

    ClientError
    ├── ProfileError                (ValueError)    the profile file or the table URL is not usable
    ├── SharingError                (RuntimeError)  the sharing server answered with an error
    ├── DirectoryAccessUnavailable  (RuntimeError)  the table cannot be opened in directory mode
    └── CredentialError             (ValueError)    a vended credential this client cannot use
"""

from __future__ import annotations


class ClientError(Exception):
    """The root of the recipient client's errors."""


class ProfileError(ClientError, ValueError):
    """The profile file or the table URL is not usable."""


class SharingError(ClientError, RuntimeError):
    """The sharing server answered with an error: `status`, `error_code` and its message."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status, self.error_code = status, error_code


class DirectoryAccessUnavailable(ClientError, RuntimeError):  # noqa: N818  - public name, kept
    """The table cannot be opened in directory mode (the server offers URL access only, or names a location
    this client cannot use)."""


class CredentialError(ClientError, ValueError):
    """The server vended a credential this client cannot use."""
