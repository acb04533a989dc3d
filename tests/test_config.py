"""Configuration: the reference server's YAML, lakegate's keys, precedence, and one-line errors (exit 2)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lakegate.config import load_config, parse_config
from lakegate.exceptions import ConfigError

REFERENCE_TEMPLATE = """
# The delta-io reference server's template, as shipped (delta-sharing-server.yaml.template)
version: 1
shares:
- name: "share1"
  schemas:
  - name: "schema1"
    tables:
    - name: "table1"
      location: "s3a://<bucket-name>/<the-table-path>"
      id: "00000000-0000-0000-0000-000000000000"
    - name: "table2"
      location: "wasbs://<container-name>@<account-name>.blob.core.windows.net/<the-table-path>"
      id: "00000000-0000-0000-0000-000000000001"
- name: "share2"
  schemas:
  - name: "schema2"
    tables:
    - name: "table3"
      location: "abfss://<container-name>@<account-name>.dfs.core.windows.net/<the-table-path>"
      historyShared: true
      id: "00000000-0000-0000-0000-000000000002"
authorization:
  bearerToken: <token>
host: "localhost"
port: 8080
endpoint: "/delta-sharing"
preSignedUrlTimeoutSeconds: 3600
deltaTableCacheSize: 10
stalenessAcceptable: false
evaluatePredicateHints: false
evaluateJsonPredicateHints: true
evaluateJsonPredicateHintsV2: true
requestTimeoutSeconds: 30
queryTablePageSizeLimit: 10000
queryTablePageTokenTtlMs: 259200000
refreshTokenTtlMs: 3600000
"""


def test_reference_template_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(REFERENCE_TEMPLATE)
    with caplog.at_level(logging.WARNING):
        config = load_config(path)
    assert [s.name for s in config.shares] == ["share1", "share2"]
    assert config.shares[1].schemas[0].tables[0].history_shared is True
    assert config.authorization is not None
    assert config.authorization.bearer_token is not None
    assert config.authorization.bearer_token.get_secret_value() == "<token>"
    assert config.evaluate_predicate_hints is False
    assert "<token>" not in repr(config)  # secrets are never shown
    assert not [r for r in caplog.records if "unknown key" in r.message]


def test_unknown_keys_are_warned_by_path(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse_config(
            {
                "version": 1,
                "colour": "blue",
                "shares": [
                    {
                        "name": "s",
                        "schemas": [
                            {"name": "d", "tables": [{"name": "t", "location": "/x", "cdfEnabled": True}]}
                        ],
                    }
                ],
            }
        )
    messages = " ".join(r.message for r in caplog.records)
    assert "'colour'" in messages and "'shares[0].schemas[0].tables[0].cdfEnabled'" in messages


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"version": 2}, "version: "),
        ({}, "version: "),
        ({"version": 1, "port": "eighty"}, "port: "),
        ({"version": 1, "port": 70000}, "port: "),
        ({"version": 1, "endpoint": "no-slash"}, "endpoint: "),
        ({"version": 1, "shares": [{"schemas": []}]}, "shares.0.name: "),
        ({"version": 1, "shares": [{"name": "a"}, {"name": "A"}]}, "duplicate name 'A'"),
        (
            {"version": 1, "shares": [{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t"}]}]}]},
            "shares.0.schemas.0.tables.0.location: ",
        ),
        ({"version": 1, "preSignedUrlTimeoutSeconds": 0}, "preSignedUrlTimeoutSeconds: "),
        (
            {
                "version": 1,
                "shares": [
                    {
                        "name": "s",
                        "schemas": [
                            {"name": "d", "tables": [{"name": "t", "location": "/x", "startVersion": -1}]}
                        ],
                    }
                ],
            },
            "startVersion: ",
        ),
        ([1, 2], "mapping"),
    ],
)
def test_invalid_values_name_the_key(data: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "server.yaml")
    message = str(info.value)
    assert fragment in message and "\n" not in message and message.startswith("server.yaml")


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("version: 1\nport: 1234\nhost: 10.0.0.1\n")
    assert load_config(path).port == 1234
    monkeypatch.setenv("LAKEGATE_PORT", "4321")
    monkeypatch.setenv("LAKEGATE_PUBLIC_URL", "https://sharing.example.com")
    config = load_config(path)
    assert (config.port, config.host, config.public_url) == (4321, "10.0.0.1", "https://sharing.example.com")
    monkeypatch.setenv("LAKEGATE_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="port"):
        load_config(path)


def test_storage_entries_longest_prefix_wins() -> None:
    config = parse_config(
        {
            "version": 1,
            "storage": [
                {"location": "s3://bucket/", "aws": {"region": "eu-west-1"}},
                {"location": "s3://bucket/special/", "aws": {"region": "us-west-2"}},
            ],
        }
    )
    special, other = config.storage_for("s3://bucket/special/t1"), config.storage_for("s3://bucket/other")
    assert special is not None and special.aws is not None and special.aws.region == "us-west-2"
    assert other is not None and other.aws is not None and other.aws.region == "eu-west-1"
    assert config.storage_for("s3://elsewhere/t") is None


def _serve(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lakegate", "serve", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("version: 1\nport: [1]\n", "port:"),
        ("version: 1\nshares: {\n", "not valid YAML at line"),
        ("version: 7\n", "version: "),
        ("version: 1\ntokenSigningKey: short\n", "tokenSigningKey: must be at least 16 bytes"),
        ('version: 1\nauthorization: {bearerToken: "change-me"}\n', "bearerToken: is the documentation's"),
        (
            'version: 1\ntokenSigningKey: "a long random string shared by all replicas"\n',
            "tokenSigningKey: is the documentation's placeholder",
        ),
    ],
)
def test_cli_reports_one_line_and_exit_code_2(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = _serve(["--config", str(path)])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"version: 1\n\x88\xff\x00 binary", "not UTF-8 text (byte 11)"),
        (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    ],
)
def test_a_file_that_is_not_a_configuration_is_one_error(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    """A binary file, or YAML nested beyond the parser's recursion, given as --config: a ConfigError (the CLI's
    one `error:` line and exit code 2), not a traceback."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(path)


