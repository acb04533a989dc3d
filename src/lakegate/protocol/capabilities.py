"""The `delta-sharing-capabilities` header: what the client can read, and what the server chose."""

from __future__ import annotations

from dataclasses import dataclass, field

PARQUET = "parquet"
DELTA = "delta"
HEADER = "delta-sharing-capabilities"


@dataclass(frozen=True)
class Capabilities:
    response_formats: tuple[str, ...] = ()  # as requested, in order; empty = not sent (means parquet)
    reader_features: frozenset[str] = field(default_factory=frozenset)
    include_end_stream_action: bool = False
    async_query: bool = False

    @classmethod
    def parse(cls, header: str | None) -> Capabilities:
        """Keys and values are case-insensitive; `key=v1,v2` pairs separated by ';'. Malformed parts are ignored,
        as the reference server does, so a client sending an unknown capability is still served."""
        values: dict[str, list[str]] = {}
        for part in (header or "").lower().split(";"):
            key, sep, value = part.partition("=")
            if sep and key.strip():
                values[key.strip()] = [v.strip() for v in value.split(",") if v.strip()]
        return cls(
            response_formats=tuple(values.get("responseformat", ())),
            reader_features=frozenset(values.get("readerfeatures", ())),
            include_end_stream_action=values.get("includeendstreamaction", ["false"])[0] == "true",
            async_query=values.get("asyncquery", ["false"])[0] == "true",
        )


def response_header(response_format: str, end_stream_action: bool = False) -> str:
    value = f"responseformat={response_format}"
    return value + ";includeendstreamaction=true" if end_stream_action else value
