"""A seeded HTTP fuzzer for a running lakegate: every route, valid and mutated paths, query parameters, bodies,
headers and tokens.

Request `i` of seed `s` is generated from `random.Random(f"{s}-{i}")` and the tokens, page tokens and file URLs
harvested before the run, so a finding is reproduced by its seed and index. Requests go over raw
`http.client` connections (kept alive, a few in parallel): httpx would normalise `..` and percent-encodings
out of the paths, which are exactly what the fuzzer must send.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

# ---------------------------------------------------------------------------------------------------------------
# What is known about the server before the run


@dataclass
class World:
    """The server's routes and names, and the tokens and URLs a first round of valid requests handed out."""

    endpoint: str  # path prefix of the protocol routes, e.g. /delta-sharing
    tables: dict[str, dict[str, list[str]]]  # share -> schema -> tables
    tokens: dict[str, str]  # caller -> bearer token (recipients, bootstrap, revoked, expired, admin)
    file_urls: list[str] = field(default_factory=list)  # path?query of signed file URLs
    page_tokens: list[str] = field(default_factory=list)  # list, query and change page tokens
    refresh_tokens: list[str] = field(default_factory=list)
    query_ids: list[tuple[str, str, str, str]] = field(default_factory=list)  # share, schema, table, id

    def triples(self) -> list[tuple[str, str, str]]:
        return [(sh, sc, t) for sh, schemas in self.tables.items() for sc, ts in schemas.items() for t in ts]

    def harvest(self, answer: Any, where: tuple[str, str, str] | None = None) -> None:
        """Collect every token, query id and file URL an answer (a parsed JSON value) holds."""
        if isinstance(answer, dict):
            for key, value in answer.items():
                if isinstance(value, str):
                    if key == "nextPageToken" and value:
                        self.page_tokens.append(value)
                    elif key == "refreshToken" and value:
                        self.refresh_tokens.append(value)
                    elif key == "queryId" and where is not None:
                        self.query_ids.append((*where, value))
                    elif key == "url" and "/files/" in value:
                        parts = urlsplit(value)
                        self.file_urls.append(f"{parts.path}?{parts.query}")
                else:
                    self.harvest(value, where)
        elif isinstance(answer, list):
            for item in answer:
                self.harvest(item, where)


# ---------------------------------------------------------------------------------------------------------------
# Generated requests


@dataclass(frozen=True)
class FuzzRequest:
    index: int
    method: str
    target: str  # path?query, sent byte for byte
    headers: tuple[tuple[str, bytes], ...]
    body: bytes | None
    caller: str  # whose token, or how the Authorization header was mangled

    def describe(self) -> str:
        body = "" if self.body is None else f" body={self.body[:300]!r}"
        headers = {k: v[:120] for k, v in self.headers}
        return f"#{self.index} {self.method} {self.target[:400]} caller={self.caller} headers={headers}{body}"


