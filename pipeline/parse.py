"""The parse stage for one file: read, decode, sniff, parse. Bad input is data, never an exception:
a file that is not a log comes back with ``error`` set; lines no grammar accepts come back as
:class:`~umlogs.parsers.event.ParseIssue` records.

>>> r = parse_file(Path("no/such/file.log"))
>>> r.error
'no such file'
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from umlogs import parsers
from umlogs.parsers.event import Event, ParseIssue
from umlogs.pipeline import fastparse
from umlogs.pipeline.decode import NotText, check_text, decode
from umlogs.pipeline.store import event_from_row, events_table

# Lines per fast-path chunk: large enough to amortize a query, small enough to bound memory.
CHUNK_LINES = 200_000


@dataclass(slots=True)
class FileResult:
    """What parsing one file produced, and the counts that prove nothing was lost:
    ``lines == event lines + issue lines + blank``."""

    source: str
    format: str | None = None
    encoding: str | None = None
    lines: int = 0
    blank: int = 0
    replaced: int = 0
    parsed: list[Event] = field(default_factory=list)
    """Events from the Lark parser, for formats without a fast path."""
    tables: list[pa.Table] = field(default_factory=list)
    """Events from the fast path, as Arrow tables in EVENT_SCHEMA."""
    issues: list[ParseIssue] = field(default_factory=list)
    error: str | None = None

    @property
    def events(self) -> list[Event]:
        """Every event as an :class:`Event` (built from the Arrow tables on the fast path)."""
        return self.parsed + [event_from_row(row) for table in self.tables for row in table.to_pylist()]

    @property
    def event_count(self) -> int:
        return len(self.parsed) + sum(t.num_rows for t in self.tables)

    def table(self) -> pa.Table:
        """Every event as one Arrow table in EVENT_SCHEMA."""
        return pa.concat_tables([events_table(self.parsed), *self.tables])

    @property
    def accounted(self) -> bool:
        """True when every line is an event line, an issue line or blank."""
        covered = sum(e.line_count for e in self.parsed) + sum(i.line_count for i in self.issues)
        covered += sum(pc.sum(t.column("line_count")).as_py() or 0 for t in self.tables)
        return self.error is not None or covered + self.blank == self.lines


def parse_file(
    path: Path,
    *,
    format: str | None = None,
    host: str | None = None,
    utc_offset: int | None = None,
    fast: bool = True,
) -> FileResult:
    """Parse one file; ``format`` forces a parser instead of sniffing; ``utc_offset`` (minutes east of
    UTC) applies where the log does not say its own."""
    result = FileResult(source=str(path))
    try:
        data = _read(path)
        check_text(data)
    except (OSError, NotText) as error:
        result.error = _describe(error)
        return result
    return parse_bytes(data, result, format=format, host=host, utc_offset=utc_offset, fast=fast)


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
    fast path where the format has one (same events; ``fast=False`` is the pure Lark parse)."""
    decoded = decode(data)
    result.encoding, result.replaced = decoded.encoding, decoded.replaced
    result.lines = len(decoded.lines)
    result.blank = sum(1 for line in decoded.lines if not line.strip())
    parser = parsers.by_name(format) if format else parsers.detect(decoded.lines)
    if parser is None:
        result.error = "not a known log format (try --format; `umlogs formats` lists them)"
        return result
    result.format = parser.NAME
    if fastparse.supports(parser) and fast:
        for start in range(0, len(decoded.lines), CHUNK_LINES):
            chunk = fastparse.parse_chunk(
                parser, decoded.lines[start : start + CHUNK_LINES], source=result.source, host=host,
                utc_offset=utc_offset, first_line_no=start + 1,
            )  # fmt: skip
            result.tables.append(chunk.events)
            result.issues.extend(chunk.issues)
            utc_offset = chunk.utc_offset
        return result
    for item in parser.parse(decoded.lines, result.source, host=host, utc_offset=utc_offset):
        (result.issues if isinstance(item, ParseIssue) else result.parsed).append(item)
    return result


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode  # raises FileNotFoundError, PermissionError
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "is a directory")
    if not stat.S_ISREG(mode):
        raise OSError(0, "not a regular file (a FIFO, socket or device)")
    return path.read_bytes()


def _describe(error: OSError | NotText) -> str:
    if isinstance(error, NotText):
        return f"not a log: {error}"
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error)
