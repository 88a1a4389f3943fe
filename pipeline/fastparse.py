"""The fast path of the parse stage: chunks of lines into Arrow tables of events, by DuckDB. One
*line query* per file streams over all its chunks (planned once, run in as many DuckDB threads as
asked): it matches and splits the lines with the grammar's line rules compiled to regular expressions
(:mod:`umlogs.parsers.fastpath`). The *features query* reads what a message carries with the message
terminals as SQL (:func:`~umlogs.parsers.message.sql_carried`), once per message the thread has not
met before, for the messages of many chunks at once: a message's features depend on its text alone,
and messages repeat within a file and across files. Lines the regular expressions do not take go to
the Lark parser, so the result is exactly what ``parser.parse`` yields — tests/parsers/test_fastpath.py
checks it on generated input and the corpus.

A format takes part when its parser module has ``sql_fields`` (today: windows_update).

>>> from umlogs.parsers import windows_update
>>> chunk = parse_chunk(windows_update, ["2018-10-02\\t11:21:58:874\\t 408\\t1224\\tPT\\tWARNING: PTError: 0x80072ee2", "", "junk"], source="x.log")
>>> chunk.events.column("hresult").to_pylist(), [i.line_no for i in chunk.issues]
(['0x80072EE2'], [3])
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from umlogs.parsers.event import Event, ParseIssue
from umlogs.parsers.fastpath import HEAD, LineRegex, Rest, line_regex
from umlogs.parsers.message import sql_carried, sql_literal
from umlogs.pipeline.store import EVENT_SCHEMA, events_table

_local = threading.local()

# The event columns a message decides, in the order the features query returns them.
FEATURES = ("level", "hresult", "hresults", "success_codes", "kbs", "update_ids", "guids", "caller_id", "urls",
            "operation", "operation_phase", "exit_code", "attrs")  # fmt: skip
# What the features query returns: each message asked about, whether it is a record's, its features.
_FOUND = pa.schema([("message", pa.string()), ("_guarded", pa.bool_()), *(EVENT_SCHEMA.field(name) for name in FEATURES)])
# Distinct messages whose features a thread keeps (~200 bytes each with their features): 1M generated
# Windows 10+ lines hold 28k (their cV ids make many unique), and each learned again costs ~16 us.
CACHED_MESSAGES = 100_000
# Lines whose messages the features query reads at once: its fixed cost (~4-6 ms) is paid once for
# them, though every classic chunk holds REPORT EVENT records, each a message never met before. The
# first read comes sooner, at ``rows`` lines, so that a file's first events reach the writer while
# DuckDB runs on (1M classic lines, five alternating runs: median 5.37 -> 4.83 s). A read waits for
# DuckDB's batches to hold that many taken lines, and a batch of ``rows`` lines holds a few fewer
# where lines were blank, so each read takes one batch more in practice: the first ~60k lines (two
# tables, a row group the writer starts on at once: store.ROW_GROUP_ROWS), then ~150k. Reads of
# fewer lines were no faster (docs/performance.md, thirteenth round).
FEATURE_LINES = 120_000
# New messages (with REPORT EVENT records) at most this many are read by Lark from their lines rather
# than by the features query: Lark takes 0.13-0.19 ms a line, the query 3.7-5.7 ms however few it
# reads (one message, warm, median of 21), so they cost the same at ~30. Whole runs over the
# windows_update corpus could not tell 0, 24 and 64 apart (eight alternating rounds).
LARK_FEATURES = 32
# Bytes of messages at most that the features query takes as a string literal rather than as a
# registered table (:func:`_query_features`). Thread CPU for one query, literal against table: 1,000
# Windows 10+ messages (118 kB) 25-34 against 47-51 ms, 5,000 (0.6 MB) 85-95 against 87-99 ms,
# 20,000 (2.4 MB) 354 against 255 ms.
LITERAL_BYTES = 512 << 10
# Runs of consecutive taken lines that :func:`_apart` gives as slices of a chunk, beyond which it copies them.
RUNS = 64
# What the line query reads: each line, numbered, with the UTC offset in force at it.
_INPUT = pa.schema([("line_no", pa.int64()), ("line", pa.string()), ("utc_offset", pa.int16())])


@dataclass(frozen=True, slots=True)
class Chunk:
    """The events of a chunk (an Arrow table in :data:`EVENT_SCHEMA`, ordered by line) and its parse
    issues."""

    events: pa.Table
    issues: list[ParseIssue]


def supports(parser: ModuleType) -> bool:
    """True when ``parser`` has a fast path."""
    return hasattr(parser, "sql_fields")


def parse_chunks(
    parser: ModuleType,
    chunks: Iterable[pa.Array],
    *,
    source: str,
    host: str | None = None,
    utc_offset: int | None = None,
    first_line_no: int = 1,
    threads: int = 1,
    rows: int = 30_000,
) -> Iterator[Chunk]:
    """Parse ``chunks`` of lines (numbered from ``first_line_no``) as one stream: one line query over
    all of them in ``threads`` DuckDB threads, the events in line order, in tables of about ``rows``
    (those the fast path took, and the events Lark made of the lines between them). Memory does not
    grow with the input: DuckDB reads the chunks as it goes, and each is let go once the query has
    passed it."""
    chunks = iter(chunks)
    head = list(itertools.islice(chunks, 2))
    feed = _Feed(parser, itertools.chain(head, chunks), source, utc_offset, first_line_no)
    constants = {"format": parser.NAME, "host": host or None, "source": source}
    key = "\x1f".join((parser.NAME, host or "", source, ""))  # what every event id starts with
    with _using("lines", threads, _chunk=pa.RecordBatchReader.from_batches(_INPUT, feed.batches())) as con:
        if len(head) < 2:  # one chunk (most files of a fleet): the prepared query, planned sooner
            taken = con.sql(f"EXECUTE {_prepared(con, parser, 'lines')}({sql_literal(key)})").to_arrow_table().to_reader()
        else:  # DuckDB does not stream the result of EXECUTE
            taken = con.sql(_line_query(parser), params=[key]).to_arrow_reader(rows)
        pending: list[pa.RecordBatch] = []
        enough = rows  # the first events soon, for the writer to start on
        with contextlib.closing(taken):  # a consumer that stops early leaves no open result behind
            for batch in taken:  # most batches are taken whole: no copy of them then
                pending.append(batch if pc.all(batch.column("_taken"), skip_nulls=False).as_py() else batch.filter(batch.column("_taken")))
                if sum(map(len, pending)) >= enough:
                    yield from _finished(parser, feed, pa.Table.from_batches(pending, taken.schema), constants, rows)
                    pending, enough = [], FEATURE_LINES
        yield from _finished(parser, feed, pa.Table.from_batches(pending, taken.schema), constants, rows, last=True)
    if feed.failure is not None:
        raise feed.failure


def parse_chunk(
    parser: ModuleType,
    lines: Sequence[str] | pa.Array,
    *,
    source: str,
    host: str | None = None,
    utc_offset: int | None = None,
    first_line_no: int = 1,
) -> Chunk:
    """Parse ``lines`` (numbered from ``first_line_no``) into one :class:`Chunk`; blank lines yield nothing."""
    lines = lines if isinstance(lines, pa.Array) else pa.array(lines, pa.string())
    parsed = list(parse_chunks(parser, [lines], source=source, host=host, utc_offset=utc_offset,
                               first_line_no=first_line_no, rows=max(1, len(lines))))  # fmt: skip
    return Chunk(pa.concat_tables([events_table([]), *(c.events for c in parsed)]), [i for c in parsed for i in c.issues])


class _Feed:
    """The chunks as the line query reads them (:meth:`batches`), each line numbered and given the
    UTC offset in force at it; kept until the query's output has passed them, for their raw text and
    the lines the query did not take."""

    def __init__(self, parser: ModuleType, chunks: Iterator[pa.Array], source: str, utc_offset: int | None, first_line_no: int) -> None:
        self.parser, self.chunks, self.source, self.utc_offset = parser, chunks, source, utc_offset
        self.next_line_no = first_line_no
        self.kept: deque[pa.RecordBatch] = deque()
        self.failure: BaseException | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The chunks as record batches of :data:`_INPUT` (DuckDB's threads call this). An error is
        kept for the consumer to raise: through DuckDB it would become a message."""
        try:
            for lines in self.chunks:
                if not len(lines):
                    continue
                offsets = line_offsets(self.parser, lines, self.source, self.utc_offset)
                self.utc_offset = offsets[-1].as_py()
                batch = pa.record_batch([_counting(self.next_line_no, len(lines)), lines, offsets], schema=_INPUT)
                self.kept.append(batch)
                self.next_line_no += len(lines)
                yield batch
        except BaseException as error:  # noqa: BLE001 - raised again by parse_chunks
            self.failure = error

    def line(self, line_no: int) -> str:
        """The text of a kept line. (A copy of the deque is searched: DuckDB's thread may add to it
        meanwhile.)"""
        batch = next(b for b in list(self.kept) if _first(b) <= line_no < _first(b) + len(b))
        return batch.column(1)[line_no - _first(batch)].as_py()

    def upto(self, line_no: int) -> pa.Table:
        """The kept lines up to ``line_no``, let go."""
        taken: list[pa.RecordBatch] = []
        while self.kept and _first(self.kept[0]) <= line_no:
            batch = self.kept.popleft()
            cut = line_no - _first(batch) + 1
            if cut < len(batch):
                self.kept.appendleft(batch.slice(cut))
            taken.append(batch.slice(0, cut))
        return pa.Table.from_batches(taken, _INPUT)


