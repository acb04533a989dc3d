"""File pruning by Delta Sharing predicate hints (``jsonPredicateHints`` and SQL ``predicateHints``).

Pure logic, no I/O. The server builds one `FileFilter` per query and asks it which files to keep. Hints are best
effort: anything we cannot parse makes the builder return ``None`` (no filtering), and a filter drops a file only
when the file certainly holds no matching row. Any doubt keeps the file.

Modules: `values` (parsing literals, partition values and stats values), `truth` (truth-set evaluation and the
`FileFilter`), `columns` (the same over many files at once, with numpy and pyarrow), `json_hints` and
`sql_hints` (validating and compiling each kind of hint).
"""

from lakegate.delta.predicates.json_hints import json_predicate_filter
from lakegate.delta.predicates.sql_hints import sql_predicate_filter
from lakegate.delta.predicates.truth import FileFilter, PredicateLimits, combine
from lakegate.delta.predicates.values import physical_names

__all__ = [
    "FileFilter",
    "PredicateLimits",
    "combine",
    "json_predicate_filter",
    "physical_names",
    "sql_predicate_filter",
]