# Tokens with non-ASCII characters once made KeyRing.verify raise (a 500).
NON_ASCII_TOKENS = True
# Path segments, already percent-encoded: traversal, encoded separators, NUL, bad escapes, non-ASCII, injections.
SEGMENT_ATTACKS = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2e",
    "%252e%252e",
    "..%2f..",
    "%2f",
    "%252f",
    "..%5c..",
    "a%00b",
    "%00",
    "%ff%fe",
    "%",
    "%zz",
    "%C3%9F",
    "%E6%97%A5%E6%9C%AC",
    "%F0%9F%92%A5",
    "%20",
    "%3B",
    "%3F",
    "%23",
    "~",
    "*",
    "$",
    "'",
    "%22",
    "%3Cscript%3E",
    "%0d%0aX-Injected:%201",
    '%0A{"level":"error"}',
    "NUL",
    "con",
]
PATH_ATTACKS = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "....//....//etc/passwd",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "_delta_log/00000000000000000000.json",
    "_delta_log",
    ".",
    "a/../../b",
    "..%c0%af..%c0%afetc/passwd",
    "..;/..;/etc/passwd",
    "",
]
NUMBERS = [
    "0",
    "1",
    "2",
    "3",
    "5",
    "10",
    "-1",
    "-0",
    "+1",
    " 1",
    "1 ",
    "1.0",
    "1.5",
    "1e3",
    "0x10",
    "00",
    "2147483647",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "9" * 40,
    "9" * 400,
    "NaN",
    "inf",
    "-inf",
    "",
    "true",
    "null",
    "\u00b2",
    "\u0663",
    "1_000",
    "\uff11",
]
TIMESTAMPS = [
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.000Z",
    "2026-01-01T00:00:00+02:00",
    "2026-01-01T00:00:00 02:00",
    "2026-01-01T00:00:00",
    "2000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z",
    "1970-01-01T00:00:00-23:59",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01 00:00:00",
    "20260101T000000Z",
    "now",
    "1700000000000",
    "2026-W01-1",
    "2026-01-01T00:00:00Zjunk",
    "T" * 50,
    "2026-01-01T" + "1" * 60,
]
JSON_ODDITIES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    1.5,
    -0.0,
    1e308,
    -1e308,
    10**30,
    -(10**30),
    2**63,
    2**64,
    "",
    "1",
    "x",
    "true",
    [],
    [1],
    {},
    {"a": 1},
    [[[]]],
    "\u0000",
    "\ud7ff\ue000",
]
CAPABILITIES = [
    "",
    "responseformat=delta",
    "responseformat=parquet",
    "responseformat=delta,parquet",
    "responseformat=parquet,delta",
    "responseformat=garbage",
    "responseformat=",
    "responseformat=delta;readerfeatures=deletionvectors,columnmapping",
    "readerfeatures=deletionVectors;responseformat=delta",
    "asyncquery=true",
    "asyncquery=true;responseformat=delta",
    "includeendstreamaction=true",
    "includeendstreamaction=yes",
    "asyncquery=TRUE;includeendstreamaction=true",
    ";;;",
    "=;=",
    "responseformat=delta;" * 50,
    "a=" + "b," * 300,
]
SQL_HINTS = [
    "id = 1",
    "id > 2",
    "region = 'emea'",
    "region = 'amer' AND id < 5",
    "day >= '2026-01-05'",
    "amount <= 3.5",
    "note IS NULL",
    "note IS NOT NULL",
    "id <> 3",
    "id = '1'",
    "region = emea",
    "id =",
    "= 1",
    "'unterminated",
    "id = 1 OR",
    "((id = 1)",
    "id IN (1, 2)",
    "nosuch = 1",
    "id = 1e400",
    "id = 99999999999999999999999",
    "day = '2026-02-30'",
    "id BETWEEN 1 AND 2",
    "",
    "region = '\u00df'",
    "1 = 1",
    "id = -1",
    "id = 1; DROP TABLE recipients",
]
VALUE_TYPES = [
    "int",
    "long",
    "string",
    "date",
    "boolean",
    "float",
    "double",
    "timestamp",
    "short",
    "byte",
    "decimal",
    "binary",
    "INT",
    "x",
    "",
]
OPS = [
    "and",
    "or",
    "not",
    "equal",
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
    "isNull",
    "column",
    "literal",
    "in",
    "garbage",
    "",
]
COLUMNS = ["id", "region", "amount", "day", "note", "nosuch", "", "a.b", "Region"]


def _pick(rng: random.Random, items: list[Any]) -> Any:
    return items[rng.randrange(len(items))]


def _text(rng: random.Random, longest: int = 48) -> str:
    """A short random string over letters, digits, punctuation, control and a few non-ASCII characters."""
    alphabet = (
        "abcXYZ019_-.~ /\\'\"%$#&;:=,*+!?()[]{}<>|^`@\u00e9\u00df\u65e5\U0001f4a5\u200b\x00\x01\x1b\n\r\t\x7f"
    )
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))


def _long(rng: random.Random) -> str:
    # Up to 1 KiB: paths and query strings; bodies also get _huge values.
    return rng.choice("aT9.'(") * rng.randint(100, 1024)


def _huge(rng: random.Random, prefix: str = "") -> str:
    """8 to 64 KiB of what made backtracking parsers freeze: runs of digits, T's, quotes, spaces."""
    return (
        prefix
        + rng.choice(["1", "T", "'", "9.", " ", "1e"]) * rng.randint(4_000, 32_000)
        + rng.choice(["", "x", " 1"])
    )


def _segment(rng: random.Random, name: str) -> str:
    """One path segment (already percent-encoded): the name itself, mutated, or an attack."""
    roll = rng.random()
    if roll < 0.75:
        return quote(name, safe="")
    if roll < 0.85:
        return _pick(rng, SEGMENT_ATTACKS)
    if roll < 0.9:
        return quote(name.upper() if rng.random() < 0.5 else name + _text(rng, 4), safe="")
    if roll < 0.95:
        return quote(_text(rng), safe="")
    return quote(_long(rng), safe="")