def _first(batch: pa.RecordBatch) -> int:
    """The number of a batch's first line."""
    return batch.column(0)[0].as_py()


def _finished(parser: ModuleType, feed: _Feed, taken: pa.Table, constants: dict, rows: int, last: bool = False) -> Iterator[Chunk]:
    """The events of the lines the line query has passed, in tables of about ``rows``: ``taken``
    (the rows it took since the last call, in order) with their features, read at once, and the
    lines between them it did not take, parsed by Lark. Every line up to the last taken one is
    passed; with ``last``, every line fed. Each table is made only once the one before has gone.
    The columns of one value (``constants``) are made once for all the tables, and sliced."""
    features = _features(parser, taken, feed)
    same = {name: pa.repeat(pa.scalar(value, pa.string()), min(rows, taken.num_rows)) for name, value in constants.items()}
    for start in range(0, max(taken.num_rows, 1), rows):
        part = taken.slice(start, rows)
        end = feed.next_line_no - 1 if last and start + rows >= taken.num_rows else part.column("line_no")[-1].as_py()
        lines = feed.upto(end)
        if not lines.num_rows:
            continue
        raw, rest = _apart(lines, part.column("line_no"))
        fast = _in_schema(part, features.slice(start, rows), raw, {name: column.slice(0, part.num_rows) for name, column in same.items()})
        issues: list[ParseIssue] = []
        if rest.num_rows:
            slow = [row for row in zip(*(rest.column(c).to_pylist() for c in rest.column_names)) if row[1].strip()]
            events, issues = _lark(parser, slow, constants["source"], constants["host"])
            if events:
                fast = pa.concat_tables([fast, events_table(events)]).sort_by("line_no")
        yield Chunk(fast, issues)


