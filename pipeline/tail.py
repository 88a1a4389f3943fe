"""``umlogs tail``: follow a growing log and export each new event, and each finding as it appears.

:class:`Follower` reads the complete lines appended to a file since the last poll. It notices
*rotation* (the path now names another file: another inode or device; the old file is read to its
end first) and *truncation* (the file became shorter than what was read: it is read again from the
start). Text is decoded incrementally: a BOM chooses UTF-8, UTF-16 LE or BE; otherwise UTF-8, with
undecodable bytes replaced.

:class:`Tail` parses those lines with the format sniffed from the file's first lines (or the one
forced), numbers them as in the file (so event ids match those of ``umlogs export`` on the same
file), keeps a window of recent events, re-classifies the window when new events arrive, and emits
findings whose id was not emitted before.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> log = d / "a.log"
>>> _ = log.write_text("one\\ntwo\\nthr")
>>> f = Follower(log)
>>> f.poll()
['one', 'two']
>>> _ = log.open("a").write("ee\\n")
>>> f.poll(), f.generation
(['three'], 0)
>>> _ = log.write_text("new\\n")   # shorter than what was read: truncated
>>> f.poll(), f.generation
(['new'], 1)
"""

from __future__ import annotations

import codecs
import dataclasses
import os
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from umlogs import parsers
from umlogs.parsers.event import Event, ParseIssue

WINDOW = 10_000
READ_BYTES = 1 << 20
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class Follower:
    """New complete lines of one path, across rotation and truncation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.generation = 0
        """Counts the files followed so far: 0 for the first, +1 at each rotation or truncation."""
        self._handle = None
        self._stat: os.stat_result | None = None
        self._position = 0
        self._decoder = None
        self._text = ""

    def poll(self, limit: int = 64) -> list[str]:
        """The complete lines added since the last poll (reads at most ``limit`` MiB per call)."""
        if self._handle is None and not self._open():
            return []
        lines = self._read(limit)
        current = _stat(self.path)
        if current is not None and (current.st_ino, current.st_dev) != (self._stat.st_ino, self._stat.st_dev):
            lines += self._read(limit) + self._flush()
            self._close()
            self._open()
            self.generation += 1
            lines += self._read(limit)
        elif os.fstat(self._handle.fileno()).st_size < self._position:
            self._handle.seek(0)
            self._position, self._decoder, self._text = 0, None, ""
            self.generation += 1
            lines += self._read(limit)
        return lines

    def close(self) -> None:
        self._close()

    def _open(self) -> bool:
        try:
            self._handle = self.path.open("rb")
        except OSError:
            return False
        self._stat = os.fstat(self._handle.fileno())
        self._position, self._decoder, self._text = 0, None, ""
        return True

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None

    def _read(self, limit: int) -> list[str]:
        for _ in range(limit):
            data = self._handle.read(READ_BYTES)
            if not data:
                break
            self._position += len(data)
            if self._decoder is None:
                encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
                self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
                if encoding == "utf-16-le" or encoding == "utf-16-be":
                    data = data[2:]
            self._text += self._decoder.decode(data)
        *lines, self._text = self._text.split("\n")
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    def _flush(self) -> list[str]:
        """The last line of a file that will not grow any more (rotated away), even without a newline."""
        rest, self._text = self._text, ""
        return [rest.rstrip("\r")] if rest else []


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


class Tail:
    """Parse followed lines into events and findings; ``emit`` receives each new record."""

    def __init__(
        self,
        path: Path,
        emit: Callable,
        *,
        findings: bool,
        events: bool,
        format: str | None = None,
        host: str | None = None,
        tz_offset: int | None = None,
        rule_dirs: tuple[Path, ...] = (),
    ) -> None:
        from umlogs.pipeline.export.record import product_version
        from umlogs.pipeline.rules import load_rules

        self.follower = Follower(path)
        self.emit, self.want_findings, self.want_events = emit, findings, events
        self.parser = parsers.by_name(format) if format else None
        self.host, self.tz_offset = host, tz_offset
        self.rules = load_rules(tuple(rule_dirs)) if findings else []
        if self.rules:
            from umlogs.pipeline.classify import check_rules

            check_rules(self.rules)  # before any line is read, as classify does
        self.version = product_version()
        self.window: deque[Event] = deque(maxlen=WINDOW)
        self.emitted_findings: set[str] = set()
        self.issues = 0
        self._head: list[str] = []
        self._line_no = 0
        self._generation = 0
        self._log_offset: int | None = None

    def step(self, *, quiet: bool = False) -> int:
        """Read, parse and emit what is new; ``quiet`` records without emitting (to skip what a file
        already held). Returns how many records were emitted."""
        lines = self.follower.poll()
        if self.follower.generation != self._generation:
            self._generation, self._line_no, self._log_offset = self.follower.generation, 0, None
        if not lines:
            return 0
        if self.parser is None:
            self._head.extend(lines)
            self.parser = parsers.detect(self._head)
            if self.parser is None:
                if len(self._head) >= parsers.HEAD_LINES:
                    raise TailError(f"{self.follower.path}: not a known log format (try --input-format)")
                return 0
            lines, self._head = self._head, []
        events = self._parse(lines)
        emitted = 0
        now = datetime.now(timezone.utc)
        if self.want_events and not quiet:
            from umlogs.pipeline.export.record import event_record
            from umlogs.pipeline.store import events_table

            for row in events_table(events).to_pylist():
                self.emit(event_record(row, tz_offset=self.tz_offset, now=now, version=self.version))
                emitted += 1
        if self.want_findings and events:
            emitted += self._findings(now, quiet)
        return emitted

    def close(self) -> None:
        self.follower.close()

    def _parse(self, lines: list[str]) -> list[Event]:
        base, self._line_no = self._line_no, self._line_no + len(lines)
        source = str(self.follower.path)
        events = []
        for item in self.parser.parse(lines, source, host=self.host, utc_offset=self._log_offset):
            if isinstance(item, ParseIssue):
                self.issues += 1
                continue
            event = dataclasses.replace(item, line_no=item.line_no + base)
            if event.utc_offset is not None:
                self._log_offset = event.utc_offset
            events.append(event)
        self.window.extend(events)
        return events

    def _findings(self, now: datetime, quiet: bool) -> int:
        from umlogs.pipeline.classify import classify_table
        from umlogs.pipeline.export.record import finding_record
        from umlogs.pipeline.export.source import finding_dict, source_offsets
        from umlogs.pipeline.store import events_table

        table = events_table(self.window)
        offsets = source_offsets(table)
        emitted = 0
        for finding in classify_table(table, self.rules):
            record = finding_record(finding_dict(finding), source_offsets=offsets, tz_offset=self.tz_offset,
                                    now=now, version=self.version)
            if record.id in self.emitted_findings:
                continue
            self.emitted_findings.add(record.id)
            if not quiet:
                self.emit(record)
                emitted += 1
        return emitted


class TailError(Exception):
    """The followed file cannot be exported (its format is unknown)."""
