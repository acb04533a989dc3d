"""The column-wise file parts and line rendering against the per-file reference (`make_entry` + `file_lines`):
for any checkpoint rows — odd characters in paths, partition values and stats, deletion vectors, absolute paths —
both formats give the same lines, byte for byte (parquet) or the same JSON (delta, whose field order may differ)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any
from unittest import mock

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from lakegate.cloud.base import SignRequest
from lakegate.cloud.local import LocalStore
from lakegate.cloud.locations import Location
from lakegate.delta.addfiles import AddFiles, rows_as_dicts
from lakegate.delta.log import add_table
from lakegate.delta.snapshot import Snapshot
from lakegate.exceptions import LakegateError
from lakegate.keys import KeyRing
from lakegate.protocol import lines
from lakegate.protocol.capabilities import DELTA, PARQUET
from lakegate.service import files as files_module
from lakegate.service import parts
from lakegate.service.files import SMALL_ANSWER_FILES, LineCache, Signers, file_lines, make_entry, parts_lines
from lakegate.service.responses import Lines
from tests.delta.test_checkpoint_rows import ADD, add, text

ROOT = Location.parse("/srv/tables/t")
AUX = Location.parse("/srv/aux")
ODD = {
    "path": 'p=a%20b/"q\\.parquet',
    "partitionValues": [("p", 'a b"\\\n\u2028é'), ("q", None)],
    "size": 5,
    "modificationTime": 1,
    "dataChange": True,
    "stats": '{"numRecords":3,"minValues":{"s":"\\u0001\t"}}',
    "stats_parsed": None,
    "tags": [("k", "v\x01")],
    "deletionVector": {
        "storageType": "u",
        "pathOrInlineDv": "ab" + "0" * 20,
        "offset": 1,
        "sizeInBytes": 3,
        "cardinality": 2,
    },
    "baseRowId": None,
    "defaultRowCommitVersion": 4,
}
ADD_ROW = {"path": "", "partitionValues": [], "size": 1, "stats": None}
ABSOLUTE = [{**ODD, "path": "file:///srv/tables/t/abs.parquet", "deletionVector": None, "tags": None}]


def _joined(pieces: Iterable[Lines]) -> bytes:
    """The bytes of rendered pieces, each checked to say how many (file) lines it holds: the audit of an answer
    cut short counts by it."""
    out = []
    for piece in pieces:
        assert piece.files == piece.data.count(b"\n") == len(piece.data.splitlines())
        out.append(piece.data)
    return b"".join(out)


class _Stores:
    def __init__(self) -> None:
        self.store = LocalStore(KeyRing(b"k" * 32))

    def store_for(self, location: Location) -> LocalStore:
        return self.store


def _signers() -> Signers:
    now = int(time.time())
    request = SignRequest(now + 600, now, "http://h/delta-sharing", "s/sc/t", ROOT)
    return Signers(_Stores(), request)  # type: ignore[arg-type]  # the registry's one method


def _delta_json(line: bytes) -> Any:
    return orjson.loads(line)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(add, max_size=8), fmt=st.sampled_from([PARQUET, DELTA]), block=st.sampled_from([2, 3, 8])
)
@example(rows=[ODD, *ABSOLUTE], fmt=PARQUET, block=8)
@example(rows=[ODD, *ABSOLUTE], fmt=DELTA, block=1)
def test_columnar_lines_equal_the_per_file_reference(
    rows: list[dict[str, Any]], fmt: str, block: int
) -> None:
    """`block`: the rows built at a time (big tables are built in blocks of sorted rows)."""
    _check_against_reference(rows, fmt, block)


# The partition values of a table: the same keys in the same order in every file (built by one join per key).
_keys = st.lists(text, min_size=1, max_size=3, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    keys=_keys,
    fmt=st.sampled_from([PARQUET, DELTA]),
    block=st.sampled_from([2, 8]),
)
def test_partition_values_with_the_same_keys_equal_the_per_file_reference(
    data: st.DataObject, keys: list[str], fmt: str, block: int
) -> None:
    values = st.lists(st.none() | text, min_size=len(keys), max_size=len(keys))
    rows = data.draw(
        st.lists(
            st.builds(
                lambda add, values: {**add, "partitionValues": list(zip(keys, values, strict=True))},
                add,
                values,
            ),
            min_size=1,
            max_size=8,
        )
    )
    _check_against_reference(rows, fmt, block)


def _check_against_reference(rows: list[dict[str, Any]], fmt: str, block: int) -> None:
    half = len(rows) // 2  # two chunks, as the row groups of a big checkpoint
    table = add_table(pa.chunked_array([pa.array(rows[:half], type=ADD), pa.array(rows[half:], type=ADD)]))
    adds = rows_as_dicts(table)
    tail = lines.delta_action_tail if fmt == DELTA else lines.parquet_tail
    files = AddFiles.from_table(table)
    try:
        entries = [make_entry(a, ROOT, (AUX,), fmt, tail) for a in adds]
    except LakegateError:  # a path the reference refuses: the columnar build must refuse it too
        with pytest.raises(LakegateError):
            parts.build_base(files, ROOT, (AUX,), fmt, fmt, block)
        assume(False)
        return
    signers = _signers()
    built = parts.FileParts(parts.build_base(files, ROOT, (AUX,), fmt, fmt, block), files)
    try:
        expected = list(file_lines(entries, fmt, signers, ROOT, (AUX,)))
    except (LakegateError, ValueError):  # e.g. a deletion vector it cannot sign: refused too (the first
        # refused file may differ: the columnar lines come sorted by file key)
        with pytest.raises((LakegateError, ValueError)):
            list(parts_lines(built, fmt, signers, ROOT, (AUX,)))
        return
    got = _joined(parts_lines(built, fmt, signers, ROOT, (AUX,))).splitlines(keepends=True)
    if fmt == PARQUET:
        assert sorted(got) == sorted(expected)
    else:
        key = orjson.OPT_SORT_KEYS
        assert sorted(orjson.dumps(_delta_json(x), option=key) for x in got) == sorted(
            orjson.dumps(_delta_json(x), option=key) for x in expected
        )
    # Sorted by file key: the order pages index into.
    assert built.paths().to_pylist() == sorted(a["path"] for a in adds) or len(
        {a["path"] for a in adds}
    ) < len(adds)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(add, max_size=8), fmt=st.sampled_from([PARQUET, DELTA]))
@example(rows=[ODD, *ABSOLUTE], fmt=PARQUET)
@example(rows=[{**ODD, "deletionVector": None}, *ABSOLUTE], fmt=DELTA)
def test_small_answers_joined_in_python_equal_the_columnar_lines(
    rows: list[dict[str, Any]], fmt: str
) -> None:
    """A few files are joined in Python (`files.SMALL_ANSWER_FILES`): the same bytes, in the same order, as the
    column-wise lines of the same parts, with the same signers."""
    table = add_table(pa.chunked_array([pa.array(rows, type=ADD)]))
    files = AddFiles.from_table(table)
    try:
        built = parts.FileParts(parts.build_base(files, ROOT, (AUX,), fmt, fmt), files)
    except LakegateError:
        assume(False)
        return
    signers = _signers()
    try:
        small = _joined(parts_lines(built, fmt, signers, ROOT, (AUX,), extra=b',"version":3'))
    except (LakegateError, ValueError):
        small = None
    with mock.patch.object(files_module, "SMALL_ANSWER_FILES", -1):
        try:
            columnar = _joined(parts_lines(built, fmt, signers, ROOT, (AUX,), extra=b',"version":3'))
        except (LakegateError, ValueError):
            columnar = None
    assert small == columnar


def _snapshot(n: int) -> Snapshot:
    rows = [
        {"path": f"d={i % 3}/f{i}.parquet", "partitionValues": [("d", str(i % 3))], "size": i, "stats": None}
        for i in range(n)
    ]
    table = add_table(pa.chunked_array([pa.array(rows, type=ADD)]))
    return Snapshot(1, {"minReaderVersion": 1}, {"id": "x"}, AddFiles.from_table(table), 0)


def test_concurrent_requests_build_the_parts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    builds = []
    build_base = parts.build_base

    def slow_build(*args: Any, **kwargs: Any) -> pa.Table:
        builds.append(1)
        time.sleep(0.2)  # long enough for every thread to arrive while the first builds
        return build_base(*args, **kwargs)

    monkeypatch.setattr(parts, "build_base", slow_build)
    cache, snapshot = LineCache(), _snapshot(50)
    results: list[parts.FileParts] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.parts(snapshot, ROOT, (), PARQUET, PARQUET)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and cache.builds == 1
    assert len(results) == 8 and all(r is results[0] for r in results) and len(results[0]) == 50


def test_a_failed_build_fails_every_waiting_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> pa.Table:
        time.sleep(0.2)
        raise ValueError("broken table")

    monkeypatch.setattr(parts, "build_base", broken)
    cache, snapshot = LineCache(), _snapshot(5)
    errors: list[BaseException] = []

    def query() -> None:
        try:
            cache.parts(snapshot, ROOT, (), PARQUET, PARQUET)
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=query) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 and all(str(e) == "broken table" for e in errors)


@pytest.mark.parametrize(
    "odd",
    [
        "d=1/.f.parquet",
        ".f.parquet",
        "a%20b.parquet",
        "d=\u00e9/f.parquet",
        "file:///srv/tables/t/abs.parquet",
        "d=1/f\x7f.parquet",
    ],
)
def test_paths_needing_decoding_or_checks_are_found_among_plain_ones(odd: str) -> None:
    """The byte pre-test in front of the exact pattern never lets through a path the pattern would catch."""
    paths = ["d=1/a.parquet", odd, "d=2/b.parquet"]
    rel, uri = parts._relative_paths(pa.array(paths), ROOT, (AUX,))
    expected = [parts._relative_path(p, ROOT, (AUX,)) for p in paths]
    assert list(zip(rel.to_pylist(), uri.to_pylist(), strict=True))[1] == expected[1]
    assert rel.to_pylist()[1] is not None or uri.to_pylist()[1] is not None  # sent through data_location


@pytest.mark.parametrize(
    "odd", ["d=1/.f.parquet", "a%20b.parquet", "d=\u00e9/f.parquet", "file:///srv/aux/f.parquet"]
)
@pytest.mark.parametrize("shift", [-2, -1, 0, 1])
def test_the_byte_pre_test_sees_odd_paths_anywhere_in_a_long_column(odd: str, shift: int) -> None:
    """The pre-test reads the column's bytes a slice at a time: an odd byte (or a "/." split by two slices)
    at, just before or just after a slice boundary, or at the column's very end, is still seen."""
    plain = [f"d=1/part-{i:07d}.parquet" for i in range(2 * parts._SCAN // 20)]
    assert not parts._maybe_special(pa.array(plain))
    bad = next(i for i, c in enumerate(odd) if not (c.isascii() and c.isalnum()) and c not in "=-_")
    offset = parts._SCAN - bad - 1 + shift  # the odd character at the slice's last byte, give or take
    head = "".join(plain)[:offset]
    for paths in ([head, odd, *plain], [*plain, odd]):
        assert parts._maybe_special(pa.array(paths)), paths[:2]
        assert parts._relative_paths(pa.array(paths), ROOT, (AUX,)) != parts._plain_paths(len(paths))


@pytest.mark.parametrize("fmt", [PARQUET, DELTA])
def test_urls_needing_json_escapes_are_escaped(fmt: str) -> None:
    """No signer makes a URL with a quote or a backslash in it, but a base URL from configuration could: the
    lines stay valid JSON and carry the URL as signed."""
    table = add_table(pa.chunked_array([pa.array([{**ADD_ROW, "path": "a.parquet"}], type=ADD)]))
    files = AddFiles.from_table(table)
    built = parts.FileParts(parts.build_base(files, ROOT, (), fmt, fmt), files)
    now = int(time.time())
    base = 'http://h/"odd\\path'
    signers = Signers(_Stores(), SignRequest(now + 600, now, base, "s/sc/t", ROOT))  # type: ignore[arg-type]
    (line,) = _joined(parts_lines(built, fmt, signers, ROOT, ())).splitlines()
    entry = orjson.loads(line)["file"]
    url = entry["url"] if fmt == PARQUET else entry["deltaSingleAction"]["add"]["path"]
    assert url.startswith(base + "/files/s/sc/t/a.parquet?")


def test_escaping_counts_the_escapes_of_each_row() -> None:
    """Empty and null rows among others, at either end too, keep their place; quotes and backslashes escaped."""
    values = ["", 'a"b', "", '\\"', None, "x", "", '""']
    escaped, bad = parts._escaped(pa.array(values, pa.string()))
    assert escaped.to_pylist() == [None if v is None else orjson.dumps(v).decode()[1:-1] for v in values]
    assert not bad.any()


@pytest.mark.parametrize("base", ["http://h/delta-sharing", 'http://h/"odd\\base'])
def test_local_urls_are_json_escaped_unless_sure_to_need_none(base: str) -> None:
    """Local URLs are the base URL, quoted paths and base64url signatures: the answer skips looking for
    characters to escape only when the base URL holds none (checked, not assumed); the lines are JSON either way."""
    rows = [{**ADD_ROW, "path": f"p=a b/f{i}.parquet", "size": i} for i in range(SMALL_ANSWER_FILES + 2)]
    table = add_table(pa.chunked_array([pa.array(rows, type=ADD)]))
    files = AddFiles.from_table(table)
    built = parts.FileParts(parts.build_base(files, ROOT, (), PARQUET, PARQUET), files)
    now = int(time.time())
    signers = Signers(_Stores(), SignRequest(now + 600, now, base, "s/sc/t", ROOT))  # type: ignore[arg-type]
    assert signers.json_safe_below(ROOT) == ('"' not in base)
    urls = [
        orjson.loads(line)["file"]["url"]
        for line in _joined(parts_lines(built, PARQUET, signers, ROOT, ())).splitlines()
    ]
    assert len(urls) == len(rows) and all(u.startswith(base + "/files/s/sc/t/p%3Da%20b/f") for u in urls)


def test_a_range_of_rows_sums_the_sizes_its_slice_does() -> None:
    """`size_between` (a page's byte total, from cumulative sizes summed once) against the slice's own sum, with
    files added after the checkpoint (the overlay) and a file without a size among them."""
    base = _snapshot(300)
    later = [{"path": f"late/f{i}.parquet", "partitionValues": {}, "size": 1000 + i} for i in range(40)]
    later.append({"path": "late/nosize.parquet", "partitionValues": {}})
    files = AddFiles.from_table(base.files.base, later)
    snapshot = Snapshot(2, base.protocol, base.metadata, files, 0)
    whole = LineCache().parts(snapshot, ROOT, (), PARQUET, PARQUET)
    assert len(whole) == 341 and whole.total_size() == sum(range(300)) + sum(range(1000, 1040))
    for start, stop in [(0, 341), (0, 0), (5, 6), (290, 341), (100, 200), (330, 400), (341, 341), (200, 100)]:
        assert whole.size_between(start, stop) == whole[start:stop].total_size(), (start, stop)