def line_offsets(parser: ModuleType, lines: pa.Array, source: str, start: int | None) -> pa.Array:
    """The UTC offset in force at each line: the last banner's at or before it, else ``start``.
    Banners are rare: only lines naming one are read, as the sequential parse reads them.

    >>> from umlogs.parsers import windows_update
    >>> banner = "2018-10-02\\t11:21:58:874\\t 408\\t1224\\tMisc\\t===  Logging initialized (build: 7.6, tz: +0300)  ==="
    >>> line_offsets(windows_update, pa.array(["x", banner, "y"]), "x.log", None).to_pylist()
    [None, 180, 180]
    """
    marked = _holding(lines, parser.BANNER_TEXT)
    changes, offset = [], start
    for i, line in zip(marked, pc.take(lines, pa.array(marked, pa.int64())).to_pylist()):
        found = _banner_offset(parser, line, source, offset)
        if found != offset:
            changes.append((i, found))
            offset = found
    if not changes:
        return pa.repeat(pa.scalar(start, pa.int16()), len(lines))
    # Each line takes the value of the last change at or before it: a running count indexes them.
    at = pc.is_in(_counting(0, len(lines)), value_set=pa.array([i for i, _ in changes], pa.int64()))
    values = pa.array([start, *(o for _, o in changes)], pa.int16())
    return pc.take(values, pc.cumulative_sum(pc.cast(at, pa.int64())))


def _holding(lines: pa.Array, text: str) -> list[int]:
    """The indices of the ``lines`` (string or large_string) that hold ``text``. Python's ``re``
    searches the lines' bytes where Arrow keeps them, one after another, and ``bisect`` finds a
    match's line in their offsets: 0.11 s for 1M classic lines, where RE2 line by line
    (``match_substring_regex``) took 0.16 s. A match that runs into the next line is none: the
    search goes on from that line's start.

    >>> _holding(pa.array(["a.b", "xa.", "b", "", "a.b", "xa", "aa"]).slice(1), "a.b")
    [3]
    >>> _holding(pa.array(["xa", "aa", "a"]), "aa"), _holding(pa.array([], pa.string()), "aa")
    ([1], [])
    """
    if not len(lines):
        return []
    _, offsets, data = lines.buffers()
    width = "q" if pa.types.is_large_string(lines.type) else "i"  # 64- or 32-bit offsets
    offsets = memoryview(offsets).cast(width)[lines.offset : lines.offset + len(lines) + 1]
    found, at, end = [], offsets[0], offsets[-1]
    pattern = _literal(text)
    while at < end and (match := pattern.search(data, at, end)):
        i = bisect.bisect_right(offsets, match.start()) - 1
        if match.end() <= offsets[i + 1]:
            found.append(i)
        at = offsets[i + 1]
    return found


@functools.cache
def _literal(text: str) -> re.Pattern:
    """``text`` as a compiled pattern over UTF-8 bytes."""
    return re.compile(re.escape(text.encode()))


def _counting(start: int, count: int) -> pa.Array:
    """``start, start + 1, ...``: ``count`` int64s, without a Python int for each.

    >>> _counting(5, 3).to_pylist()
    [5, 6, 7]
    """
    return pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), count), start=pa.scalar(start - 1, pa.int64()))


def _banner_offset(parser: ModuleType, line: str, source: str, offset: int | None) -> int | None:
    """The offset in force after ``line``: a line the fast path takes has its message in the line
    regex's message groups (read here with Python's ``re``); any other line is parsed by Lark."""
    pattern, guard, messages = _python_line_regex(parser.NAME)
    match = pattern.fullmatch(line)
    if match and not (guard and guard.match(line)):
        return parser.banner_offset(next((match[g] for g in messages if match[g] is not None), ""), offset)
    for item in parser.parse([line], source, utc_offset=offset):
        if isinstance(item, Event):
            return item.utc_offset
    return offset


@functools.cache
def _python_line_regex(name: str) -> tuple[re.Pattern, re.Pattern | None, tuple[str, ...]]:
    """Format ``name``'s line regex for Python's ``re``, its guard, and the names of its message groups."""
    lr = line_regex(name)
    messages = tuple(g for g in lr.groups if g.split("__")[1].endswith("MESSAGE"))
    return re.compile(lr.pattern), lr.guard and re.compile(lr.guard), messages