@pytest.mark.parametrize("name", ["sales/2024", "tab\tle"])
@pytest.mark.parametrize("level", ["share", "schema", "table"])
def test_names_no_url_can_address_are_refused(name: str, level: str) -> None:
    """A share, schema or table named with '/' (or a control character) could never be reached by a recipient:
    the server would start and list it, and answer 404 to every request for it."""
    table = {"name": name if level == "table" else "t", "location": "/data/t"}
    schema = {"name": name if level == "schema" else "d", "tables": [table]}
    share = {"name": name if level == "share" else "s", "schemas": [schema]}
    with pytest.raises(ConfigError, match="must not contain '/' or control characters"):
        parse_config({"version": 1, "shares": [share]})


def test_cli_missing_file(tmp_path: Path) -> None:
    result = _serve(["--config", str(tmp_path / "nope.yaml")])
    assert result.returncode == 2 and "cannot read the configuration file" in result.stderr
    assert "Traceback" not in result.stderr


def test_short_signing_key_from_the_environment_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("version: 1\n")
    monkeypatch.setenv("LAKEGATE_TOKEN_SIGNING_KEY", "0123456789")
    with pytest.raises(ConfigError, match="tokenSigningKey: must be at least 16 bytes"):
        load_config(path)


def test_a_guessable_bearer_token_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse_config({"version": 1, "authorization": {"bearerToken": "secret"}})
    assert any("shorter than 16 characters" in r.message for r in caplog.records)


def test_absolute_location_reads_relative_paths_from_the_configuration_folder(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "server.yaml"
    path.parent.mkdir()
    path.write_text("version: 1\n")
    config = load_config(path)
    assert config.absolute_location("tables/sales") == str(tmp_path / "conf" / "tables" / "sales")
    assert config.absolute_location("../lake/t") == str(tmp_path / "lake" / "t")
    for as_is in ("/data/t", "s3://bucket/t", "abfss://c@a.dfs.core.windows.net/t", "file:///data/t"):
        assert config.absolute_location(as_is) == as_is


@pytest.mark.parametrize(
    "identity",
    [{"managedIdentity": True}, {"tenantId": "t", "clientId": "c", "clientSecret": "s"}, {}],
)
def test_an_azure_token_credential_over_plain_http_is_refused(identity: dict) -> None:
    """The Azure SDK sends a token (managed identity, client secret, the default credential) only over https:
    with an http:// endpoint every request of the table failed, so the configuration says it at start."""
    storage = [
        {
            "location": "wasbs://c@acct.blob.core.windows.net",
            "azure": {"endpoint": "http://127.0.0.1:10000/acct", **identity},
        }
    ]
    with pytest.raises(ConfigError, match=re.escape("azure.endpoint over http:// needs accountKey")):
        parse_config({"version": 1, "storage": storage})
    key = {"endpoint": "http://127.0.0.1:10000/acct", "accountKey": "a2V5"}  # an emulator's account key: fine
    parse_config({"version": 1, "storage": [{**storage[0], "azure": key}]})
