"""Request parsing (protocol.md §2.8–2.10): the types the protocol gives, anything else a 400."""

from __future__ import annotations

from datetime import UTC, datetime, timezone
from typing import Any

import pytest

from lakegate.exceptions import InvalidParameterError, MalformedRequestError
from lakegate.protocol.requests import ChangesRequest, QueryInfoRequest, QueryRequest, parse_timestamp


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: timezone = UTC) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=tz).timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-01-01T00:00:00Z", _ms(2022, 1, 1)),
        ("2022-01-01T00:00:00.123Z", _ms(2022, 1, 1) + 123),
        ("2022-01-01T02:00:00+02:00", _ms(2022, 1, 1)),
        ("2022-01-01T02:00:00 02:00", _ms(2022, 1, 1)),  # an unencoded '+' in a query string
        ("2022-01-01T00:00:00", _ms(2022, 1, 1)),  # naive: UTC
    ],
)
def test_timestamps(text: str, expected: int) -> None:
    assert parse_timestamp(text, "timestamp") == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2022-13-01T00:00:00Z", "1640995200000"])
def test_bad_timestamps(text: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"^Invalid startingTimestamp: "):
        parse_timestamp(text, "startingTimestamp")


def test_query_body() -> None:
    request = QueryRequest.from_body(
        b'{"predicateHints":["a = 1"],"limitHint":"10","version":2,"maxFiles":5,'
        b'"includeRefreshToken":"True","jsonPredicateHints":{"op":"isNull"}}'
    )
    assert request.predicate_hints == ("a = 1",) and request.limit_hint == 10 and request.version == 2
    assert request.max_files == 5 and request.include_refresh_token is True
    assert request.json_predicate_hints == '{"op":"isNull"}'  # an object is taken as its JSON text
    assert QueryRequest.from_body(b"  {}  ") == QueryRequest()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", MalformedRequestError),  # as the reference server: clients send {} for no parameters
        (b" \n", MalformedRequestError),
        (b"{", MalformedRequestError),
        (b'"x"', MalformedRequestError),
        (b'{"predicateHints": "a = 1"}', MalformedRequestError),
        (b'{"predicateHints": [1]}', MalformedRequestError),
        (b'{"pageToken": 5}', MalformedRequestError),
        (b'{"limitHint": "x3"}', InvalidParameterError),
        (b'{"limitHint": true}', InvalidParameterError),
        (b'{"limitHint": 1.5}', InvalidParameterError),
        (b'{"maxFiles": 0}', InvalidParameterError),
        (b'{"maxFiles": 2147483648}', InvalidParameterError),  # not an int32
        (b'{"version": -1}', InvalidParameterError),
        (b'{"includeRefreshToken": "yes"}', InvalidParameterError),
        (b'{"includeRefreshToken": 0}', InvalidParameterError),  # not a boolean, not false
        (b'{"includeHistoricalProtocol": []}', InvalidParameterError),
        # An object too deep for orjson to write back as the protocol's string (it was a 500).
        (
            b'{"jsonPredicateHints": ' + b'{"op":"not","children":[' * 300 + b"{}" + b"]}" * 300 + b"}",
            InvalidParameterError,
        ),
    ],
)
def test_bad_query_bodies(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        QueryRequest.from_body(body)


def test_changes_parameters() -> None:
    params = {
        "startingVersion": "1",
        "endingVersion": "3",
        "includeHistoricalMetadata": "true",
        "maxFiles": "2",
    }
    request = ChangesRequest.from_params(params)
    assert (request.starting_version, request.ending_version, request.max_files) == (1, 3, 2)
    assert request.include_historical_metadata is True and request.include_historical_protocol is False
    # A page token is bound to the parameters that define the result, not to the page size or position.
    again = ChangesRequest.from_params({**params, "maxFiles": "7", "pageToken": "t"})
    assert again.fingerprint() == request.fingerprint()
    assert ChangesRequest.from_params({**params, "endingVersion": "4"}).fingerprint() != request.fingerprint()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "No startingVersion or startingTimestamp provided for CDF read."),
        ({"startingVersion": "0", "startingTimestamp": "t"}, "Multiple starting arguments"),
        ({"startingVersion": "0", "endingVersion": "1", "endingTimestamp": "t"}, "Multiple ending arguments"),
        # the combination is checked before either value is parsed
        ({"startingVersion": "-1", "startingTimestamp": "t"}, "Multiple starting arguments"),
        ({"startingVersion": "0", "endingVersion": "x", "endingTimestamp": "t"}, "Multiple ending arguments"),
    ],
)
def test_changes_bounds(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        ChangesRequest.from_params(params)


def test_query_info_body_takes_both_spellings() -> None:
    assert QueryInfoRequest.from_body(b'{"maxFiles": 3, "pageToken": "t"}') == QueryInfoRequest(3, "t")
    assert QueryInfoRequest.from_body(b'{"max_files": 3, "page_token": "t"}') == QueryInfoRequest(3, "t")
    with pytest.raises(InvalidParameterError):
        QueryInfoRequest.from_body(b'{"maxFiles": 0}')