def _connection(purpose: str, threads: int = 1) -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection for ``purpose`` (``lines``: the streaming line query, in
    ``threads`` DuckDB threads; ``features``: the features query, prepared on it), made once: a
    cursor on this thread's database for that many threads. The features query, small, takes a
    cursor on whichever database the thread has: a database costs ~100 M instructions to make
    (40-90 ms), a cursor next to nothing."""
    connections = _local.__dict__.setdefault("connections", {})
    if (purpose, threads) not in connections:
        databases = _local.__dict__.setdefault("databases", {})
        size = next(iter(databases)) if purpose != "lines" and databases else threads
        if size not in databases:
            databases[size] = duckdb.connect(config={"threads": size})
        con = databases[size].cursor()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        # Room for the line query to run ahead while the parse thread reads features: with DuckDB's
        # 10 MB it stalls (Windows 10+ lines, 1M: 9.9-11.1 s at 10 MB, 7.6-9.2 s at 32-100 MB).
        con.execute("SET streaming_buffer_size = '32MB'")
        connections[purpose, threads] = con
        _local.__dict__.setdefault("prepared", {})[id(con)] = set()
    return connections[purpose, threads]


def _forget() -> None:
    """Close this thread's connections and databases: the next call makes new ones."""
    for con in _local.__dict__.pop("connections", {}).values():
        con.close()
    for database in _local.__dict__.pop("databases", {}).values():
        database.close()
    _local.__dict__.pop("prepared", None)


def _prepared(con: duckdb.DuckDBPyConnection, parser: ModuleType, query: str) -> str:
    """The name of ``parser``'s ``query`` prepared on ``con`` (one of this thread's connections),
    once: ``lines``, or ``features`` and ``records`` (the features query with the part for REPORT
    EVENT records, dearer to plan), each also as ``..._table`` (reading ``_messages``). DuckDB binds
    and plans a query that reads a registered table again on each ``EXECUTE``, but it does not
    parse the SQL again: the line query of a 69-line file takes 21 ms so, 37 ms as SQL."""
    name = f"umlogs_{parser.NAME}_{query}"
    prepared = _local.prepared[id(con)]
    if name not in prepared:
        sql = _line_query(parser) if query == "lines" else _features_query(parser, query.startswith("records"), query.endswith("_table"))
        con.execute(f"PREPARE {name} AS {sql}")
        prepared.add(name)
    return name


@contextlib.contextmanager
def _using(purpose: str, threads: int = 1, **tables: pa.Table):
    """This thread's connection for ``purpose`` (:func:`_connection`), ``tables`` visible to it for
    the duration of a block. A query cut short leaves its connection unusable: on any error this
    thread's connections and databases are closed, and the next block starts afresh."""
    con = _connection(purpose, threads)
    try:
        with _registered(con, **tables):
            yield con
    except BaseException:
        _forget()
        raise


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
def _line_query(parser: ModuleType) -> str:
    """Match and split the lines (``_chunk``), and compute every event column that depends on the
    line rather than on its message alone; ``_taken`` tells the lines the fast path takes. Lines
    the guard marks are taken only when they fully match what the guard stands for (a REPORT EVENT
    record). ``$1`` is what every event id of the file hashes before the line number (see
    :attr:`Event.event_id`). Every line but the empty ones comes out, in the order it went in
    (DuckDB keeps insertion order), and DuckDB streams it all. An empty line is never taken (the
    first group of a pass never matches empty): dropped as it is read, it leaves most batches whole,
    where each batch of a file with blank lines was copied in Arrow to drop them.

    ``timestamp_utc`` comes out a TIMESTAMP, made UTC in Arrow (:func:`_in_schema`), where only its
    type changes: DuckDB's cast to TIMESTAMPTZ goes through ICU's calendar, ~1,300 instructions a
    line even in UTC.

    Each regular expression runs once a line only as long as no filter is pushed down past the
    projection that runs it: DuckDB would run it again to filter. So there is no WHERE on what the
    regexes give: CASE guards what must not run on a line that was not taken (a cast of an empty
    field), and the other lines not taken are dropped in Arrow. A CASE also stands for AND where
    one side is dear: in a projection DuckDB evaluates both sides of AND on every row."""
    lr = line_regex(parser.NAME)
    first, *rest = _passes(lr)
    passes = functools.reduce(lambda inner, layer: f"(SELECT *, {layer} FROM {inner})", rest, "first")
    group, matched = _group(lr), " OR ".join(_ended(lr, b) for b in range(len(lr.branches)))
    fields = parser.sql_fields(lambda name: name)
    steps = ", ".join(f"CASE WHEN _took THEN {sql} END AS {name}" for name, sql in fields.items() if name.startswith("_"))
    guarded = f"CASE WHEN contains(line, {sql_literal(lr.guard_literal)}) THEN regexp_matches(line, {sql_literal(lr.guard)}) ELSE false END" if lr.guard else "false"
    record = f"regexp_full_match(line, {sql_literal(lr.guarded)})" if lr.guard else "true"
    return f"""
    WITH first AS (
        SELECT line_no, line, utc_offset, {first}, {guarded} AS _guarded FROM _chunk WHERE line <> ''
    ), matched AS (
        SELECT line_no, line, utc_offset, _guarded, {matched} AS _took, {", ".join(f"{group(g)} AS {g}" for g in lr.groups)}
        FROM {passes}
    ), fields AS (
        SELECT line_no, utc_offset, _guarded,
               {", ".join(f"CASE WHEN _took THEN {sql} END AS {name}" for name, sql in fields.items() if not name.startswith("_"))},
               CASE WHEN _took THEN md5(concat($1, CAST(line_no AS VARCHAR), chr(31), line)) END AS event_id,
               CASE WHEN _took AND _guarded THEN {record} ELSE _took END AS _taken
        FROM (SELECT *{", " + steps if steps else ""} FROM matched)
    )
    SELECT event_id, line_no, timestamp, timestamp_text, utc_offset,
           CASE WHEN utc_offset IS NOT NULL
                 AND timestamp - to_minutes(utc_offset) BETWEEN TIMESTAMP '0001-01-01' AND TIMESTAMP '9999-12-31 23:59:59.999999'
                THEN timestamp - to_minutes(utc_offset) END AS timestamp_utc,
           pid, tid, component, message, _guarded, _taken
    FROM fields
    """


