"""``jsonPredicateHints``: the op tree of protocol.md, validated (size and depth bounded without recursion
before anything else) and compiled into a `FileFilter`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from lakegate.delta.predicates.truth import (
    ANY,
    DEFAULT_LIMITS,
    FLIP,
    Col,
    Eval,
    F,
    FileFilter,
    Lit,
    Node,
    PredicateLimits,
    Schema,
    T,
    all_of,
    any_of,
    bool_column,
    comparison,
    constant,
    is_null,
    negated,
    safe,
)
from lakegate.delta.predicates.values import VALUE_TYPES, Invalid, parse_value
from lakegate.exceptions import InvalidParameterError

_ARITY = {"isNull": 1, "not": 1, **dict.fromkeys(FLIP, 2)}  # "and" / "or" take two or more


def _compile_json(node: Any, schema: Schema, exact: bool = False) -> Node:
    """Validate and compile one op node; leaves come back as Col / Lit. (Depth was checked before.) `exact`:
    the node's whole truth set matters (below a `not`), not only whether it may be true."""
    if not isinstance(node, dict):
        raise Invalid("not an object")
    op = node.get("op")
    if op in ("column", "literal"):
        return _json_leaf(node, op, schema)
    exact = exact or op == "not"
    kids = [_compile_json(c, schema, exact) for c in _json_children(node, op)]
    if op == "isNull":
        return _json_is_null(kids)
    if op in FLIP:
        return _json_comparison(op, kids)
    evs = [_as_eval(k) for k in kids]
    if op == "not":
        return negated(evs[0])
    return all_of(evs, exact) if op == "and" else any_of(evs, exact)


def _json_leaf(node: dict[str, Any], op: str, schema: Schema) -> Col | Lit:
    vt = node.get("valueType")
    if vt not in VALUE_TYPES:
        raise Invalid(f"bad valueType {vt!r}")
    if op == "column":
        if not isinstance(node.get("name"), str):
            raise Invalid("column without name")
        return schema.column(node["name"], vt)
    if not isinstance(node.get("value"), str):
        raise Invalid("literal without string value")
    try:
        return Lit(parse_value(vt, node["value"]), vt)
    except (ValueError, OverflowError) as e:
        raise Invalid(str(e)) from e


def _json_children(node: dict[str, Any], op: Any) -> list[Any]:
    children = node.get("children")
    if not isinstance(op, str) or (op not in _ARITY and op not in ("and", "or")):
        raise Invalid(f"unknown op {op!r}")
    if not isinstance(children, list):
        raise Invalid(f"{op}: no children")
    if (len(children) < 2) if op in ("and", "or") else (len(children) != _ARITY[op]):
        raise Invalid(f"{op}: wrong number of children")
    return children


def _json_is_null(kids: list[Node]) -> Eval:
    (k,) = kids
    if isinstance(k, Col):
        return safe(is_null(k))
    if isinstance(k, Lit):
        return constant(F)  # literals aren't null
    raise Invalid("isNull takes a leaf")


def _json_comparison(op: str, kids: list[Node]) -> Eval:
    a, b = kids
    if not all(isinstance(k, (Col, Lit)) for k in kids):
        raise Invalid(f"{op} takes leaf children")
    if isinstance(a, Lit) and isinstance(b, Col):  # literal on the left: flip the comparison
        a, b, op = b, a, FLIP[op]
    if not (isinstance(a, Col) and isinstance(b, Lit)) or a.vt != b.vt:
        return constant(ANY)  # two columns, two literals, or mismatched types
    return safe(comparison(op, a, b.value))


def _as_eval(k: Col | Lit | Eval) -> Eval:
    if isinstance(k, Col):
        return safe(bool_column(k))
    if isinstance(k, Lit):
        return constant((T if k.value else F) if k.vt == "bool" else ANY)
    return k


def json_predicate_filter(
    hint: str | None,
    *,
    partition_columns: Sequence[str],
    column_types: Mapping[str, str],
    physical_names: Mapping[str, str] | None = None,
    limits: PredicateLimits = DEFAULT_LIMITS,
) -> FileFilter | None:
    """Filter for a ``jsonPredicateHints`` string, or None (no filtering) if empty or invalid.
    InvalidParameterError when the hint is longer, deeper or larger than `limits` allow."""
    if not isinstance(hint, str) or not hint.strip():
        return None
    if len(hint) > limits.max_chars:
        raise InvalidParameterError(
            f"jsonPredicateHints is {len(hint)} characters; this server accepts at most {limits.max_chars}"
        )
    try:
        tree = orjson.loads(hint)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):  # nested beyond what the parser takes: far past any op depth
            raise InvalidParameterError(_too_deep(limits)) from None
        return None
    _check_tree_size(tree, limits)
    try:
        schema = Schema(list(partition_columns), dict(column_types), physical_names)
        return FileFilter(_as_eval(_compile_json(tree, schema)), schema.uses_stats, schema.columns)
    except Exception:  # noqa: BLE001  - Invalid, unhashable "op" values, ...
        return None


def _too_deep(limits: PredicateLimits) -> str:
    return f"jsonPredicateHints is nested more than {limits.max_depth} levels deep"


def _check_tree_size(tree: Any, limits: PredicateLimits) -> None:
    """Count op levels and nodes without recursion; InvalidParameterError past the limits."""
    level, nodes = [tree], 0
    for depth in range(1, limits.max_depth + 2):
        nodes += len(level)
        if nodes > limits.max_count:
            raise InvalidParameterError(
                f"jsonPredicateHints has more than {limits.max_count} nodes, the most this server accepts"
            )
        level = [
            child
            for node in level
            if isinstance(node, dict) and isinstance(node.get("children"), list)
            for child in node["children"]
        ]
        if not level:
            return
        if depth == limits.max_depth:
            raise InvalidParameterError(_too_deep(limits))
