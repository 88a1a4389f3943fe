"""Events and parse issues as Arrow tables with one explicit, versioned schema, and Parquet files.

The fields are documented one by one in docs/events.md; ``tests/pipeline/test_store.py`` checks that
the page and :data:`EVENT_SCHEMA` agree.

>>> from umlogs.parsers.event import Event
>>> table = events_table([Event(format="windows_update", source="a.log", line_no=1, raw="x", message="x")])
>>> table.num_rows, table.schema.metadata[b"umlogs.schema_version"]
(1, b'1')
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from queue import Queue

import pyarrow as pa
import pyarrow.parquet as pq

from umlogs.parsers.event import Event, ParseIssue

SCHEMA_VERSION = "1"
_META = {b"umlogs.schema_version": SCHEMA_VERSION.encode()}
_STRINGS = pa.list_(pa.string())

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
        pa.field("host", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("line_no", pa.int64(), nullable=False),
        pa.field("line_count", pa.int32(), nullable=False),
        pa.field("timestamp", pa.timestamp("us")),
        pa.field("timestamp_text", pa.string()),
        pa.field("utc_offset", pa.int16()),
        pa.field("timestamp_utc", pa.timestamp("us", tz="UTC")),
        pa.field("pid", pa.int64()),
        pa.field("tid", pa.int64()),
        pa.field("component", pa.string()),
        pa.field("level", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("hresult", pa.string()),
        pa.field("hresults", _STRINGS),
        pa.field("success_codes", _STRINGS),
        pa.field("kbs", _STRINGS),
        pa.field("update_ids", _STRINGS),
        pa.field("guids", _STRINGS),
        pa.field("caller_id", pa.string()),
        pa.field("urls", _STRINGS),
        pa.field("operation", pa.string()),
        pa.field("operation_phase", pa.string()),
        pa.field("exit_code", pa.string()),
        pa.field("exception_chain", pa.list_(pa.struct([("type", pa.string()), ("message", pa.string())]))),
        pa.field("attrs", pa.map_(pa.string(), pa.string())),
        pa.field("raw", pa.string(), nullable=False),
    ],
    metadata=_META,
)

ISSUE_SCHEMA = pa.schema(
    [
        pa.field("format", pa.string()),
        pa.field("host", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("line_no", pa.int64(), nullable=False),
        pa.field("line_count", pa.int32(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
    ],
    metadata=_META,
)

_COMPUTED = {"event_id", "timestamp_utc"}
# Columns that hold a new value on nearly every row: a dictionary only grows until the writer drops
# it, and min/max statistics of the strings prune nothing. Leaving both out of these (and statistics
# out of ``message``) writes 1M events in ~0.3 s less CPU, to a 5-7% smaller file; leaving the
# dictionary out of the line numbers and timestamps too, ~0.15 s less and 8% smaller again
# (docs/performance.md). Their statistics stay: they prune.
_UNIQUE_COLUMNS = {"event_id", "raw", "timestamp_text"}
_NO_DICTIONARY = _UNIQUE_COLUMNS | {"line_no", "timestamp", "timestamp_utc"}
_NO_STATISTICS = _UNIQUE_COLUMNS | {"message", "text"}
# Event ids are hex digits of one length: with their lengths apart from the digits (rather than
# before each), zstd compresses 1M of them in ~0.25 s less CPU, to a third less space. Line numbers
# rise by one from row to row: as deltas, 200k of them take 2 kB instead of 205 kB, written in 3.0
# instead of 8.5 ms (best of seven).
_ENCODINGS = {"event_id": "DELTA_LENGTH_BYTE_ARRAY", "line_no": "DELTA_BINARY_PACKED"}
# Bytes a column's dictionary may grow to in a row group before the writer gives it up for plain
# values (Parquet's default: 1 MiB). A part's messages pass that (100k Windows 10+ events hold ~19k
# distinct ones, 2.3 MB), and a dictionary given up makes every reader that wants them encoded
# (classify's message ids) hash them again: 10M stored events are read in 2.3-2.5 s instead of
# 3.1-3.5 s, and written in less CPU to 8% less space. A dictionary holds at most its row group's
# values, which are in memory already.
DICTIONARY_PAGE_BYTES = 64 << 20
# Values the writer encodes at a time (Parquet's default: 1,024): it checks the page size, counts
# levels and updates statistics once per batch. With 64k, a row group's column is one batch, and
# 200k events are written in 5% fewer instructions (classic 1,424 -> 1,352 M, Windows 10+ 1,797 ->
# 1,701 M, callgrind) to a slightly smaller file, read as fast (docs/performance.md). A page then
# holds up to 64k values: the whole column of one of the sink's row groups (~6 MB of raw lines),
# which is in memory already; the 1 GB log's peak RSS rose 404 -> 421 MB.
WRITE_BATCH_VALUES = 64 << 10
# Rows the sink gathers at least into one row group before writing it (each ``write_table`` ends
# one). The parse hands over tables of up to 30k rows, a few fewer where lines were blank, so two
# make a group of ~60k: half as many dictionaries and pages to build as one table a group. The sink
# alone, writing 1M events in tables of 30k (seven alternating runs, median CPU): classic 0.94 ->
# 0.89 s, Windows 10+ 1.42 -> 1.24 s; 120k saved no more, and held 50 MB more. At 60k, two tables
# one row short of it waited for a third: groups of 60k and 90k in turn, and the first (the file's
# first features read, 59,963 rows of 1M classic lines) was written only with the second read, at
# 0.9 s instead of 0.6 s into the run (docs/performance.md).
ROW_GROUP_ROWS = 50_000


def parquet_options(schema: pa.Schema) -> dict:
    """How umlogs writes Parquet: zstd; dictionaries and statistics only where they pay. Both are
    asked for by leaf column, so only flat columns are named: the values of a list or a map (mostly
    empty) are written plain and without statistics, which would prune nothing.

    >>> options = parquet_options(pa.schema([("raw", pa.string()), ("level", pa.string()), ("event_id", pa.string())]))
    >>> options["use_dictionary"], options["column_encoding"]
    (['level'], {'event_id': 'DELTA_LENGTH_BYTE_ARRAY'})
    >>> parquet_options(pa.schema([("kbs", pa.list_(pa.string()))]))["write_statistics"]
    []
    """
    flat = [f for f in schema if not pa.types.is_nested(f.type)]
    return {
        "compression": "zstd",
        "use_dictionary": [f.name for f in flat if f.name not in _NO_DICTIONARY],
        "write_statistics": [f.name for f in flat if f.name not in _NO_STATISTICS],
        "column_encoding": {f.name: _ENCODINGS[f.name] for f in schema if f.name in _ENCODINGS},
        "dictionary_pagesize_limit": DICTIONARY_PAGE_BYTES,
        "write_batch_size": WRITE_BATCH_VALUES,
    }


def events_table(events: Iterable[Event]) -> pa.Table:
    """Arrow table of events, columns in :data:`EVENT_SCHEMA` order."""
    events = list(events)
    columns = {}
    for field in EVENT_SCHEMA:
        if field.name in _COMPUTED:
            values = [getattr(e, field.name) for e in events]
        elif field.name == "attrs":
            values = [list(e.attrs) for e in events]
        elif field.name == "exception_chain":
            values = [[{"type": t, "message": m} for t, m in e.exception_chain] for e in events]
        else:
            values = [getattr(e, field.name) for e in events]
            if pa.types.is_list(field.type):
                values = [list(v) for v in values]
        columns[field.name] = pa.array(values, type=field.type)
    return pa.table(columns, schema=EVENT_SCHEMA)


def event_from_row(row: dict) -> Event:
    """The :class:`Event` one row of an events table holds (the inverse of :func:`events_table`).

    >>> e = Event(format="f", source="s", line_no=1, raw="r", message="m", kbs=("KB1",), attrs=(("a", "b"),))
    >>> event_from_row(events_table([e]).to_pylist()[0]) == e
    True
    """
    values = {k: v for k, v in row.items() if k not in _COMPUTED}
    for field in EVENT_SCHEMA:
        if field.name in values and pa.types.is_list(field.type):
            values[field.name] = tuple(values[field.name] or ())
    values["attrs"] = tuple(row["attrs"] or ())
    values["exception_chain"] = tuple((c["type"], c["message"]) for c in row["exception_chain"] or ())
    return Event(**values)


def issues_table(issues: Iterable[ParseIssue]) -> pa.Table:
    """Arrow table of parse issues, columns in :data:`ISSUE_SCHEMA` order."""
    issues = list(issues)
    return pa.table({f.name: pa.array([getattr(i, f.name) for i in issues], type=f.type) for f in ISSUE_SCHEMA},
                    schema=ISSUE_SCHEMA)  # fmt: skip


def issues_path(events_path: Path) -> Path:
    """Where the parse issues of ``OUT.parquet`` go: ``OUT.issues.parquet`` beside it.

    >>> issues_path(Path("out/x.parquet")).as_posix()
    'out/x.issues.parquet'
    """
    return events_path.with_name(events_path.stem + ".issues.parquet")


@contextlib.contextmanager
def parquet_sink(path: Path, schema: pa.Schema = EVENT_SCHEMA):
    """A function that appends tables to the Parquet file ``path``. A background thread writes
    (pyarrow releases the GIL, so parsing goes on meanwhile), each row group once it holds
    :data:`ROW_GROUP_ROWS` rows or more (the last, what is left), to a temporary file beside
    ``path``, renamed into place when the block ends without an error.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "e.parquet"
    >>> with parquet_sink(out) as sink:
    ...     sink(events_table([Event(format="f", source="s", line_no=1, raw="r", message="m")]))
    >>> pq.read_table(out).num_rows
    1
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    queue: Queue = Queue(maxsize=2)
    failure: list[BaseException] = []

    def write() -> None:
        held: list[pa.Table] = []  # the tables of the row group to come, each cast to ``schema``
        with pq.ParquetWriter(tmp, schema, **parquet_options(schema)) as writer:
            while True:
                table = queue.get()
                if not failure:
                    try:
                        if table is not None:
                            held.append(table.cast(schema))
                        if held and (table is None or sum(map(len, held)) >= ROW_GROUP_ROWS):
                            writer.write_table(pa.concat_tables(held))
                            held = []
                    except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                        failure.append(error)
                if table is None:
                    return

    def sink(table: pa.Table) -> None:
        if failure:
            raise failure[0]
        queue.put(table)

    thread = threading.Thread(target=write, name="parquet-sink", daemon=True)
    thread.start()
    try:
        try:
            yield sink
        finally:
            queue.put(None)
            thread.join()
        if failure:
            raise failure[0]
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write atomically: a temporary file beside the target, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, **parquet_options(table.schema))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