@functools.cache
def _features_query(parser: ModuleType, guarded: bool = True, table: bool = False) -> str:
    """What each message carries: the columns :data:`FEATURES` names, ``attrs`` as a list of values
    to pair with names (:func:`_paired`). The messages are ``$1``, a line each, each after ``1``
    when guarded, else ``0``; with ``table``, the table ``_messages`` (``message``, ``_guarded``). A
    guarded message is a REPORT EVENT record's, whose fields :func:`sql_report` reads from the
    message split at tabs; without ``guarded``, the query for inputs with no such message."""
    raw, lists, carried = sql_carried("message")
    report = parser.sql_report("_parts", lambda name: f"f.{name}") if guarded else {}
    final = {name: f"(CASE WHEN _guarded THEN {sql} ELSE f.{name} END)" for name, sql in report.items() if name not in ("attrs", "report_status")}
    attrs = f"(CASE WHEN _guarded THEN {report['attrs']} END)" if guarded else "NULL::VARCHAR[]"
    level = f"(CASE WHEN _guarded THEN {parser.sql_level('message', final['hresults'], report['report_status'])} ELSE f.level END)" if guarded else "f.level"
    hresults = final.get("hresults", "f.hresults")
    return f"""
    WITH found AS MATERIALIZED (
        SELECT message, _guarded, {", ".join(f"{sql} AS {name}" for name, sql in raw.items())}
        FROM {"_messages" if table else "(SELECT substr(m, 2) AS message, starts_with(m, '1') AS _guarded FROM (SELECT unnest(string_split($1::VARCHAR, chr(10))) AS m))"}
    ), listed AS MATERIALIZED (
        SELECT *, {", ".join(f"{sql} AS {name}" for name, sql in lists.items())} FROM found
    ), carried AS MATERIALIZED (
        SELECT message, _guarded, {", ".join(f"{sql} AS {name}" for name, sql in carried.items())} FROM listed
    ), f AS MATERIALIZED (
        SELECT *, {parser.sql_level("message", "hresults")} AS level,
               CASE WHEN _guarded THEN string_split(message, chr(9)) END AS _parts
        FROM carried
    )
    SELECT message, _guarded, {level} AS level,
           {hresults}[1] AS hresult, {hresults} AS hresults, {final.get("success_codes", "f.success_codes")} AS success_codes,
           f.kbs, {final.get("update_ids", "f.update_ids")} AS update_ids, f.guids, {final.get("caller_id", "f.caller_id")} AS caller_id,
           f.urls, f.operation, f.operation_phase, f.exit_code, {attrs} AS attrs
    FROM f
    """


@dataclass(slots=True)
class _Known:
    """The features of messages this thread has already met (a message's features depend on its
    text alone, so they carry across chunks and files: 1M classic lines hold 2,583 distinct
    messages, a 25k-line chunk 1,553). REPORT EVENT records are not kept: each is new."""

    messages: pa.Array
    features: pa.Table


