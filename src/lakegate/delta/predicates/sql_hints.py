"""SQL ``predicateHints``: `col op literal`, `literal op col`, `col IS [NOT] NULL` on partition columns only,
AND-ed; a hint we cannot use is skipped. Tokenised by hand in one pass (linear whatever the text holds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lakegate.delta.predicates.truth import (
    DEFAULT_LIMITS,
    FLIP,
    Eval,
    FileFilter,
    PredicateLimits,
    Schema,
    all_of,
    comparison,
    is_null,
    negated,
    safe,
)
from lakegate.delta.predicates.values import (
    INT_RE,
    INTEGRAL,
    find,
    lookup,
    number_end,
    parse_number,
    parse_value,
)
from lakegate.exceptions import InvalidParameterError

_SQL_OPS = {
    "=": "equal",
    "==": "equal",
    "<": "lessThan",
    "<=": "lessThanOrEqual",
    ">": "greaterThan",
    ">=": "greaterThanOrEqual",
    "<>": "!=",
    "!=": "!=",
}
_SQL_CASTS = {
    "date": "date",
    "timestamp": "timestamp",
    "string": "str",
    "boolean": "bool",
    **dict.fromkeys(("tinyint", "smallint", "int", "integer", "bigint", "long", "float", "double"), "num"),
}


def _family(coltype: str | None) -> str | None:
    if coltype in INTEGRAL or coltype in ("float", "double") or (coltype or "").startswith("decimal"):
        return "num"
    return {
        "string": "str",
        "boolean": "bool",
        "date": "date",
        "timestamp": "timestamp",
        "timestamp_ntz": "timestamp",
    }.get(coltype or "")


_SQL_OPERATORS = ("<=", ">=", "<>", "!=", "==", "=", "<", ">", "(", ")", ",")


def _sql_tokens(s: str) -> list[tuple[str, str]] | None:
    """(kind, text) tokens of a hint: 'str' (unquoted), 'op', 'num', 'id' (backquoted as written); None if
    something is not a token. Hand-written: one pass over the text, whatever it holds."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i].isspace():
            i += 1
        if i == n:
            return out
        token = _sql_token(s, i)
        if token is None:
            return None
        kind, text, i = token
        out.append((kind, text))


def _sql_token(s: str, i: int) -> tuple[str, str, int] | None:
    """The token at `i` and the index after it, or None."""
    if s[i] in "'`":
        return _quoted_token(s, i)
    for op in _SQL_OPERATORS:
        if s.startswith(op, i):
            return "op", op, i + len(op)
    return _number_or_name(s, i)


def _quoted_token(s: str, i: int) -> tuple[str, str, int] | None:
    quote = s[i]
    found = _quoted(s, i, quote)
    if found is None:
        return None
    text, end = found
    if quote == "'":
        # Strings may not contain backslashes: Spark unescapes them and we'd compare against the wrong value.
        return None if "\\" in text else ("str", text, end)
    return ("id", s[i:end], end) if text else None  # a `quoted name`, kept as written


def _number_or_name(s: str, i: int) -> tuple[str, str, int] | None:
    end = number_end(s, i)
    if end > i:
        if end < len(s) and (s[end] == "." or _is_word_char(s[end])):
            return None  # `1x`, `1.2.3`: not a number, and not a name either
        return "num", s[i:end], end
    if not _is_word_char(s[i]) or s[i].isdecimal():
        return None
    end = i + 1
    while end < len(s) and _is_word_char(s[end]):
        end += 1
    return "id", s[i:end], end


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _quoted(s: str, i: int, quote: str) -> tuple[str, int] | None:
    """The content of the quoted text starting at `i` (a doubled quote stands for one) and the index after
    the closing quote; None if it is not closed."""
    parts, j = [], i + 1
    while True:
        k = s.find(quote, j)
        if k < 0:
            return None
        parts.append(s[j:k])
        if s.startswith(quote, k + 1):  # doubled: one quote character, the text goes on
            parts.append(quote)
            j = k + 2
            continue
        return "".join(parts), k + 1


