"""The recipient client's public API is what `lakegate.client.__all__` says; this test fails on drift."""

from __future__ import annotations

import lakegate.client

EXPECTED = {
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
}


def test_public_api() -> None:
    assert set(lakegate.client.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(lakegate.client, name) is not None


def test_table_urls_and_profiles(tmp_path) -> None:
    import json

    import pytest

    from lakegate.client import Profile, ProfileError, parse_table_url

    path, ref = parse_table_url("/p/my profile.share#s.sc.t")
    assert (path, ref.share, ref.schema, ref.name) == ("/p/my profile.share", "s", "sc", "t")
    for bad in ("/p/x.share", "/p/x.share#s.t", "#s.sc.t", "/p#s..t"):
        with pytest.raises(ProfileError):
            parse_table_url(bad)
    good = tmp_path / "ok.share"
    good.write_text(
        json.dumps({"shareCredentialsVersion": 1, "endpoint": "https://h/ds/", "bearerToken": "sekret"})
    )
    assert Profile.load(good).endpoint == "https://h/ds" and "sekret" not in repr(Profile.load(good))
    oauth = tmp_path / "oauth.share"
    oauth.write_text(
        json.dumps(
            {
                "shareCredentialsVersion": 2,
                "type": "oauth_client_credentials",
                "endpoint": "https://h/ds",
                "tokenEndpoint": "https://h/ds/oauth/token",
                "clientId": "c",
                "clientSecret": "sekret",
            }
        )
    )
    loaded = Profile.load(oauth)
    assert (loaded.kind, loaded.fields["clientId"]) == ("oauth_client_credentials", "c")
    assert "sekret" not in repr(loaded)
    for data, reason in (
        ({"shareCredentialsVersion": 2, "endpoint": "https://h", "bearerToken": "t"}, "not supported"),
        ({"shareCredentialsVersion": 1, "endpoint": "https://h"}, "bearerToken are required"),
        (
            {"shareCredentialsVersion": 2, "type": "basic", "endpoint": "https://h", "username": "u"},
            "password",
        ),
        (
            {"shareCredentialsVersion": 2, "type": "oauth_client_credentials", "endpoint": "https://h"},
            "clientId",
        ),
        (
            {
                "shareCredentialsVersion": 2,
                "type": "oauth_jwt_bearer_private_key_jwt",
                "endpoint": "https://h",
                "auth": {"tokenEndpoint": "https://h/t", "issuer": "https://h", "clientId": "c"},
            },
            "auth.privateKey are required",
        ),
        ({"shareCredentialsVersion": 3, "endpoint": "https://h", "bearerToken": "t"}, "not supported"),
        (
            {
                "shareCredentialsVersion": 1,
                "endpoint": "https://h",
                "bearerToken": "t",
                "expirationTime": "2020-01-01T00:00:00Z",
            },
            "expired",
        ),
        (
            {"shareCredentialsVersion": 1, "endpoint": "file:///etc", "bearerToken": "t"},
            "http:// or https://",
        ),
        ({"shareCredentialsVersion": 1, "endpoint": "h/ds", "bearerToken": "t"}, "http:// or https://"),
    ):
        bad_file = tmp_path / "bad.share"
        bad_file.write_text(json.dumps(data))
        with pytest.raises(ProfileError, match=reason):
            Profile.load(bad_file)


def test_every_client_error_has_the_one_root() -> None:
    from lakegate.client import errors

    raised = [
        getattr(errors, name)
        for name in dir(errors)
        if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), BaseException)
    ]
    assert len(raised) == 5
    assert all(issubclass(cls, lakegate.client.ClientError) for cls in raised)
    for name in ("ProfileError", "SharingError", "DirectoryAccessUnavailable", "CredentialError"):
        assert getattr(lakegate.client, name) is getattr(errors, name)
