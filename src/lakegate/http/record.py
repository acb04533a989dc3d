"""The record of the request being answered: who asked, what the answer held, which error it was. Handlers and
the error renderer write it; the observability middleware (`lakegate.http.observability`) creates it and reads
it when the answer ends, for the access log and the audit trail.

A context variable: Starlette runs sync handlers and streaming bodies in worker threads, which see the same
record object.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from lakegate.catalog.base import Principal
from lakegate.service.responses import NdjsonAnswer


@dataclass
class RequestRecord:
    recipient: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None  # the errorCode of an error answer
    answer: NdjsonAnswer | None = None  # the NDJSON answer being sent: how many file lines went out


_CURRENT: ContextVar[RequestRecord | None] = ContextVar("lakegate_request", default=None)


def start_record() -> tuple[RequestRecord, Token[RequestRecord | None]]:
    record = RequestRecord()
    return record, _CURRENT.set(record)


def end_record(token: Token[RequestRecord | None]) -> None:
    _CURRENT.reset(token)


def observe_principal(principal: Principal) -> None:
    """Called by the authentication step: the audit trail's recipient."""
    record = _CURRENT.get()
    if record is not None:
        record.recipient = principal.recipient


def observe_answer(answer: NdjsonAnswer) -> None:
    """Called for each NDJSON answer: its `stats` (version, files; known before it streams) feed the audit."""
    record = _CURRENT.get()
    if record is not None:
        record.stats = answer.stats
        record.answer = answer


def observe_stats(stats: dict[str, Any]) -> None:
    """Called by JSON answers that the audit records (Iceberg loadTable): the version, whether credentials
    went out."""
    record = _CURRENT.get()
    if record is not None:
        record.stats = stats


def observe_error(error_code: str) -> None:
    """Called by the error renderer: the audit trail's outcome."""
    record = _CURRENT.get()
    if record is not None:
        record.error_code = error_code