def _value(rng: random.Random, kind: str) -> str:
    """A query parameter value of a kind (number, timestamp, bool, token, text), often wrong."""
    roll = rng.random()
    if roll < 0.55:
        if kind == "number":
            return _pick(rng, NUMBERS[:6])
        if kind == "timestamp":
            return _pick(rng, TIMESTAMPS[:3])
        if kind == "bool":
            return _pick(rng, ["true", "false", "True", "FALSE"])
    if roll < 0.8:
        return _pick(rng, {"number": NUMBERS, "timestamp": TIMESTAMPS}.get(kind, NUMBERS + TIMESTAMPS))
    if roll < 0.95:
        text = _text(rng)
        return text if kind != "token" or NON_ASCII_TOKENS else text.encode("ascii", "ignore").decode()
    return _long(rng)


def _query_string(rng: random.Random, params: dict[str, str], extra: dict[str, str]) -> str:
    """`?k=v&…` from the route's parameters (each present or not), a few unknown ones, duplicates and oddities."""
    pairs: list[tuple[str, str]] = []
    for name, kind in params.items():
        if rng.random() < 0.35:
            value = extra.get(name) if name in extra and rng.random() < 0.7 else _value(rng, kind)
            pairs.append((name, value or ""))
    if rng.random() < 0.1:
        name = _pick(rng, [*params, "x", "", "%", "a[]"]) or "x"
        pairs.append((name, _value(rng, params.get(name, "text"))))
    if pairs and rng.random() < 0.1:
        pairs.append(pairs[0])  # a parameter given twice
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    if rng.random() < 0.03:
        query += _pick(rng, ["&", "&&", "=", "%", "%zz", "a=%ff", "a=%00", ";a=1"])
    return f"?{query}" if query else ""


