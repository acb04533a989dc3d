"""Property test of the Arrow row decoder that turns a checkpoint's `add` column into add actions: for any rows
of the checkpoint schema, sliced or split into chunks, it gives what pyarrow's own (slow) to_pylist gives, with
nulls left out and maps as dicts."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from lakegate.delta.log import CheckpointActions

STRING_MAP = pa.map_(pa.string(), pa.string())
DELETION_VECTOR = pa.struct(
    [
        pa.field("storageType", pa.string(), nullable=False),
        pa.field("pathOrInlineDv", pa.string(), nullable=False),
        pa.field("offset", pa.int32()),
        pa.field("sizeInBytes", pa.int32(), nullable=False),
        pa.field("cardinality", pa.int64(), nullable=False),
    ]
)
STATS_PARSED = pa.struct([pa.field("numRecords", pa.int64())])
# The add struct of a Delta checkpoint (PROTOCOL.md "Checkpoint Schema"), as deltalake writes it.
ADD = pa.struct(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("partitionValues", STRING_MAP, nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("modificationTime", pa.int64(), nullable=False),
        pa.field("dataChange", pa.bool_(), nullable=False),
        pa.field("stats", pa.string()),
        pa.field("stats_parsed", STATS_PARSED),
        pa.field("tags", STRING_MAP),
        pa.field("deletionVector", DELETION_VECTOR),
        pa.field("baseRowId", pa.int64()),
        pa.field("defaultRowCommitVersion", pa.int64()),
    ]
)

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
int64 = st.integers(-(2**63), 2**63 - 1)
int32 = st.integers(-(2**31), 2**31 - 1)
string_map = st.lists(st.tuples(text, st.none() | text), max_size=3, unique_by=lambda kv: kv[0])
deletion_vector = st.fixed_dictionaries(
    {
        "storageType": st.sampled_from(["u", "i", "p"]),
        "pathOrInlineDv": text,
        "offset": st.none() | int32,
        "sizeInBytes": int32,
        "cardinality": int64,
    }
)
add = st.fixed_dictionaries(
    {
        "path": text,
        "partitionValues": string_map,
        "size": int64,
        "modificationTime": int64,
        "dataChange": st.booleans(),
        "stats": st.none() | text,
        "stats_parsed": st.none() | st.fixed_dictionaries({"numRecords": st.none() | int64}),
        "tags": st.none() | string_map,
        "deletionVector": st.none() | deletion_vector,
        "baseRowId": st.none() | int64,
        "defaultRowCommitVersion": st.none() | int64,
    }
)
# A checkpoint row holds one action: rows of other actions are null in the add column.
rows = st.lists(st.none() | add, max_size=12)


def _expected(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or key == "stats_parsed":
            continue
        if key in ("partitionValues", "tags"):
            out[key] = dict(value)  # a map keeps its null values: a null partition value means null
        elif isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if v is not None}
        else:
            out[key] = value
    parsed = row["stats_parsed"]
    if row["stats"] is None and parsed is not None:  # JSON stats made from the struct, nulls left out
        out["stats"] = json.dumps({k: v for k, v in parsed.items() if v is not None}, separators=(",", ":"))
    return out


def _decode(column: pa.ChunkedArray) -> list[dict[str, Any]]:
    actions = CheckpointActions()
    actions.absorb_table(pa.table({"add": column}))
    return actions.all_adds()


@settings(max_examples=100, deadline=None)
@given(rows=rows, data=st.data())
def test_decoder_agrees_with_pyarrow(rows: list[dict[str, Any] | None], data: st.DataObject) -> None:
    array = pa.array(rows, type=ADD)
    # A slice (an offset into shared buffers) and chunking are what record batches of a parquet file look like.
    start = data.draw(st.integers(0, len(rows)))
    stop = data.draw(st.integers(start, len(rows)))
    cuts = sorted(data.draw(st.lists(st.integers(start, stop), max_size=3)))
    bounds = [start, *cuts, stop]
    chunks = [array.slice(a, b - a) for a, b in pairwise(bounds)]
    column = pa.chunked_array(chunks, type=ADD)
    expected = [_expected(row) for row in rows[start:stop] if row is not None]
    assert _decode(column) == expected
