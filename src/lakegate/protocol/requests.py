"""Request parameters as the protocol defines them, parsed strictly: a wrong type is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from lakegate.exceptions import InvalidParameterError, MalformedRequestError

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIMESTAMP_CHARS = 64  # `YYYY-MM-DDTHH:MM:SS.fffffffff+HH:MM` is 35; anything far longer is not one
_DIGITS_AT = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15)  # of `YYYY-MM-DDTHH:MM`


def parse_timestamp(text: str, name: str) -> int:
    """A date and a time, as the reference server takes them: ISO-8601 with any offset (`2022-01-01T00:00:00Z`,
    `…+02:00`) or `2022-01-01 00:00:00` (`java.sql.Timestamp`); a value without offset is UTC. A date alone
    (`2022-01-01`) is refused, as by the reference server. Returns epoch ms.

    Checked by shape first (fixed positions, no regular expression), then parsed by `fromisoformat`."""
    value = text.strip()
    if not (len(value) <= _MAX_TIMESTAMP_CHARS and value.isascii() and _has_date_and_time(value)):
        raise InvalidParameterError(f"Invalid {name}: {text[:_MAX_TIMESTAMP_CHARS]}")
    try:
        parsed = datetime.fromisoformat(_restore_plus(value).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidParameterError(f"Invalid {name}: {value}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Integer arithmetic: float seconds * 1000 can land one millisecond short of the instant given.
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _has_date_and_time(value: str) -> bool:
    """`YYYY-MM-DD`, `T` or a space, `HH:MM`, then anything `fromisoformat` may judge."""
    return (
        len(value) >= 16
        and value[4] == value[7] == "-"
        and value[10] in "Tt "
        and value[13] == ":"
        and all(value[i].isdigit() for i in _DIGITS_AT)
    )


def _restore_plus(value: str) -> str:
    """An unencoded '+' in a query string arrives as a space: `…T10:00:00 02:00` means `…T10:00:00+02:00`."""
    time, space, offset = value[11:].rpartition(" ")
    digits = offset.replace(":", "", 1)
    if space and time[-1:].isdigit() and len(digits) in (2, 4) and digits.isdigit() and offset[:2].isdigit():
        return f"{value[:11]}{time}+{offset}"
    return value


def parse_bool(value: Any, name: str) -> bool:
    """JSON booleans, and the strings true/false in any case (the Python client sends `True`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidParameterError(f"{name} must be a boolean, got {value!r}")


def parse_int(value: Any, name: str, *, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """JSON integers or integer strings (protobuf JSON allows both for int64)."""
    if isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise InvalidParameterError(f"{name} is not a valid number.") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidParameterError(
            f"{name} cannot be negative." if minimum == 0 else f"{name} must be positive."
        )
    if value > maximum:
        raise InvalidParameterError(f"{name} is too large: {value}")
    return value


@dataclass(frozen=True)
class QueryRequest:
    predicate_hints: tuple[str, ...] = ()
    json_predicate_hints: str | None = None
    limit_hint: int | None = None
    version: int | None = None
    timestamp: str | None = None
    starting_version: int | None = None
    ending_version: int | None = None
    include_historical_protocol: bool = False
    max_files: int | None = None
    page_token: str | None = None
    include_refresh_token: bool = False
    refresh_token: str | None = None
    idempotency_key: str | None = None

    @classmethod
    def from_body(cls, body: bytes) -> QueryRequest:
        if not body.strip():  # clients send `{}` when no parameter is set; the reference server answers this
            raise MalformedRequestError(
                "the request body is empty; send a JSON object ({} for no parameters)"
            )
        return cls.from_dict(json_object(body))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryRequest:
        def get(name: str) -> Any:
            value = data.get(name)
            return None if value is None else value

        # Which parameters go together is checked before any of their values, as the reference server does.
        only_one_of(data, "version", "timestamp", "startingVersion")
        hints = get("predicateHints")
        if hints is not None and (not isinstance(hints, list) or not all(isinstance(h, str) for h in hints)):
            raise MalformedRequestError("predicateHints must be an array of strings")
        json_hints = get("jsonPredicateHints")
        if json_hints is not None and not isinstance(json_hints, str):
            # The protocol types it as a string holding JSON; accept an object too (an old OpenAPI file said so).
            try:
                json_hints = orjson.dumps(json_hints).decode()
            except orjson.JSONEncodeError:  # nested past orjson's 255 levels: far deeper than any hint may be
                raise InvalidParameterError("jsonPredicateHints is nested too deeply") from None

        def opt_int(name: str, minimum: int = 0, maximum: int = INT64_MAX) -> int | None:
            value = get(name)
            return None if value is None else parse_int(value, name, minimum=minimum, maximum=maximum)

        def opt_bool(name: str) -> bool:
            # Only a boolean (or "true"/"false") is one: `0`, `""` and `[]` are wrong types, not false.
            value = get(name)
            return False if value is None else parse_bool(value, name)

        def opt_str(*names: str) -> str | None:
            for name in names:
                value = get(name)
                if value is not None:
                    if not isinstance(value, str):
                        raise MalformedRequestError(f"{name} must be a string")
                    return value
            return None

        version = get("version")
        if version is not None and parse_int(version, "version", minimum=-INT64_MAX) < 0:
            raise InvalidParameterError("table version cannot be negative.")
        return cls(
            predicate_hints=tuple(hints or ()),
            json_predicate_hints=json_hints,
            limit_hint=opt_int("limitHint"),
            version=opt_int("version"),
            timestamp=opt_str("timestamp"),
            starting_version=opt_int("startingVersion"),
            # Any int64: it only bounds a startingVersion query (where a negative one fails startingVersion <=
            # endingVersion) and is ignored otherwise, as the reference server does.
            ending_version=opt_int("endingVersion", minimum=-INT64_MAX),
            include_historical_protocol=opt_bool("includeHistoricalProtocol"),
            max_files=opt_int("maxFiles", minimum=1, maximum=INT32_MAX),
            page_token=opt_str("pageToken"),
            include_refresh_token=opt_bool("includeRefreshToken"),
            refresh_token=opt_str("refreshToken"),
            idempotency_key=opt_str("idempotencyKey", "idempotency_key"),
        )


def only_one_of(given: Mapping[str, Any], *names: str) -> None:
    """400 "Please only provide one of: a,b" when more than one of `names` is set (the reference's message)."""
    if sum(1 for name in names if given.get(name) is not None) > 1:
        raise InvalidParameterError(f"Please only provide one of: {','.join(names)}")


def parse_version(text: str | None) -> int | None:
    """A `version` query parameter: an int64 that is not negative."""
    if text is None:
        return None
    if parse_int(text, "version", minimum=-INT64_MAX) < 0:
        raise InvalidParameterError("table version cannot be negative.")
    return parse_int(text, "version")


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; an empty body is `{}`. MalformedRequestError otherwise."""
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRequestError("the request body must be a JSON object")
    return data


@dataclass(frozen=True)
class ChangesRequest:
    """Query parameters of GET …/changes (protocol.md §2.9), parsed once the table is known to share its
    history. Which parameters go together is checked before their values, as the reference server does."""

    starting_version: int | None = None
    starting_timestamp: str | None = None
    ending_version: int | None = None
    ending_timestamp: str | None = None
    include_historical_metadata: bool = False
    include_historical_protocol: bool = False
    max_files: int | None = None
    page_token: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ChangesRequest:
        cls.check_bounds(params)

        def opt_int(name: str, minimum: int = 0, maximum: int = INT64_MAX) -> int | None:
            value = params.get(name)
            return None if value is None else parse_int(value, name, minimum=minimum, maximum=maximum)

        def opt_bool(name: str) -> bool:
            value = params.get(name)
            return False if value is None or not value.strip() else parse_bool(value, name)

        return cls(
            starting_version=opt_int("startingVersion"),
            starting_timestamp=params.get("startingTimestamp"),
            ending_version=opt_int("endingVersion"),
            ending_timestamp=params.get("endingTimestamp"),
            include_historical_metadata=opt_bool("includeHistoricalMetadata"),
            include_historical_protocol=opt_bool("includeHistoricalProtocol"),
            max_files=opt_int("maxFiles", minimum=1, maximum=INT32_MAX),
            page_token=params.get("pageToken") or None,
        )

    @staticmethod
    def check_bounds(params: Mapping[str, str]) -> None:
        if params.get("startingVersion") is not None and params.get("startingTimestamp") is not None:
            raise InvalidParameterError(
                "Multiple starting arguments provided for CDF read. Please provide one of "
                "either startingTimestamp or startingVersion."
            )
        if params.get("endingVersion") is not None and params.get("endingTimestamp") is not None:
            raise InvalidParameterError(
                "Multiple ending arguments provided for CDF read. Please provide one of "
                "either endingTimestamp or endingVersion."
            )
        if params.get("startingVersion") is None and params.get("startingTimestamp") is None:
            raise InvalidParameterError("No startingVersion or startingTimestamp provided for CDF read.")

    def fingerprint(self) -> dict[str, Any]:
        """The parameters that define the result (a page token is bound to them)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("max_files", "page_token")}


@dataclass(frozen=True)
class QueryInfoRequest:
    """Body of POST …/queries/{queryId}: `maxFiles` and `pageToken` (also the proto's snake_case names)."""

    max_files: int | None = None
    page_token: str | None = None

    @classmethod
    def from_body(cls, body: bytes) -> QueryInfoRequest:
        data = json_object(body)
        max_files = data.get("maxFiles", data.get("max_files"))
        token = data.get("pageToken", data.get("page_token"))
        if token is not None and not isinstance(token, str):
            raise MalformedRequestError("pageToken must be a string")
        return cls(
            max_files=None
            if max_files is None
            else parse_int(max_files, "maxFiles", minimum=1, maximum=INT32_MAX),
            page_token=token or None,
        )