def _features(parser: ModuleType, taken: pa.Table, feed: _Feed) -> pa.Table:
    """The features of the messages of ``taken`` (rows of the line query, in order): those of
    messages this thread knows, the rest read at once (:func:`_read`) for the new messages and
    the REPORT EVENT records. Past :data:`CACHED_MESSAGES`, the thread keeps only what these
    messages need."""
    known = _known()
    messages, guarded = taken.column("message").combine_chunks(), taken.column("_guarded").combine_chunks()
    seen = pc.index_in(messages, value_set=known.messages)
    new = pc.unique(pc.filter(messages, pc.and_(pc.invert(guarded), pc.is_null(seen))))
    records = pc.unique(pc.filter(messages, guarded))
    if not len(new) and not len(records):
        return known.features.take(seen)
    asked = pa.table({"message": pa.concat_arrays([new, records]),
                      "_guarded": pa.array([False] * len(new) + [True] * len(records), pa.bool_())})  # fmt: skip
    found = _read(parser, asked, taken, feed)
    at = seen  # where each message is among the known ones: only the lines whose messages are new are looked up again
    if len(new):
        learned, before = found.filter(pc.invert(found.column("_guarded"))), len(known.messages)
        pruned = _overflowing(known, learned.num_rows)  # the known ones are cut down: all looked up again
        known = _local.known = _learning(known, seen, learned)
        unseen = pc.and_(pc.invert(guarded), pc.is_null(seen))
        at = pc.index_in(messages, value_set=known.messages) if pruned else _after(seen, unseen, messages, learned, before)
    if not len(records):
        return known.features.take(at)
    found = found.filter(found.column("_guarded"))
    at = _after(at, guarded, messages, found, len(known.messages))
    return pa.concat_tables([known.features, found.drop_columns(["message", "_guarded"])]).take(at)


def _after(at: pa.Array, rows: pa.BooleanArray, messages: pa.Array, found: pa.Table, before: int) -> pa.Array:
    """``at`` (each line's index among known features) with the ``rows`` given the index of their
    message among ``found`` (rows of the features query) as placed after ``before`` others. Only
    those rows' messages are looked up.

    >>> found = pa.table({"message": ["b", "c"]})
    >>> _after(pa.array([0, None, 1, None], pa.int32()), pa.array([False, True, False, True]), pa.array(["a", "c", "a", "b"]), found, 5).to_pylist()
    [0, 6, 1, 5]
    """
    looked = pc.index_in(pc.filter(messages, rows), value_set=found.column("message").combine_chunks())
    return pc.replace_with_mask(at, rows, pc.add(looked, pa.scalar(before, looked.type)))


def _read(parser: ModuleType, asked: pa.Table, taken: pa.Table, feed: _Feed) -> pa.Table:
    """The features (:data:`_FOUND`) of the ``asked`` messages, which lines of ``taken`` carry. A
    few: Lark parses a line that carries each (0.13-0.19 ms a line, where the features query takes
    ~4-6 ms however few it reads). More: the features query reads them."""
    if asked.num_rows <= LARK_FEATURES and (numbers := _carrying(asked, taken)) is not None:
        events = [item for n in numbers for item in parser.parse([feed.line(n)], "", first_line_no=n)]
        if len(events) == asked.num_rows and all(isinstance(e, Event) for e in events):  # as the line query said
            read = events_table(events)
            return pa.table([asked.column("message"), asked.column("_guarded"), *(read.column(name) for name in FEATURES)], schema=_FOUND)
    read = _query_features(parser, asked)
    attrs = read.schema.get_field_index("attrs")
    return read.set_column(attrs, "attrs", _paired(read.column(attrs), getattr(parser, "REPORT_FIELDS", ()))).cast(_FOUND)


def _query_features(parser: ModuleType, asked: pa.Table) -> pa.Table:
    """The features query's rows for the ``asked`` messages. Up to :data:`LITERAL_BYTES` of them go
    to the prepared query as one string literal, a line each, flagged ``1`` when a REPORT EVENT
    record's: DuckDB binds and plans the query again on each ``EXECUTE`` that reads a table (~35 ms),
    not on one that reads a literal. More are registered as a table, as are messages that hold a
    newline (none from a line does): a literal costs by the byte (Python makes it, DuckDB parses and
    splits it).

    >>> from umlogs.parsers import windows_update
    >>> asked = pa.table({"message": ["it's 0x80072EE2", "fine"], "_guarded": [False, False]})
    >>> _query_features(windows_update, asked).column("hresult").to_pylist()
    ['0x80072EE2', None]
    >>> _query_features(windows_update, asked.set_column(0, "message", [["a\\nb", "0x80070005"]])).column("hresult").to_pylist()
    [None, '0x80070005']
    """
    query = "records" if pc.any(asked.column("_guarded")).as_py() else "features"
    messages = asked.column("message")
    with _using("features") as con:
        if pc.sum(pc.binary_length(messages)).as_py() > LITERAL_BYTES or pc.any(pc.match_substring(messages, "\n")).as_py():
            with _registered(con, _messages=asked):
                return con.sql(f"EXECUTE {_prepared(con, parser, query + '_table')}").to_arrow_table()
        flags = ["1" if g else "0" for g in asked.column("_guarded").to_pylist()]
        text = "\n".join(map(str.__add__, flags, messages.to_pylist()))
        return con.sql(f"EXECUTE {_prepared(con, parser, query)}({sql_literal(text)})").to_arrow_table()


def _paired(values: pa.ChunkedArray, names: Sequence[str]) -> pa.MapArray:
    """Maps made of lists of values, each value under the name at its place in ``names``; a null
    list makes an empty map.

    >>> _paired(pa.chunked_array([[["a", "b"], None, ["c"]]]), ("x", "y")).to_pylist()
    [[('x', 'a'), ('y', 'b')], [], [('x', 'c')]]
    """
    values = values.combine_chunks()
    items = pc.list_flatten(values)
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(pc.fill_null(pc.list_value_length(values), 0))])
    places = pc.subtract(_counting(0, len(items)), pc.take(offsets, pc.list_parent_indices(values)))
    return pa.MapArray.from_arrays(offsets, pc.take(pa.array(names, pa.string()), places), items, type=EVENT_SCHEMA.field("attrs").type)


