"""Request parameters as the protocol defines them, parsed strictly: a wrong type is a 400, never a 500."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from lakegate.exceptions import InvalidParameterError, MalformedRequestError

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def parse_timestamp(text: str, name: str) -> int:
    """ISO-8601 with any offset (`2022-01-01T00:00:00Z`, `…+02:00`); a naive value is UTC. Returns epoch ms."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidParameterError(f"Invalid {name}: {text}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


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
        raise InvalidParameterError(f"{name} cannot be negative." if minimum == 0 else f"{name} must be positive.")
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
        if not body.strip():
            return cls()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedRequestError(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedRequestError("the request body must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryRequest:
        def get(name: str) -> Any:
            value = data.get(name)
            return None if value is None else value

        hints = get("predicateHints")
        if hints is not None and (not isinstance(hints, list) or not all(isinstance(h, str) for h in hints)):
            raise MalformedRequestError("predicateHints must be an array of strings")
        json_hints = get("jsonPredicateHints")
        if json_hints is not None and not isinstance(json_hints, str):
            # The protocol types it as a string holding JSON; accept an object too (an old OpenAPI file said so).
            json_hints = orjson.dumps(json_hints).decode()

        def opt_int(name: str, minimum: int = 0, maximum: int = INT64_MAX) -> int | None:
            value = get(name)
            return None if value is None else parse_int(value, name, minimum=minimum, maximum=maximum)

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
            ending_version=opt_int("endingVersion"),
            include_historical_protocol=parse_bool(get("includeHistoricalProtocol") or False,
                                                   "includeHistoricalProtocol"),
            max_files=opt_int("maxFiles", minimum=1, maximum=INT32_MAX),
            page_token=opt_str("pageToken"),
            include_refresh_token=parse_bool(get("includeRefreshToken") or False, "includeRefreshToken"),
            refresh_token=opt_str("refreshToken"),
            idempotency_key=opt_str("idempotencyKey", "idempotency_key"),
        )
