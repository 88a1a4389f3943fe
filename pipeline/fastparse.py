"""The fast path of the parse stage: a chunk of lines into an Arrow table of events in one DuckDB
query, using the grammar's line rules compiled to a regular expression
(:mod:`umlogs.parsers.fastpath`) and the message terminals as SQL (:func:`~umlogs.parsers.message.sql_carried`).
Lines the regular expression does not take go to the Lark parser, so the result is exactly what
``parser.parse`` yields — tests/parsers/test_fastpath.py checks it on generated input and the corpus.

A format takes part when its parser module has ``sql_fields`` (today: windows_update).

>>> from umlogs.parsers import windows_update
>>> chunk = parse_chunk(windows_update, ["2018-10-02\\t11:21:58:874\\t 408\\t1224\\tPT\\tWARNING: PTError: 0x80072ee2", "", "junk"], source="x.log")
>>> chunk.events.column("hresult").to_pylist(), [i.line_no for i in chunk.issues]
(['0x80072EE2'], [3])
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import duckdb
import pyarrow as pa

from umlogs.parsers.event import Event, ParseIssue
from umlogs.parsers.fastpath import line_regex
from umlogs.parsers.message import sql_carried
from umlogs.pipeline.store import EVENT_SCHEMA, events_table

_local = threading.local()


@dataclass(frozen=True, slots=True)
class Chunk:
    """The events of a chunk (an Arrow table in :data:`EVENT_SCHEMA`, ordered by line), its parse
    issues, and the UTC offset in force after its last line."""

    events: pa.Table
    issues: list[ParseIssue]
    utc_offset: int | None


def supports(parser: ModuleType) -> bool:
    """True when ``parser`` has a fast path."""
    return hasattr(parser, "sql_fields")


def parse_chunk(
    parser: ModuleType,
    lines: Sequence[str],
    *,
    source: str,
    host: str | None = None,
    utc_offset: int | None = None,
    first_line_no: int = 1,
) -> Chunk:
    """Parse ``lines`` (numbered from ``first_line_no``); blank lines yield nothing."""
    con = _connection()
    numbers = pa.array(range(first_line_no, first_line_no + len(lines)), pa.int64())
    chunk = pa.table({"line_no": numbers, "line": pa.array(lines, pa.string())})
    with _registered(con, _chunk=chunk):
        taken = con.sql(_fast_query(parser), params=[parser.NAME, host or "", source]).to_arrow_table()
        with _registered(con, _taken=taken):
            rest = con.execute("SELECT line_no, line FROM _chunk ANTI JOIN _taken USING (line_no) ORDER BY line_no").fetchall()
    events, issues = _lark(parser, [(n, line) for n, line in rest if line.strip()], source, host)
    slow = pa.table({
        "line_no": pa.array([e.line_no for e in events], pa.int64()),
        "banner_offset": pa.array([parser.banner_offset(e.message, None) for e in events], pa.int32()),
    })  # fmt: skip
    banners = taken.column("banner_offset").null_count < taken.num_rows or slow.column("banner_offset").null_count < slow.num_rows
    with _registered(con, _taken=taken, _slow=slow):
        if not banners:  # the common case: one offset for the whole chunk, no window needed
            fast = con.sql(_CONSTANT_OFFSET_QUERY, params=[utc_offset]).to_arrow_table()
            slow_offsets, last = {}, utc_offset
        else:
            fast = con.sql(_OFFSETS_QUERY, params=[utc_offset]).to_arrow_table()
            slow_offsets = dict(con.execute(_SLOW_OFFSETS_QUERY, [utc_offset]).fetchall())
            last = con.execute(_LAST_OFFSET_QUERY, [utc_offset]).fetchall()[0][0]
    fast_table = _in_schema(fast)
    if not events:
        return Chunk(fast_table, issues, last)
    slow_table = events_table(dataclasses.replace(e, utc_offset=slow_offsets.get(e.line_no, last if not banners else None)) for e in events)
    return Chunk(pa.concat_tables([fast_table, slow_table]).sort_by("line_no"), issues, last)


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection; one thread in a pool worker (the pool is the parallelism)."""
    con = getattr(_local, "con", None)
    if con is None:
        threads = 1 if multiprocessing.parent_process() is not None else os.cpu_count() or 1
        con = duckdb.connect(config={"threads": threads})
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        _local.con = con
    return con


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, **tables: pa.Table):
    """Arrow tables visible to ``con`` under the given names for the duration of a block."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield con
    finally:
        for name in tables:
            con.unregister(name)


@functools.cache
def _fast_query(parser: ModuleType) -> str:
    """One query: match, extract, and compute every event column but the UTC offset and UTC time."""
    lr = line_regex(parser.NAME)
    names = ", ".join(f"'{g}'" for g in lr.groups)
    fields = parser.sql_fields(lambda name: f"coalesce(g.{name}, '')")
    raw, lists, carried = sql_carried("message")
    guard = f"AND NOT regexp_matches(line, {_literal(lr.guard)})" if lr.guard else ""
    return f"""
    WITH matched AS MATERIALIZED (
        SELECT line_no, line, regexp_extract(line, {_literal(lr.pattern)}, [{names}]) AS g FROM _chunk
    ), fields AS MATERIALIZED (
        SELECT line_no, line, {", ".join(f"{sql} AS {name}" for name, sql in fields.items())}
        FROM matched WHERE g.{lr.groups[0]} <> '' {guard}
    ), found AS MATERIALIZED (
        SELECT *, {", ".join(f"{sql} AS {name}" for name, sql in raw.items())} FROM fields
    ), listed AS MATERIALIZED (
        SELECT *, {", ".join(f"{sql} AS {name}" for name, sql in lists.items())} FROM found
    ), carried AS MATERIALIZED (
        SELECT *, {", ".join(f"{sql} AS {name}" for name, sql in carried.items())} FROM listed
    )
    SELECT md5(concat_ws(chr(31), $1, $2, $3, CAST(line_no AS VARCHAR), line)) AS event_id,
           $1 AS format, NULLIF($2, '') AS host, $3 AS source, line_no, CAST(1 AS INTEGER) AS line_count,
           timestamp, timestamp_text, pid, tid, component,
           {parser.sql_level("message", "hresults")} AS level, message,
           hresults[1] AS hresult, hresults, success_codes, kbs, update_ids, guids, caller_id, urls,
           operation, operation_phase, exit_code, line AS raw,
           {parser.sql_banner_offset("message")} AS banner_offset
    FROM carried
    """


# The UTC offset of a line is the last banner's at or before it, else the one given ($1).
_OFFSETS = """
SELECT line_no, coalesce(last_value(banner_offset IGNORE NULLS) OVER (
    ORDER BY line_no ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), $1) AS utc_offset
