"""The parse stage for one file: read, decode, sniff, parse. Bad input is data, never an exception:
a file that is not a log comes back with ``error`` set; lines no grammar accepts come back as
:class:`~umlogs.parsers.event.ParseIssue` records.

>>> r = parse_file(Path("no/such/file.log"))
>>> r.error
'no such file'
"""

from __future__ import annotations

import io
import itertools
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc

from umlogs import parsers
from umlogs.parsers.event import Event, ParseIssue
from umlogs.pipeline import fastparse
from umlogs.pipeline.decode import MAX_LINE_CHARS, NotText, check_text, iter_arrow
from umlogs.pipeline.store import event_from_row, events_table

# Lines per fast-path chunk, the batches DuckDB's line query reads and the tables of events that come
# out: small enough to bound memory (a 10M-line, 1.6 GB log peaks at 439 MB RSS, under the CLI's
# jemalloc; docs/performance.md).
CHUNK_LINES = 30_000
# Events per batch on the Lark path: each is a Python object until its batch becomes a table (a 200k-line
# worker.log peaks at 236 MB RSS with 20k, 405 MB with 100k).
BATCH_EVENTS = 20_000
# Bytes read before sniffing and checking that a file is text.
HEAD_BYTES = 1 << 20
# Files of fewer lines go to the Lark parser even where their format has a fast path (the same
# events; tests/parsers/test_fastpath.py): the fast path's queries cost 18-27 ms a file however few
# its lines, Lark ~3 ms and 0.12 ms a line (both even at ~140 lines). 1,000 distinct 48-line logs
# ingest in 10.2-11.4 s instead of 22.1-23.0 s.
FAST_MIN_LINES = 128

Sink = Callable[[pa.Table], None]


@dataclass(slots=True)
class FileResult:
    """What parsing one file produced, and the counts that prove nothing was lost:
    ``lines == event lines + issue lines + blank``. Events are kept as Arrow tables, or handed to
    a sink (``parse_file(..., sink=...)``) and only counted."""

    source: str
    format: str | None = None
    encoding: str | None = None
    lines: int = 0
    blank: int = 0
    replaced: int = 0
    long_lines: int = 0
    """Lines longer than the line limit (``max_line``), kept cut to it."""
    tables: list[pa.Table] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)
    event_count: int = 0
    event_lines: int = 0
    error: str | None = None

    @property
    def events(self) -> list[Event]:
        """Every kept event as an :class:`Event` (built from the Arrow tables)."""
        return [event_from_row(row) for table in self.tables for row in table.to_pylist()]

    def table(self) -> pa.Table:
        """Every kept event as one Arrow table in EVENT_SCHEMA."""
        return pa.concat_tables([events_table([]), *self.tables])

    @property
    def accounted(self) -> bool:
        """True when every line is an event line, an issue line or blank."""
        covered = self.event_lines + sum(i.line_count for i in self.issues)
        return self.error is not None or covered + self.blank == self.lines

    def add(self, table: pa.Table, issues: list[ParseIssue], sink: Sink | None) -> None:
        self.event_count += table.num_rows
        self.event_lines += pc.sum(table.column("line_count")).as_py() or 0
        self.issues.extend(issues)
        if sink is None:
            self.tables.append(table)
        elif table.num_rows:
            sink(table)


def parse_file(
    path: Path,
    *,
    format: str | None = None,
    host: str | None = None,
    utc_offset: int | None = None,
    fast: bool = True,
    workers: int = 1,
    sink: Sink | None = None,
    max_line: int = MAX_LINE_CHARS,
) -> FileResult:
    """Parse one file as a stream (memory does not grow with its size); ``format`` forces a parser
    instead of sniffing; ``utc_offset`` (minutes east of UTC) applies where the log does not say its
    own; ``workers`` DuckDB threads run the fast path's line query; ``sink`` receives the event tables
    instead of the result keeping them; lines longer than ``max_line`` characters are cut to it and
    counted in ``long_lines``."""
    result = FileResult(source=str(path))
    try:
        _check_regular(path)
        with path.open("rb") as stream:
            return parse_stream_bytes(stream, result, format=format, host=host, utc_offset=utc_offset,
                                      fast=fast, workers=workers, sink=sink, max_line=max_line)  # fmt: skip
    except (OSError, NotText) as error:
        result.error = _describe(error)
        return result


def parse_bytes(
    data: bytes,
    result: FileResult,
    *,
    format: str | None = None,
    host: str | None = None,
    utc_offset: int | None = None,
    fast: bool = True,
) -> FileResult:
    """Decode and parse ``data`` into ``result`` (whose ``source`` names it). ``fast`` takes the
    fast path where the format has one and the data has :data:`FAST_MIN_LINES` lines or more (same
    events; ``fast=False`` is the pure Lark parse)."""
    try:
        return parse_stream_bytes(io.BytesIO(data), result, format=format, host=host, utc_offset=utc_offset, fast=fast)
    except NotText as error:
        result.error = _describe(error)
        return result


