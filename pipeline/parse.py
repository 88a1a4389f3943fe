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

from umlogs import parsers
from umlogs.parsers.event import Event, ParseIssue
from umlogs.pipeline.decode import NotText, check_text, decode


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
    events: list[Event] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)
    error: str | None = None

    @property
    def accounted(self) -> bool:
        """True when every line is an event line, an issue line or blank."""
        covered = sum(e.line_count for e in self.events) + sum(i.line_count for i in self.issues)
        return self.error is not None or covered + self.blank == self.lines


def parse_file(
    path: Path, *, format: str | None = None, host: str | None = None, utc_offset: int | None = None
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
    return parse_bytes(data, result, format=format, host=host, utc_offset=utc_offset)


def parse_bytes(
    data: bytes,
    result: FileResult,
    *,
    format: str | None = None,
    host: str | None = None,
    utc_offset: int | None = None,
) -> FileResult:
    """Decode and parse ``data`` into ``result`` (whose ``source`` names it)."""
    decoded = decode(data)
    result.encoding, result.replaced = decoded.encoding, decoded.replaced
    result.lines = len(decoded.lines)
    result.blank = sum(1 for line in decoded.lines if not line.strip())
    parser = parsers.by_name(format) if format else parsers.detect(decoded.lines)
    if parser is None:
        result.error = "not a known log format (try --format; `umlogs formats` lists them)"
        return result
    result.format = parser.NAME
    for item in parser.parse(decoded.lines, result.source, host=host, utc_offset=utc_offset):
        (result.issues if isinstance(item, ParseIssue) else result.events).append(item)
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