def _carrying(asked: pa.Table, taken: pa.Table) -> list[int] | None:
    """The number of the first line of ``taken`` that carries each asked message as a line of its
    kind (a REPORT EVENT record's or not); None when some message has none."""
    hit = pc.index_in(taken.column("message"), value_set=asked.column("message"))
    same = pc.fill_null(pc.equal(pc.take(asked.column("_guarded"), hit), taken.column("_guarded")), False)
    first: dict[int, int] = {}
    for k, n in zip(pc.filter(hit, same).to_pylist(), pc.filter(taken.column("line_no"), same).to_pylist()):
        first.setdefault(k, n)
    return [first[k] for k in range(asked.num_rows)] if len(first) == asked.num_rows else None


def _learning(known: _Known, seen: pa.Array, learned: pa.Table) -> _Known:
    """``known`` and the features ``learned`` (rows of the features query). Past
    :data:`CACHED_MESSAGES`, only the known messages these lines use are kept (``seen``: each line's
    index among them, null for a message not among them)."""
    if _overflowing(known, learned.num_rows):
        used = pc.unique(pc.drop_null(seen))
        known = _Known(known.messages.take(used), known.features.take(used))
    return _Known(
        pa.concat_arrays([known.messages, learned.column("message").combine_chunks()]),
        pa.concat_tables([known.features, learned.drop_columns(["message", "_guarded"])]).combine_chunks(),
    )


def _overflowing(known: _Known, count: int) -> bool:
    """Whether ``count`` more messages would take ``known`` past :data:`CACHED_MESSAGES`."""
    return len(known.messages) + count > CACHED_MESSAGES


def _known() -> _Known:
    """This thread's known messages (none, the first time)."""
    known = getattr(_local, "known", None)
    if known is None:
        known = _local.known = _Known(pa.array([], pa.string()), _FOUND.empty_table().drop_columns(["message", "_guarded"]))
    return known


def _passes(lr: LineRegex) -> list[str]:
    """The line regex's passes as SQL, in layers of columns (``_b<i>p<j>``: branch i's pass j), each
    layer reading the ones before it: a branch's first pass runs only where no branch before it
    has matched (the grammar takes the first alternative that matches), its other passes only
    where its first pass matched. So each line of a file in one layout runs the passes of that
    layout's branch, and the first pass of the branches before it. A branch that ends with a
    :class:`~umlogs.parsers.fastpath.Rest` has two layers more: the rest of the line after its
    last pass (``_b<i>rest``), then whether the branch matched (``_b<i>ended``), computed once.
    The rest is the line with the head its last pass matched removed, where the head occurs once
    (any other line is not the branch's, and goes to Lark): ``replace`` finds it by bytes, where
    ``substr`` counts the characters before it (1M classic lines in one DuckDB thread, seven
    alternating runs: median 1.75 -> 1.72 s)."""

    def extract(b: int, p: int) -> str:
        names = ", ".join(f"'{g}'" for g in lr.branches[b][p].groups)
        return f"regexp_extract(line, {sql_literal(lr.branches[b][p].pattern)}, [{names}])"

    layers = []
    for b, branch in enumerate(lr.branches):
        unmatched = " AND ".join(f"NOT {_ended(lr, before)}" for before in range(b))
        layers.append(f"CASE WHEN {unmatched} THEN {extract(b, 0)} END AS _b{b}p0" if b else f"{extract(b, 0)} AS _b{b}p0")
        if len(branch) > 1:
            layers.append(", ".join(f"CASE WHEN {_took(lr, b, 0)} THEN {extract(b, p)} END AS _b{b}p{p}" for p in range(1, len(branch))))
        if rest := branch[-1].rest:
            last = f"_b{b}p{len(branch) - 1}"
            layers.append(f"CASE WHEN {_took(lr, b, len(branch) - 1)} THEN replace(line, {last}.{HEAD}, '') END AS _b{b}rest")
            once = f"strlen(_b{b}rest) = strlen(line) - strlen({last}.{HEAD})"
            layers.append(f"{_took(lr, b, len(branch) - 1)} AND {once} AND {_fits(rest, f'_b{b}rest', f'{last}.{rest.after}')} AS _b{b}ended")
    return layers


def _fits(rest: Rest, text: str, after: str) -> str:
    """Whether ``text``, the rest of a line after a branch's last pass, is the :class:`Rest`
    terminal's (``after``: the terminal before it), or nothing where the line may end.

    >>> _fits(Rest("m", "sep", " ", "\\r", required=False), "r", "p.sep")
    "(r = '' OR (coalesce(p.sep, '') <> '' AND NOT starts_with(r, chr(32)) AND NOT contains(r, chr(13))))"
    """
    holds = " AND ".join([f"coalesce({after}, '') <> ''", *([f"{text} <> ''"] if rest.required else []),
                          *(f"NOT starts_with({text}, chr({ord(c)}))" for c in rest.first if c not in rest.excluded),
                          *(f"NOT contains({text}, chr({ord(c)}))" for c in rest.excluded)])  # fmt: skip
    ended = f"({text} = '' AND coalesce({after}, '') = '')" if rest.required else f"{text} = ''"
    return f"({ended} OR ({holds}))"