def parse_stream_bytes(
    stream,
    result: FileResult,
    *,
    format: str | None = None,
    host: str | None = None,
    utc_offset: int | None = None,
    fast: bool = True,
    workers: int = 1,
    sink: Sink | None = None,
    max_line: int = MAX_LINE_CHARS,
) -> FileResult:
    """Check, decode, sniff and parse a binary stream into ``result``; raises :class:`NotText`."""
    head = stream.read(HEAD_BYTES)
    check_text(head if len(head) < HEAD_BYTES else head[:4096])
    blocks, stats = iter_arrow(_Prefixed(head, stream), max_line=max_line)
    first, blocks = head_lines(blocks, FAST_MIN_LINES)
    parser = parsers.by_name(format) if format else parsers.detect(first)
    if parser is None:
        result.error = "not a known log format (try --format; `umlogs formats` lists them)"
        return result
    result.format = parser.NAME
    fast = fast and len(first) >= FAST_MIN_LINES
    batches = parse_blocks(blocks, parser, result.source, host=host, utc_offset=utc_offset, fast=fast, workers=workers)
    for table, issues in batches:
        result.add(table, issues, sink)
    result.encoding, result.replaced, result.lines, result.blank = stats.encoding, stats.replaced, stats.lines, stats.blank
    result.long_lines = stats.long_lines
    return result


def parse_blocks(
    blocks: Iterable[pa.Array],
    parser: ModuleType,
    source: str,
    *,
    host: str | None = None,
    utc_offset: int | None = None,
    fast: bool = True,
    workers: int = 1,
    batch: int | None = None,
) -> Iterator[tuple[pa.Table, list[ParseIssue]]]:
    """Blocks of decoded lines (Arrow string arrays, as :func:`iter_arrow` gives them) into Arrow
    batches of events, each with the parse issues met since the previous one. Fast-path formats go
    by chunks of ``batch`` lines, at most :data:`CHUNK_LINES` (which bounds memory), through one line
    query in ``workers`` DuckDB threads, with no Python string made per line; others through the
    Lark parser's generator, ``batch`` events at a time.

    >>> from umlogs.parsers import windows_update
    >>> line = "2018-10-02\t11:21:58:874\t 408\t1224\tPT\tWARNING: PTError: 0x80072ee2"
    >>> [(t.num_rows, len(i)) for t, i in parse_blocks([pa.array([line, "junk"])], windows_update, "x.log")]
    [(1, 1)]
    """
    if fast and fastparse.supports(parser):
        return _fast_batches(blocks, parser, source, host, utc_offset, workers, min(batch or CHUNK_LINES, CHUNK_LINES))
    lines = itertools.chain.from_iterable(block.to_pylist() for block in blocks)
    return _lark_batches(lines, parser, source, host, utc_offset, batch or BATCH_EVENTS)


def _lark_batches(lines, parser, source, host, utc_offset, batch) -> Iterator[tuple[pa.Table, list[ParseIssue]]]:
    events: list[Event] = []
    issues: list[ParseIssue] = []
    for item in parser.parse(lines, source, host=host, utc_offset=utc_offset):
        (issues if isinstance(item, ParseIssue) else events).append(item)
        if len(events) >= batch or len(issues) >= batch:
            yield events_table(events), issues
            events, issues = [], []
    if events or issues:
        yield events_table(events), issues


def head_lines(blocks: Iterator[pa.Array], count: int) -> tuple[list[str], Iterator[pa.Array]]:
    """The first ``count`` lines, and the blocks again from the start.

    >>> first, blocks = head_lines(iter([pa.array(["a", "b"]), pa.array(["c"])]), 1)
    >>> first, [line for block in blocks for line in block.to_pylist()]
    (['a'], ['a', 'b', 'c'])
    """
    seen: list[pa.Array] = []
    for block in blocks:
        seen.append(block)
        if sum(map(len, seen)) >= count:
            break
    first = pa.chunked_array(seen, pa.string()).slice(0, count).to_pylist()
    return first, itertools.chain(seen, blocks)


def _rechunk(blocks: Iterable[pa.Array], size: int) -> Iterator[pa.Array]:
    """Blocks of any length as arrays of ``size`` lines (the last may be shorter)."""
    pending: list[pa.Array] = []
    count = 0
    for block in blocks:
        pending.append(block)
        count += len(block)
        while count >= size:
            whole = pa.concat_arrays(pending)
            yield whole.slice(0, size)
            pending, count = [whole.slice(size)], count - size
    if count:
        yield pa.concat_arrays(pending)


def _fast_batches(blocks, parser, source, host, utc_offset, workers, size) -> Iterator[tuple[pa.Table, list[ParseIssue]]]:
    """Chunks of ``size`` lines through the fast path as one stream, in ``workers`` DuckDB threads,
    the events in order in tables of about ``size``."""
    chunks = _rechunk(blocks, size)
    for parsed in fastparse.parse_chunks(parser, chunks, source=source, host=host, utc_offset=utc_offset, threads=workers, rows=size):
        yield parsed.events, parsed.issues


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read."""

    def __init__(self, head: bytes, rest) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            data, self._head = (self._head, b"") if size < 0 or size >= len(self._head) else (self._head[:size], self._head[size:])
            return data
        return self._rest.read(size)


def _check_regular(path: Path) -> None:
    mode = path.stat().st_mode  # raises FileNotFoundError, PermissionError
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "is a directory")
    if not stat.S_ISREG(mode):
        raise OSError(0, "not a regular file (a FIFO, socket or device)")


def _describe(error: OSError | NotText) -> str:
    if isinstance(error, NotText):
        return f"not a log: {error}"
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error)