FROM (SELECT line_no, banner_offset FROM _taken UNION ALL SELECT line_no, banner_offset FROM _slow)
"""
_UTC = """CASE WHEN {o} IS NOT NULL
                 AND t.timestamp - to_minutes({o}) BETWEEN TIMESTAMP '0001-01-01' AND TIMESTAMP '9999-12-31 23:59:59.999999'
            THEN CAST(t.timestamp - to_minutes({o}) AS TIMESTAMPTZ) END AS timestamp_utc"""
_OFFSETS_QUERY = f"""
WITH offsets AS ({_OFFSETS})
SELECT t.* EXCLUDE (banner_offset), CAST(o.utc_offset AS SMALLINT) AS utc_offset, {_UTC.format(o="o.utc_offset")}
FROM _taken t JOIN offsets o USING (line_no)
ORDER BY line_no
"""
_CONSTANT_OFFSET_QUERY = f"""
SELECT t.* EXCLUDE (banner_offset), CAST($1 AS SMALLINT) AS utc_offset, {_UTC.format(o="CAST($1 AS SMALLINT)")}
FROM _taken t
ORDER BY line_no
"""
_SLOW_OFFSETS_QUERY = f"WITH offsets AS ({_OFFSETS}) SELECT line_no, utc_offset FROM offsets WHERE line_no IN (SELECT line_no FROM _slow)"
_LAST_OFFSET_QUERY = f"""
SELECT coalesce((SELECT arg_max(banner_offset, line_no) FROM (
    SELECT line_no, banner_offset FROM _taken UNION ALL SELECT line_no, banner_offset FROM _slow
) WHERE banner_offset IS NOT NULL), $1)
"""


def _in_schema(table: pa.Table) -> pa.Table:
    """The fast rows in :data:`EVENT_SCHEMA` (empty ``attrs`` and ``exception_chain``)."""
    columns = {
        f.name: table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in EVENT_SCHEMA
    }
    columns["attrs"] = pa.array([[]] * table.num_rows, EVENT_SCHEMA.field("attrs").type)
    columns["exception_chain"] = pa.array([[]] * table.num_rows, EVENT_SCHEMA.field("exception_chain").type)
    return pa.table(columns).cast(EVENT_SCHEMA)


def _lark(parser: ModuleType, slow: list[tuple[int, str]], source: str, host: str | None):
    events: list[Event] = []
    issues: list[ParseIssue] = []
    for line_no, line in slow:
        for item in parser.parse([line], source, host=host, first_line_no=line_no):
            (issues if isinstance(item, ParseIssue) else events).append(item)
    return events, issues


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
