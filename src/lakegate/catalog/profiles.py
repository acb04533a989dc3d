"""The profile files recipients receive, one shape per authentication method (the official client's names:
delta_sharing/protocol.py, DeltaSharingProfile.from_json). Version 1 is the bearer token profile every client
reads; version 2 adds `type`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lakegate.catalog.bearer_tokens import profile as bearer_profile

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret; below the sharing endpoint
METADATA_PATH = "/.well-known/oauth-authorization-server"
# What `privateKeyFile` says until the recipient puts the path of its own private key there.
PRIVATE_KEY_PLACEHOLDER = "<path of your private key, PEM>"


def basic(endpoint: str, name: str, token: str) -> dict[str, Any]:
    return {
        "shareCredentialsVersion": 2,
        "type": "basic",
        "endpoint": endpoint,
        "username": name,
        "password": token,
    }


def client_credentials(endpoint: str, client_id: str, secret: str) -> dict[str, Any]:
    return {
        "shareCredentialsVersion": 2,
        "type": "oauth_client_credentials",
        "endpoint": endpoint,
        "tokenEndpoint": endpoint + TOKEN_PATH,
        "clientId": client_id,
        "clientSecret": secret,
    }


def private_key_jwt(endpoint: str, client_id: str, key_id: str, algorithm: str) -> dict[str, Any]:
    # The client signs its assertion with aud = `issuer`: lakegate's issuer is its sharing endpoint URL.
    return {
        "shareCredentialsVersion": 2,
        "type": "oauth_jwt_bearer_private_key_jwt",
        "endpoint": endpoint,
        "auth": {
            "tokenEndpoint": endpoint + TOKEN_PATH,
            "issuer": endpoint,
            "clientId": client_id,
            "audience": endpoint,
            "privateKey": {
                "privateKeyFile": PRIVATE_KEY_PLACEHOLDER,
                "keyId": key_id,
                "algorithm": algorithm,
            },
        },
    }


# What an OIDC-federated recipient's profile says until the recipient puts its own IdP's values there.
TOKEN_ENDPOINT_PLACEHOLDER = "<your identity provider's token endpoint>"  # noqa: S105 - a placeholder
CLIENT_ID_PLACEHOLDER = "<your application's client id at your identity provider>"
CLIENT_SECRET_PLACEHOLDER = "<your application's client secret at your identity provider>"  # noqa: S105


def federated(endpoint: str, token_endpoint: str | None, scope: str | None = None) -> dict[str, Any]:
    """An OIDC-federated recipient's profile: the official client's client-credentials flow, pointed at the
    recipient's own identity provider. lakegate knows none of the credentials the recipient fills in there.
    `scope` is written only when given: the official client sends whatever the profile says, so a placeholder
    left in place would be sent to the IdP as the scope (and some IdPs need none)."""
    profile = {
        "shareCredentialsVersion": 2,
        "type": "oauth_client_credentials",
        "endpoint": endpoint,
        "tokenEndpoint": token_endpoint or TOKEN_ENDPOINT_PLACEHOLDER,
        "clientId": CLIENT_ID_PLACEHOLDER,
        "clientSecret": CLIENT_SECRET_PLACEHOLDER,
    }
    if scope:
        profile["scope"] = scope
    return profile


def for_method(
    auth: str,
    endpoint: str,
    name: str,
    secret: str,
    expires_at: datetime | None,
    key: dict[str, str] | None,
) -> dict[str, Any]:
    """The profile of a newly issued credential of method `auth` (see catalog.recipients.AUTH_METHODS)."""
    if auth == "private-key-jwt" and key is not None:
        return private_key_jwt(endpoint, name, key["keyId"], key["algorithm"])
    if auth == "oauth":
        return client_credentials(endpoint, name, secret)
    if auth == "basic":
        return basic(endpoint, name, secret)
    return bearer_profile(endpoint, secret, expires_at)
