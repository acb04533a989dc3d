"""The Activity charts' sums: per recipient per day, admin changes left out, errors by code."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

from lakegate.http.console.charts import activity_charts


def _row(day: int, recipient: str | None, operation: str = "query", **extra: object) -> SimpleNamespace:
    values: dict[str, object] = {"mode": "url", "files": 2, "data_bytes": 1000, "outcome": "ok", **extra}
    return SimpleNamespace(
        at=datetime(2026, 11, day, 9, tzinfo=UTC), recipient=recipient, operation=operation, **values
    )


def test_the_charts_sum_per_recipient_and_day() -> None:
    rows = [
        _row(1, "a"),
        _row(1, "a", data_bytes=500),
        _row(2, "b"),
        _row(2, "b", "temporary-credentials", mode="dir", files=None, data_bytes=None),
        _row(3, None, outcome="UNAUTHENTICATED", files=None, data_bytes=None),
        _row(3, "a", outcome="RESOURCE_DOES_NOT_EXIST", files=None, data_bytes=None),
        _row(3, "a", "admin:grant", mode="admin", files=None, data_bytes=None),  # not a request
    ]
    requests, data, credentials, errors = activity_charts(rows, date(2026, 11, 1), date(2026, 11, 3))
    assert requests.total == 6 and data.total == 2500 and credentials.total == 1 and errors.total == 2
    assert data.total_text == "2.5 KB"
    assert {name for _, name in requests.legend} == {"a", "b", "(unauthenticated)"}
    tooltips = sorted(bar.title for bar in data.bars)
    assert tooltips == ["2026-11-01: a, 1.5 KB", "2026-11-02: b, 1 KB"]
    assert sorted(label for _, label in errors.y_labels) == ["RESOURCE_DOES_NOT_EXIST", "UNAUTHENTICATED"]
    # Stacked bars of one day sit on each other, within the plot.
    day_one = sorted((bar.y, bar.height) for bar in requests.bars if bar.title.startswith("2026-11-03"))
    assert len(day_one) == 2 and abs(day_one[0][0] + day_one[0][1] - day_one[1][0]) < 1e-6
