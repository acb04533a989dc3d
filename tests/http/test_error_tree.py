"""Every class of the error tree (`lakegate.exceptions`), raised through a real route of a real app in process:
the answer has the class's status and error code, a public message or the fixed internal one, and the audit
trail records the same code (handed over by the error renderer, not read back from the body)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from lakegate import exceptions
from lakegate.audit import AuditLog
from lakegate.catalog.db import Database
from lakegate.config import parse_config
from lakegate.exceptions import INTERNAL_MESSAGE, LakegateError
from lakegate.server import build_app
from lakegate.service.tables import TableService
from tests.tables import build_plain

TOKEN = "error-tree-token-0123456789"
METADATA = "/delta-sharing/shares/s/schemas/d/tables/t/metadata"


def _tree(root: type[LakegateError] = LakegateError) -> list[type[LakegateError]]:
    found = [root]
    for sub in root.__subclasses__():
        found += _tree(sub)
    return found


# Public classes of the module; `_ClientError` is only the shared base of the public ones.
CLASSES = [cls for cls in _tree() if not cls.__name__.startswith("_")]


def _instance(cls: type[LakegateError]) -> LakegateError:
    message = f"the {cls.__name__} message"
    return (
        exceptions.RangeNotSatisfiableError(message, 42)
        if cls is exceptions.RangeNotSatisfiableError
        else cls(message)
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Database]]:
    root = tmp_path_factory.mktemp("error-tree")
    url = f"sqlite:///{root / 'catalog.db'}"
    config = parse_config(
        {
            "version": 1,
            "database": url,
            "warmUp": False,
            "authorization": {"bearerToken": TOKEN},
            "shares": [
                {
                    "name": "s",
                    "schemas": [
                        {"name": "d", "tables": [{"name": "t", "location": build_plain(root / "t")}]}
                    ],
                }
            ],
        }
    )
    db = Database(url)
    with TestClient(build_app(config), base_url="http://lakegate.test") as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client, db
    db.close()


def test_the_docstring_draws_every_class_with_its_status_and_code() -> None:
    module_classes = {
        v for v in vars(exceptions).values() if isinstance(v, type) and issubclass(v, LakegateError)
    }
    assert module_classes == set(_tree())
    drawn = {
        m["name"]: (int(m["status"]), m["code"])
        for m in re.finditer(
            r"(?P<name>[A-Za-z]+)\s+(?P<status>\d{3}) (?P<code>[A-Z_]+)", exceptions.__doc__ or ""
        )
    }
    assert drawn == {cls.__name__: (cls.status, cls.error_code) for cls in CLASSES}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_error_answers_with_its_status_and_code(
    cls: type[LakegateError],
    server: tuple[TestClient, Database],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, db = server
    caplog.set_level(logging.INFO, logger="lakegate.audit")
    error = _instance(cls)

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(TableService, "table_metadata", fail)
    before = len(AuditLog(db).query(limit=1000))
    response = client.get(METADATA)
    assert response.status_code == cls.status
    body = response.json()
    assert body["errorCode"] == cls.error_code
    assert body["message"] == (error.message if cls.public else cls.client_message)
    if cls is exceptions.RangeNotSatisfiableError:
        assert response.headers["content-range"] == "bytes */42"
    # The audit event: always logged, stored unless nobody was authenticated (strangers cost no write).
    logged = [r.audit for r in caplog.records if hasattr(r, "audit")]
    assert (logged[-1]["operation"], logged[-1]["status"], logged[-1]["outcome"]) == (
        "metadata",
        cls.status,
        cls.error_code,
    )
    events = AuditLog(db).query(limit=1000)
    if cls is exceptions.UnauthenticatedError:
        assert len(events) == before
    else:
        assert len(events) == before + 1
        assert (events[-1]["status"], events[-1]["outcome"]) == (cls.status, cls.error_code)


def test_framework_errors_are_classes_of_the_tree(server: tuple[TestClient, Database]) -> None:
    client, _ = server
    unknown = client.get("/delta-sharing/no-such-endpoint")
    assert (unknown.status_code, unknown.json()["errorCode"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    wrong_method = client.delete("/delta-sharing/shares")
    assert (wrong_method.status_code, wrong_method.json()["errorCode"]) == (405, "METHOD_NOT_ALLOWED")


def test_a_non_lakegate_exception_is_a_hidden_internal_error(
    server: tuple[TestClient, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, db = server

    def fail(*args: object, **kwargs: object) -> None:
        raise KeyError("/secret/server/path")

    monkeypatch.setattr(TableService, "table_metadata", fail)
    client_ = TestClient(client.app, base_url="http://lakegate.test", raise_server_exceptions=False)
    response = client_.get(METADATA, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (response.status_code, response.json()) == (
        500,
        {"errorCode": "INTERNAL_ERROR", "message": INTERNAL_MESSAGE},
    )
    assert AuditLog(db).query(limit=1)[-1]["outcome"] == "INTERNAL_ERROR"