def _json_hint(rng: random.Random, depth: int) -> Any:
    """A jsonPredicateHints node: mostly well-formed trees over the tables' columns, sometimes broken."""
    op = _pick(rng, OPS) if rng.random() < 0.15 else _pick(rng, OPS[:10])
    if depth <= 0 or op in ("column", "literal"):
        if rng.random() < 0.5:
            return {"op": "column", "name": _pick(rng, COLUMNS), "valueType": _pick(rng, VALUE_TYPES)}
        value = _pick(rng, ["1", "emea", "2026-01-05", "1.5", "true", "", "x", "9" * 30, "-1", "NaN"])
        return {"op": "literal", "value": value, "valueType": _pick(rng, VALUE_TYPES)}
    if op in ("and", "or"):
        children = [_json_hint(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    elif op in ("not", "isNull"):
        children = [_json_hint(rng, depth - 1)]
    else:
        children = [_json_hint(rng, 0) for _ in range(rng.choice([2, 2, 2, 1, 3]))]
    node: dict[str, Any] = {"op": op, "children": children}
    if rng.random() < 0.05:
        node[_pick(rng, ["children", "op", "name", "value", "valueType"])] = _pick(rng, JSON_ODDITIES)
    return node


def _nested_not(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {
        "op": "equal",
        "children": [
            {"op": "column", "name": "id", "valueType": "int"},
            {"op": "literal", "value": "1", "valueType": "int"},
        ],
    }
    for _ in range(depth):
        node = {"op": "not", "children": [node]}
    return node


def _json_hints(rng: random.Random) -> Any:
    """A tree (sometimes nested past the depth bound), as the protocol's JSON string or as an object."""
    tree = _nested_not(rng.randint(10, 300)) if rng.random() < 0.1 else _json_hint(rng, rng.randint(0, 4))
    return json.dumps(tree) if rng.random() < 0.6 else tree


QUERY_FIELDS: dict[str, Callable[[random.Random, World], Any]] = {
    "predicateHints": lambda rng, w: [
        _huge(rng, "id = ") if rng.random() < 0.03 else _pick(rng, SQL_HINTS)
        for _ in range(rng.randint(0, 3))
    ],
    "jsonPredicateHints": lambda rng, w: _json_hints(rng),
    "limitHint": lambda rng, w: rng.choice([0, 1, 2, 1000]),
    "version": lambda rng, w: rng.choice([0, 1, 2, 3, 4, 7]),
    "timestamp": lambda rng, w: (
        _huge(rng, "2026-01-01T") if rng.random() < 0.05 else _pick(rng, TIMESTAMPS[:3])
    ),
    "startingVersion": lambda rng, w: rng.choice([0, 1, 2, 5]),
    "endingVersion": lambda rng, w: rng.choice([0, 1, 3, 9]),
    "includeHistoricalProtocol": lambda rng, w: rng.choice([True, False, "true"]),
    "maxFiles": lambda rng, w: rng.choice([1, 2, 3, 100]),
    "pageToken": lambda rng, w: _token_like(rng, w.page_tokens),
    "includeRefreshToken": lambda rng, w: rng.choice([True, False]),
    "refreshToken": lambda rng, w: _token_like(rng, w.refresh_tokens),
    "idempotency_key": lambda rng, w: rng.choice(["k1", "k2", _text(rng, 12)]),
}


def _token_like(rng: random.Random, harvested: list[str]) -> str:
    """A harvested token as is (maybe for the wrong table or caller), edited, truncated, or made up."""
    if not harvested or rng.random() < 0.15:
        made_up = _text(rng)
        if not NON_ASCII_TOKENS:
            made_up = made_up.encode("ascii", "ignore").decode()
        return _pick(rng, ["", ".", "a.b", "eyJ2IjoxfQ.AAAA", made_up, _long(rng)])
    token = _pick(rng, harvested)
    roll = rng.random()
    if roll < 0.5:
        return str(token)
    if roll < 0.7:
        i = rng.randrange(len(token))
        return token[:i] + rng.choice("AZaz09-_.") + token[i + 1 :]
    if roll < 0.8:
        body, _, sig = token.partition(".")
        return f"{body}.{sig[::-1]}"
    if roll < 0.9:
        return token[: rng.randrange(len(token))]
    return token + _pick(rng, ["=", "==", ".", " ", "%"])


def _json_body(
    rng: random.Random, fields: dict[str, Callable[[random.Random, World], Any]], world: World
) -> bytes:
    data: dict[str, Any] = {}
    for name, make in fields.items():
        if rng.random() < 0.25:
            data[name] = make(rng, world) if rng.random() < 0.75 else _pick(rng, JSON_ODDITIES)
    if rng.random() < 0.05:
        data[_text(rng, 10)] = _pick(rng, JSON_ODDITIES)
    return _raw_body(rng, data)


def _raw_body(rng: random.Random, data: Any) -> bytes:
    """The JSON of `data`, or (sometimes) a broken rendering of it."""
    text = json.dumps(data)
    roll = rng.random()
    if roll < 0.85:
        return text.encode()
    return bytes(
        _pick(
            rng,
            [
                b"",
                b" ",
                b"{",
                b"}",
                b"null",
                b"[]",
                b"1",
                b'"x"',
                b"{}garbage",
                b'{"a":"\xff\xfe"}',
                b"\xff\xfe\xfd",
                b"\xef\xbb\xbf{}",
                text[: len(text) // 2].encode(),
                b'{"maxFiles": 1e400}',
                b'{"maxFiles": NaN}',
                b'{"version": 1, "version": "x"}',
                b'{"version": ' + b"9" * 5000 + b"}",
                b"[" * 2000 + b"]" * 2000,
                b'{"a":' * 1000 + b"1" + b"}" * 1000,
                text.encode("utf-16"),
                b"\x00" * 16,
            ],
        )
    )


def _token_header(rng: random.Random, world: World, caller: str) -> tuple[str, bytes | None]:
    """The Authorization header: the caller's token, mostly, or one of the ways to get it wrong."""
    roll = rng.random()
    if roll < 0.78:
        return caller, f"Bearer {world.tokens[caller]}".encode()
    token = world.tokens[caller]
    how, header = _pick(
        rng,
        [
            ("none", None),
            ("empty", b""),
            ("scheme-only", b"Bearer"),
            ("basic", b"Basic YWxpY2U6c2VjcmV0"),
            ("lowercase-scheme", f"bearer {token}".encode()),
            ("spaces", f"Bearer   {token}  ".encode()),
            ("wrong", b"Bearer " + bytes(c for c in _text(rng, 40).encode() if 32 < c < 127)),
            ("edited", f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}".encode()),
            ("prefix", f"Bearer {token[:-4]}".encode()),
            ("non-ascii", b"Bearer \xff\xfe" + token.encode()),
            ("long", b"Bearer " + b"x" * 8000),
            ("two-tokens", f"Bearer {token}, Bearer {token}".encode()),
        ],
    )
    return f"{caller}:{how}", header  # some manglings (spaces, scheme case) still carry the caller's token


# Route families: (weight, maker). Each maker returns method, path (from the server root), query params, body.
Made = tuple[str, str, bytes | None, list[tuple[str, bytes]], str]  # method, target, body, headers, caller


def _protocol_route(rng: random.Random, world: World, caller: str) -> Made:
    share, schema, table = _pick(rng, world.triples())
    if rng.random() < 0.15:  # a name from elsewhere: ungranted share, other schema, missing table
        share = _pick(rng, [*world.tables, "nosuch", "empty_share"])
    s, sc, t = _segment(rng, share), _segment(rng, schema), _segment(rng, table)
    tpath = f"/shares/{s}/schemas/{sc}/tables/{t}"
    page = {"pageToken": _token_like(rng, world.page_tokens)}
    routes: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
        ("GET", "/shares", {"maxResults": "number", "pageToken": "token"}, page),
        ("GET", f"/shares/{s}", {}, {}),
        ("GET", f"/shares/{s}/schemas", {"maxResults": "number", "pageToken": "token"}, page),
        ("GET", f"/shares/{s}/schemas/{sc}/tables", {"maxResults": "number", "pageToken": "token"}, page),
        ("GET", f"/shares/{s}/all-tables", {"maxResults": "number", "pageToken": "token"}, page),
        ("HEAD", tpath, {"startingTimestamp": "timestamp"}, {}),
        ("GET", f"{tpath}/version", {"startingTimestamp": "timestamp"}, {}),
        ("GET", f"{tpath}/metadata", {"version": "number", "timestamp": "timestamp"}, {}),
        (
            "GET",
            f"{tpath}/changes",
            {
                "startingVersion": "number",
                "endingVersion": "number",
                "startingTimestamp": "timestamp",
                "endingTimestamp": "timestamp",
                "includeHistoricalMetadata": "bool",
                "includeHistoricalProtocol": "bool",
                "maxFiles": "number",
                "pageToken": "token",
            },
            page,
        ),
        ("POST", f"{tpath}/query", {}, {}),
        ("POST", f"{tpath}/query", {}, {}),
        ("POST", f"{tpath}/query", {}, {}),
        ("POST", f"{tpath}/temporary-table-credentials", {}, {}),
        ("POST", f"{tpath}/queries/QID", {}, {}),
    ]
    method, path, params, known = _pick(rng, routes)
    body: bytes | None = None
    if path.endswith("/query"):
        body = _json_body(rng, QUERY_FIELDS, world)
    elif path.endswith("/queries/QID"):
        qid = "nosuch"
        if world.query_ids and rng.random() < 0.8:
            owner = _pick(rng, world.query_ids)
            if rng.random() < 0.7:  # the query's own table
                path = f"/shares/{owner[0]}/schemas/{owner[1]}/tables/{owner[2]}/queries/QID"
            qid = owner[3]
        path = path.replace("QID", _segment(rng, qid))
        body = _raw_body(
            rng,
            {
                k: v
                for k, v in {
                    "maxFiles": rng.choice([1, 2, 0, -1, None]),
                    "pageToken": _token_like(rng, world.page_tokens),
                }.items()
                if rng.random() < 0.4
            },
        )
    elif path.endswith("/temporary-table-credentials"):
        body = _raw_body(
            rng, {"location": _pick(rng, ["", "s3://x", "/etc", _text(rng)])} if rng.random() < 0.3 else {}
        )
    if rng.random() < 0.05:
        method = _pick(rng, ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    if rng.random() < 0.03:
        path += _pick(rng, ["/", "//", "/extra", "/..", "/%2e%2e"])
    headers: list[tuple[str, bytes]] = []
    if rng.random() < 0.5:
        headers.append(("delta-sharing-capabilities", _pick(rng, CAPABILITIES).encode()))
    if rng.random() < 0.08:
        headers.append(("fileidhash", _pick(rng, [b"parquet", b"delta", b"md5", b"", b"DELTA"])))
    return method, world.endpoint + path + _query_string(rng, params, known), body, headers, caller


def _file_route(rng: random.Random, world: World, caller: str) -> Made:
    if not world.file_urls:
        return "GET", f"{world.endpoint}/files/a/b/c/d", None, [], caller
    path, _, query = _pick(rng, world.file_urls).partition("?")
    params = dict(p.partition("=")[::2] for p in query.split("&"))
    parts = path.split("/")  # ['', endpoint..., 'files', share, schema, table, *relative]
    at = parts.index("files")
    roll = rng.random()
    if roll < 0.2:
        pass  # the URL as it was signed
    elif roll < 0.35:  # another table's URL parts: cross-table replay
        other = _pick(rng, world.file_urls).split("?")[0].split("/")
        k = rng.randrange(at + 1, at + 4)
        if k < len(other):
            parts[k] = other[k]
    elif roll < 0.6:  # traversal in the relative part or the names
        k = rng.randrange(at + 1, len(parts))
        parts[k] = _pick(rng, SEGMENT_ATTACKS) if rng.random() < 0.5 else _pick(rng, PATH_ATTACKS)
    elif roll < 0.7:
        parts = [*parts[: at + 4], _pick(rng, PATH_ATTACKS)]
    else:
        key = _pick(rng, ["Expires", "X-Amz-Signature"])
        value = params.get(key, "")
        if key == "Expires":
            params[key] = _pick(
                rng,
                [
                    str(int(value or 0) + 1),
                    "0",
                    "1",
                    "-1",
                    "",
                    "abc",
                    value + "0",
                    "9" * 40,
                    "%20" + value,
                    "1e10",
                    "0x10",
                    value + "%20",
                    "%C2%B2",
                    "1" * 5000,
                ],
            )
        else:
            edits = [
                value[::-1],
                value[:-1],
                "",
                "A" * len(value),
                value + "A",
                value.upper(),
                value.replace("-", "+").replace("_", "/"),
                value + "%3D",
                "%20" + value,
                "%C3%A9" * 43,
            ]
            params[key] = _pick(rng, edits)
    if rng.random() < 0.1:
        params.pop(_pick(rng, ["Expires", "X-Amz-Signature"]), None)
    if rng.random() < 0.05:
        params[_pick(rng, ["Expires", "X-Amz-Signature", "x"])] = "1"
    query = "&".join(f"{k}={v}" for k, v in params.items())
    headers: list[tuple[str, bytes]] = []
    if rng.random() < 0.2:
        headers.append(
            (
                "Range",
                _pick(
                    rng,
                    [
                        b"bytes=0-10",
                        b"bytes=-5",
                        b"bytes=5-",
                        b"bytes=0-0",
                        b"bytes=0-1,4-5",
                        b"bytes=0-99999999",
                        b"bytes=999999-",
                        b"bytes=-0",
                        b"bytes=5-3",
                        b"bytes=abc",
                        b"bytes",
                        b"items=0-3",
                        b"bytes=\xc2\xb2-3",
                    ],
                ),
            )
        )
    method = _pick(rng, ["GET", "GET", "GET", "HEAD", "POST", "DELETE"])
    auth = rng.random() < 0.3  # file URLs need no token, but one may come along
    return method, "/".join(parts) + (f"?{query}" if query else ""), None, headers, caller if auth else "none"


# No name of the fuzzer's own callers: rotating or revoking them would end the run's authenticated part.
ADMIN_NAMES = [
    "fz-a",
    "fz-b",
    "fz-share",
    "share1",
    "nosuch",
    "a b",
    "fz%00",
    "%00",
    "..",
    "%2e%2e",
    "%2f",
    "%C3%A9t%C3%A9",
    "x" * 300,
    "",
    "fz-" + "y" * 40,
]
ADMIN_LOCATIONS = [
    "/nonexistent/table",
    "relative/table",
    "file:///nonexistent",
    "s3x://bucket/t",
    "",
    "../../etc",
    "/etc",
    "file:///etc/passwd",
    "az://",
    "%2e%2e/x",
    "/tmp/../etc",
]


def _admin_route(rng: random.Random, world: World, caller: str) -> Made:
    names = [quote(name, safe="%") for name in ADMIN_NAMES]
    r, s = _pick(rng, names), _pick(rng, names)

    def name_value() -> Any:
        return _pick(rng, ["fz-a", "fz-b", "fz-share", "nosuch", _text(rng, 20), "x" * 300, 5, None, ["a"]])

    routes: list[tuple[str, str, dict[str, Callable[[random.Random, World], Any]] | None]] = [
        ("GET", "/recipients", None),
        (
            "POST",
            "/recipients",
            {
                "name": lambda *_: name_value(),
                "shares": lambda *_: [_pick(rng, ["fz-share", "share2", "nosuch"])],
                "expiresInSeconds": lambda *_: _pick(rng, [1, 3600, 0, -1, 10**12, 2**63, 10**30]),
                "comment": lambda *_: _text(rng),
            },
        ),
        ("GET", f"/recipients/{r}", None),
        (
            "POST",
            f"/recipients/{r}/rotate",
            {
                "graceSeconds": lambda *_: _pick(rng, [0, 5, -1, 10**12, 2**63, 10**30]),
                "expiresInSeconds": lambda *_: _pick(rng, [1, -5, 10**12, 10**30]),
            },
        ),
        ("POST", f"/recipients/{r}/revoke", None),
        ("PUT", f"/recipients/{r}/grants/{s}", None),
        ("DELETE", f"/recipients/{r}/grants/{s}", None),
        ("GET", "/shares", None),
        (
            "POST",
            "/shares",
            {
                "name": lambda *_: name_value(),
                "displayName": lambda *_: _text(rng),
                "comment": lambda *_: _text(rng),
                "properties": lambda *_: {_text(rng, 8): _pick(rng, ["v", 1, None])},
            },
        ),
        ("GET", f"/shares/{s}", None),
        ("DELETE", f"/shares/{s}", None),
        (
            "POST",
            f"/shares/{s}/tables",
            {
                "schema": lambda *_: name_value(),
                "name": lambda *_: name_value(),
                "location": lambda *_: _pick(rng, ADMIN_LOCATIONS),
                "historyShared": lambda *_: rng.choice([True, False, "yes"]),
                "startVersion": lambda *_: _pick(rng, [0, 1, -1, 10**30]),
                "auxiliaryLocations": lambda *_: [_pick(rng, ADMIN_LOCATIONS)],
            },
        ),
        ("DELETE", f"/shares/{s}/schemas/{_pick(rng, names)}/tables/{_pick(rng, names)}", None),
        ("GET", "/audit", None),
    ]
    method, path, fields = _pick(rng, routes)
    query = ""
    if path == "/audit":
        params = {"since": "since", "recipient": "text", "limit": "number"}
        since = _pick(
            rng,
            [
                "1h",
                "2d",
                "30m",
                "1w",
                "0s",
                "2026-01-01T00:00:00Z",
                "abc",
                "-1d",
                "1.5h",
                "h",
                "99999d",
                "999999999999d",
                "1 d",
            ],
        )
        query = _query_string(rng, params, {"since": since, "recipient": _pick(rng, ["alice", "bob", ""])})
    body = _json_body(rng, fields, world) if fields is not None else (b"" if rng.random() < 0.8 else b"{}")
    if rng.random() < 0.05:
        method = _pick(rng, ["GET", "POST", "PUT", "DELETE", "PATCH"])
    return method, "/admin" + path + query, body, [], caller


def _operational_route(rng: random.Random, world: World, caller: str) -> Made:
    path = _pick(
        rng,
        [
            "/healthz",
            "/readyz",
            "/metrics",
            "/metrics/",
            "/healthz/x",
            "/",
            "/admin",
            "/admin/",
            world.endpoint,
            world.endpoint + "/",
            world.endpoint + "/openapi.json",
            world.endpoint + "/openapi.json/x",
        ],
    )
    method = _pick(rng, ["GET", "GET", "GET", "HEAD", "POST"])
    return method, path + _query_string(rng, {"x": "text"}, {}), None, [], caller


def _garbage_route(rng: random.Random, world: World, caller: str) -> Made:
    depth = rng.randint(0, 8)
    segs = [
        _segment(rng, _pick(rng, ["shares", "schemas", "tables", "files", "query", "admin", _text(rng, 8)]))
        for _ in range(depth)
    ]
    prefix = _pick(rng, [world.endpoint, "", "/admin", world.endpoint + "/files"])
    method = _pick(rng, ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
    body = _raw_body(rng, {"x": _pick(rng, JSON_ODDITIES)}) if method in ("POST", "PUT") else None
    return method, prefix + "/" + "/".join(segs), body, [], caller


FAMILIES: list[tuple[float, Callable[[random.Random, World, str], Made]]] = [
    (0.55, _protocol_route),
    (0.15, _file_route),
    (0.17, _admin_route),
    (0.05, _operational_route),
    (0.08, _garbage_route),
]
CONTENT_TYPES = [
    b"application/json",
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data",
    b"application/json; charset=latin-1",
    b"\xff",
    b"",
]


def generate(seed: int, index: int, world: World) -> FuzzRequest:
    rng = random.Random(f"{seed}-{index}")
    roll, acc = rng.random(), 0.0
    maker = FAMILIES[-1][1]
    for weight, candidate in FAMILIES:
        acc += weight
        if roll < acc:
            maker = candidate
            break
    recipients = [c for c in world.tokens if c != "admin"]
    caller = "admin" if maker is _admin_route and rng.random() < 0.75 else _pick(rng, recipients)
    method, target, body, headers, caller = maker(rng, world, caller)
    if caller != "none":
        caller, auth = _token_header(rng, world, caller)
        if auth is not None:
            headers.append(("Authorization", auth))
    if body is not None and rng.random() < 0.2:
        headers.append(("Content-Type", _pick(rng, CONTENT_TYPES)))
    if rng.random() < 0.03:
        headers.append(
            _pick(
                rng,
                [
                    ("X-Forwarded-For", b"1.2.3.4, evil"),
                    ("User-Agent", b"\xff\xfe fuzz"),
                    ("Accept", b"text/html"),
                    ("Accept-Encoding", b"gzip, br"),
                    ("Cookie", b"a=b"),
                    ("Content-Encoding", b"gzip"),
                    ("Transfer-Encoding-X", b"chunked"),
                ],
            )
        )
    if method in ("GET", "HEAD", "DELETE") and body and rng.random() < 0.7:
        body = None
    return FuzzRequest(index, method, target, tuple(headers), body, caller)


# ---------------------------------------------------------------------------------------------------------------
# Sending and judging


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


@dataclass(frozen=True)
class Finding:
    request: FuzzRequest
    problem: str
    answer: Answer | None

    def __str__(self) -> str:
        answer = "no answer" if self.answer is None else f"{self.answer.status} {self.answer.body[:300]!r}"
        return f"{self.problem}: {self.request.describe()} -> {answer}"


class Sender:
    """One kept-alive connection per thread; a connection the server closed is reopened once."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._local = threading.local()

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def send(self, request: FuzzRequest) -> Answer:
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt == 1)
            start = time.perf_counter()
            try:
                conn.putrequest(request.method, request.target, skip_accept_encoding=True)
                for name, value in request.headers:
                    conn.putheader(name, value)
                if request.body is not None:
                    conn.putheader("Content-Length", str(len(request.body)))
                conn.endheaders(request.body)
                response = conn.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 1:
                    raise
                continue
            except BaseException:
                self._connection(fresh=True)  # a connection left mid-request cannot send the next one
                raise
            headers = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                self._connection(fresh=True)
            return Answer(response.status, headers, body, time.perf_counter() - start)
        raise AssertionError("unreachable")


TRACEBACK = re.compile(rb'Traceback \(most recent call last\)|File "/[^"]+", line \d+')


def judge(
    request: FuzzRequest, answer: Answer, secrets: Iterable[str], server_paths: Iterable[str]
) -> list[str]:
    """What is wrong with an answer: a 5xx, an error that is not `{"errorCode","message"}`, a leak."""
    problems = []
    if answer.status >= 500:
        problems.append(f"{answer.status} answer")
    if answer.status >= 400 and request.method != "HEAD":
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        if not (
            answer.headers.get("content-type", "").startswith("application/json")
            and isinstance(data, dict)
            and set(data) == {"errorCode", "message"}
            and all(isinstance(v, str) for v in data.values())
        ):
            problems.append('error answer is not {"errorCode","message"} JSON')
    if TRACEBACK.search(answer.body):
        problems.append("traceback in the answer")
    # The headers too: a redirect's Location or a Content-Disposition could carry what the body does not.
    text = answer.body.decode("utf-8", "replace") + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
    if any(secret in text for secret in secrets):
        problems.append("secret in the answer")
    # Admins may see table locations; nobody else may see a server path, and no error may show one.
    admin = request.caller.partition(":")[0] == "admin"
    admin_answer = request.target.startswith("/admin") and admin and answer.status < 400
    if not admin_answer and any(path in text for path in server_paths):
        problems.append("server path in the answer")
    return problems


@dataclass
class Report:
    seed: int
    requests: int
    seconds: float
    statuses: dict[int, int]
    findings: list[Finding]

    def summary(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0.0
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        head = f"fuzz seed={self.seed} requests={self.requests} in {self.seconds:.1f} s ({rate:.0f}/s); "
        lines = [head + f"statuses {{{counts}}}; findings: {len(self.findings)}"]
        by_problem: dict[str, list[Finding]] = {}
        for finding in self.findings:
            by_problem.setdefault(finding.problem, []).append(finding)
        for problem, found in by_problem.items():
            lines.append(f"  {problem}: {len(found)}, e.g.")
            lines += [f"    {f}" for f in found[:5]]
        return "\n".join(lines)


def run(
    base_url: str,
    world: World,
    seed: int,
    count: int,
    secrets: list[str],
    server_paths: list[str],
    connections: int = 4,
    timeout: float = 30.0,
) -> Report:
    parts = urlsplit(base_url)
    sender = Sender(parts.hostname or "127.0.0.1", parts.port or 80, timeout)
    statuses: dict[int, int] = {}
    findings: list[Finding] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        request = generate(seed, index, world)
        try:
            answer = sender.send(request)
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                findings.append(Finding(request, f"no answer ({type(exc).__name__})", None))
            return
        problems = judge(request, answer, secrets, server_paths)
        with lock:
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
            findings.extend(Finding(request, p, answer) for p in problems)

    start = time.perf_counter()
    with ThreadPoolExecutor(connections, thread_name_prefix="fuzz") as pool:
        for _ in pool.map(one, range(count)):
            pass
    findings.sort(key=lambda f: f.request.index)
    return Report(seed, count, time.perf_counter() - start, statuses, findings)


def ndjson(body: bytes) -> Iterator[Any]:
    for line in body.splitlines():
        if line.strip():
            yield json.loads(line)
