"""A provider who forgot S3 credentials: the recipient gets a neutral 500 (no bucket, no path, no SDK message),
and the operator one ERROR line per failed request naming the table's file and the cause, with no traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.inprocess import start_app


def test_missing_s3_credentials_are_one_error_line_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    table = {"name": "t", "location": "s3://provider-bucket/secret-path/t"}
    app = start_app(
        tmp_path,
        {
            "storage": [{"location": "s3://provider-bucket/", "aws": {"endpoint": "http://127.0.0.1:9"}}],
            "shares": [{"name": "s", "schemas": [{"name": "d", "tables": [table]}]}],
        },
    )
    try:
        with caplog.at_level(logging.INFO):
            answers = [app.post("/shares/s/schemas/d/tables/t/query", json={}) for _ in range(3)]
    finally:
        app.close()
    for answer in answers:
        assert answer.status_code == 500 and answer.json()["errorCode"] == "INTERNAL_ERROR"
        assert "provider-bucket" not in answer.text and "secret-path" not in answer.text
        assert "credentials" not in answer.text.lower()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3
    for record in errors:
        assert record.exc_info is None and "\n" not in record.getMessage()
        assert "s3://provider-bucket/secret-path/t/_delta_log" in record.getMessage()
        assert "Unable to locate credentials" in record.getMessage()