def _sql_operand(t: list[tuple[str, str]]) -> tuple[str, Any] | None:
    """('col', name) or (literal family, text) for a whole token run; None if unsupported."""
    kinds, up = [k for k, _ in t], [v.upper() for _, v in t]
    if kinds == ["id"]:
        if up[0] in ("TRUE", "FALSE"):
            return ("bool", up[0].lower())
        name = t[0][1]
        return None if up[0] == "NULL" else ("col", name[1:-1].replace("``", "`") if name[0] == "`" else name)
    if kinds in (["str"], ["num"]):
        return (kinds[0], t[0][1])
    if kinds == ["id", "str"] and up[0] in ("DATE", "TIMESTAMP"):
        return (up[0].lower(), t[1][1])
    if (
        len(t) == 6
        and up[0] == "CAST"
        and t[1] == ("op", "(")
        and kinds[2] in ("str", "num")
        and up[3] == "AS"
        and kinds[4] == "id"
        and t[5] == ("op", ")")
    ):
        fam = _SQL_CASTS.get(t[4][1].lower())  # CAST('2021-04-28' AS DATE)
        return None if fam is None else (fam, t[2][1])
    return None


def _sql_conjunct(hint: str, schema: Schema) -> Eval | None:
    toks = _sql_tokens(hint)
    if not toks:
        return None
    words = [v.upper() if k == "id" else None for k, v in toks]
    if words[-2:] == ["IS", "NULL"] or words[-3:] == ["IS", "NOT", "NULL"]:
        return _sql_is_null(toks, words[-2] == "NOT", schema)
    return _sql_comparison(toks, schema)


def _sql_is_null(toks: list[tuple[str, str]], negate: bool, schema: Schema) -> Eval | None:
    operand = _sql_operand(toks[: -3 if negate else -2])
    if not operand or operand[0] != "col" or find(operand[1], schema.parts) is None:
        return None
    col = schema.column(operand[1], "string")
    return negated(is_null(col)) if negate else is_null(col)


def _sql_comparison(toks: list[tuple[str, str]], schema: Schema) -> Eval | None:
    ops = [i for i, (k, v) in enumerate(toks) if k == "op" and v in _SQL_OPS]
    if len(ops) != 1:
        return None
    i = ops[0]
    left, right, op = _sql_operand(toks[:i]), _sql_operand(toks[i + 1 :]), _SQL_OPS[toks[i][1]]
    if not left or not right:
        return None
    if left[0] != "col":  # literal on the left: flip
        left, right, op = right, left, FLIP.get(op, op)
    if left[0] != "col" or right[0] == "col":
        return None
    part = find(left[1], schema.parts)
    fam = _family(None if part is None else lookup(schema.types, part))
    if part is None or fam is None or right[0] not in (fam, "str"):
        return None  # non-partition column, untyped column, or a literal Spark would coerce differently
    literal = _sql_literal(fam, right[0], right[1])
    if literal is None:
        return None
    lit, vt = literal
    col = schema.column(part, vt)
    cmp = comparison("equal" if op == "!=" else op, col, lit)
    return safe(negated(cmp) if op == "!=" else cmp)


def _sql_literal(fam: str, kind: str, text: str) -> tuple[Any, str] | None:
    """(value, JSON valueType) of a literal compared with a column of family `fam`, or None."""
    try:
        if fam != "num":
            vt = {"str": "string", "bool": "bool", "date": "date", "timestamp": "timestamp"}[fam]
            return parse_value(vt, text), vt
        if kind == "str" and not INT_RE.fullmatch(text.strip()):
            return None  # Spark may cast '1.5' to an int column as 1; don't guess
        number = parse_number(text)
        return number, ("long" if isinstance(number, int) else "double")
    except (ValueError, OverflowError):
        return None


def sql_predicate_filter(
    hints: Sequence[str] | None,
    *,
    partition_columns: Sequence[str],
    column_types: Mapping[str, str],
    physical_names: Mapping[str, str] | None = None,
    limits: PredicateLimits = DEFAULT_LIMITS,
) -> FileFilter | None:
    """Filter for SQL ``predicateHints`` (AND-ed); hints we can't use are skipped. None if none is usable.
    InvalidParameterError when there are more hints, or more text, than `limits` allow."""
    if isinstance(hints, str):
        hints = [hints]
    hints = [h for h in hints or () if isinstance(h, str)]
    if len(hints) > limits.max_count:
        raise InvalidParameterError(
            f"predicateHints has {len(hints)} entries; this server accepts at most {limits.max_count}"
        )
    if sum(map(len, hints)) > limits.max_chars:
        raise InvalidParameterError(
            f"predicateHints hold more than {limits.max_chars} characters, the most this server accepts"
        )
    schema = Schema(list(partition_columns or ()), dict(column_types or {}), physical_names)
    evs = []
    for h in hints:
        try:
            ev = _sql_conjunct(h, schema)
        except Exception:  # noqa: BLE001  - an unparsable hint filters nothing
            ev = None
        if ev is not None:
            evs.append(ev)
    if not evs:
        return None
    return FileFilter(all_of(evs, exact=False), schema.uses_stats, schema.columns)