def _took(lr: LineRegex, b: int, p: int) -> str:
    """Whether branch ``b``'s pass ``p`` matched (its first group took some text)."""
    return f"coalesce(_b{b}p{p}.{lr.branches[b][p].groups[0]}, '') <> ''"


def _ended(lr: LineRegex, b: int) -> str:
    """Whether branch ``b`` matched: its last pass, the one anchored at both ends, or the column
    that tells it for a branch that ends with a rest (:func:`_passes`)."""
    return f"_b{b}ended" if lr.branches[b][-1].rest else _took(lr, b, len(lr.branches[b]) - 1)


def _group(lr: LineRegex) -> Callable[[str], str]:
    """A group's text by name, from the first branch that matched (``''`` when it took no part)."""

    def text(b: int, name: str) -> str | None:
        branch = lr.branches[b]
        if branch[-1].rest and branch[-1].rest.group == name:
            return f"_b{b}rest"
        return next((f"coalesce(_b{b}p{p}.{name}, '')" for p, ps in enumerate(branch) if name in ps.groups), None)

    def group(name: str) -> str:
        cases = " ".join(f"WHEN {_ended(lr, b)} THEN {sql}" for b in range(len(lr.branches)) if (sql := text(b, name)))
        return f"(CASE {cases} ELSE '' END)"

    return group


def _in_schema(table: pa.Table, features: pa.Table, raw: pa.ChunkedArray, same: dict[str, pa.Array]) -> pa.Table:
    """The fast rows in :data:`EVENT_SCHEMA`: the line query's columns, the features of their
    messages, their ``raw`` lines, the columns that are the ``same`` on every row, and no exception
    chains (a line holds none). The cast to the schema makes ``timestamp_utc`` UTC: its values are
    UTC already."""
    n = table.num_rows
    chains = EVENT_SCHEMA.field("exception_chain").type
    extra = {
        "raw": raw,
        "line_count": pa.repeat(pa.scalar(1, pa.int32()), n),
        "exception_chain": pa.ListArray.from_arrays(pa.repeat(pa.scalar(0, pa.int32()), n + 1), pa.array([], chains.value_type), type=chains),
        **same,
    }
    source = {f.name: (features if f.name in FEATURES else table) for f in EVENT_SCHEMA}
    return pa.table({f.name: extra[f.name] if f.name in extra else source[f.name].column(f.name) for f in EVENT_SCHEMA}).cast(EVENT_SCHEMA)


def _apart(lines: pa.Table, taken: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.Table]:
    """The raw text of the ``lines`` (:data:`_INPUT` rows) whose numbers are ``taken`` (ascending),
    and the other lines. Those others are few, and most are blank: the runs of taken lines between
    them are slices, not copies (where a take copied the text of nearly every 30k-line classic
    chunk, as nearly all hold a blank line: 0.12 s a million lines), and the others are found from
    the runs (where a hash set of the taken numbers cost ~1.5 ms a chunk). Past :data:`RUNS` runs,
    a take and a set, as before.

    >>> lines = pa.table({"line_no": [4, 5, 6, 7, 8], "line": ["a", "", "c", "d", "e"]})
    >>> raw, rest = _apart(lines, pa.chunked_array([[4], [6, 8]]))
    >>> raw.to_pylist(), rest.column("line_no").to_pylist()
    (['a', 'c', 'e'], [5, 7])
    """
    text = lines.column("line")
    if len(taken) == lines.num_rows:
        return text, lines.slice(0, 0)
    places = pc.subtract(taken, lines.column("line_no")[0]).combine_chunks()
    steps = pc.pairwise_diff(places)
    starts = [0, *pc.indices_nonzero(pc.not_equal(steps, pa.scalar(1, steps.type))).to_pylist(), len(places)]
    if len(starts) > RUNS + 1:
        return pc.take(text, places), lines.filter(pc.invert(pc.is_in(lines.column("line_no"), value_set=taken)))
    firsts = pc.take(places, pa.array(starts[:-1], pa.int64())).to_pylist() if len(places) else []
    runs = [(at, end - start) for at, start, end in zip(firsts, starts, starts[1:])]
    ends = [0, *(at + count for at, count in runs)]  # where each gap starts; the gap before each run, then after the last
    left = [i for gap, (at, _) in zip(ends, [*runs, (lines.num_rows, 0)]) for i in range(gap, at)]
    raw = pa.chunked_array([chunk for at, count in runs for chunk in text.slice(at, count).chunks], text.type)
    return raw, lines.take(pa.array(left, pa.int64()))


def _lark(parser: ModuleType, slow: list[tuple[int, str, int | None]], source: str, host: str | None):
    events: list[Event] = []
    issues: list[ParseIssue] = []
    for line_no, line, offset in slow:
        for item in parser.parse([line], source, host=host, utc_offset=offset, first_line_no=line_no):
            (issues if isinstance(item, ParseIssue) else events).append(item)
    return events, issues
