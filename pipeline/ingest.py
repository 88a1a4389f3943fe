"""The ingest stage: discover every file of a bundle, decode it as a stream, sniff and parse it, and
write its events into the dataset, in parallel across cores and in batches, so memory does not grow
with file size. The rules (hosts, limits, statuses) are documented in docs/ingest.md.

Files on disk are read by the worker processes themselves; archive members are read by the parent
and handed to a worker as bytes when smaller than ``Options.small_bytes``, else parsed in the parent
as a stream. A worker writes its parts under temporary names; the parent renames them into place and
then writes the file's manifest row, in discovery order.

>>> content_host(["Debug: Machine Information:   Static hostname: LinuxVM2"])
('linuxvm2', 'line 1: Static hostname: LinuxVM2')
"""

from __future__ import annotations

import errno
import hashlib
import io
import lzma
import multiprocessing
import os
import re
import signal
import tarfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from umlogs import parsers
from umlogs.parsers.event import ParseIssue
from umlogs.pipeline import dataset
from umlogs.pipeline.decode import MAX_LINE_CHARS, NotText, check_text, iter_arrow
from umlogs.pipeline.discover import ExpansionError, Limits, Member, Peeked, discover, read_fully, rotated_base
from umlogs.pipeline.parse import BATCH_EVENTS, FAST_MIN_LINES, head_lines, parse_blocks
from umlogs.pipeline.store import issues_table, write_parquet

MiB = 1 << 20
HEAD_BYTES = 64 * 1024
CONTENT_HEAD_LINES = 200
# Events in a part file: a part per 20k-event batch made 511 files of a 10M-event fleet; classify
# reads 111 files of 100k faster (docs/performance.md).
PART_EVENTS = 100_000
# Log file names (after rotation suffixes are removed) that say the format when sniffing cannot.
_NAMED = {"windowsupdate.log": "windows_update", "worker.log": "update_worker", "omsupdatemgmt.log": "update_worker"}
# Lines in which a log names its own machine: hostnamectl output (the troubleshooter prints it),
# "Hostname: x", "Computer name: x", "COMPUTERNAME=x".
_CONTENT_HOST = re.compile(
    r"(?:Static hostname|Host ?name|Computer ?name|Machine ?name|COMPUTERNAME)\s*[:=]\s*([A-Za-z0-9][A-Za-z0-9._-]*)",
    re.IGNORECASE,
)
_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError, ValueError)


@dataclass(frozen=True, slots=True)
class Options:
    """How to ingest: forced format, host and UTC offset, parallelism, batch size and limits."""

    format: str | None = None
    host: str | None = None
    utc_offset: int | None = None
    workers: int = os.cpu_count() or 1
    batch_events: int = BATCH_EVENTS
    """Lines (fast path) or events (Lark) the parse hands over at a time."""
    part_events: int = PART_EVENTS
    """Events in each part file (the last of a file's parts may hold fewer)."""
    small_bytes: int = 64 * MiB
    """Archive members up to this size go to a worker as bytes; larger ones are parsed in the parent."""
    limits: Limits = Limits()
    max_line: int = MAX_LINE_CHARS
    """Longest line kept, in characters; longer lines are cut to it and counted in ``long_lines``."""


@dataclass(slots=True)
class Outcome:
    """One file's manifest row, and the temporary parts it wrote (``(kind, path, n)``)."""

    path: str
    status: str
    reason: str | None = None
    host: str | None = None
    host_source: str = "none"
    host_evidence: str | None = None
    sha256: str | None = None
    size: int | None = None
    format: str | None = None
    encoding: str | None = None
    replaced: int = 0
    lines: int = 0
    blank: int = 0
    long_lines: int = 0
    events: int = 0
    issues: int = 0
    parts: list[tuple[str, str, int]] = field(default_factory=list)
    accounted: bool = True
    """``lines == event lines + issue lines + blank`` held for this file."""

    def row(self) -> dict:
        data = asdict(self)
        del data["parts"], data["accounted"]
        return data


@dataclass(slots=True)
class Summary:
    """What an ingest did. ``seen == parsed + skipped + rejected`` always."""

    dataset: Path
    seen: int = 0
    parsed: int = 0
    skipped: int = 0
    rejected: int = 0
    duplicates: int = 0
    events: int = 0
    issues: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    orphans_removed: int = 0
    long_lines: int = 0
    """Lines cut to ``Options.max_line``, over all files."""
    interrupted: bool = False
    """``stop`` said to stop: the files placed so far are recorded, the rest were not read."""
    unaccounted: list[str] = field(default_factory=list)
    """Files whose lines are not all in events, issues or blank (the invariant broke: never expected)."""
    outcomes: list[Outcome] = field(default_factory=list)
    """Skipped and rejected files (parsed ones are in the manifest)."""

    @property
    def consistent(self) -> bool:
        return self.seen == self.parsed + self.skipped + self.rejected


@dataclass(frozen=True, slots=True)
class _Job:
    path: str
    root: str
    options: Options
    layout: tuple[str | None, str | None]
    disk_path: str | None = None
    data: bytes | None = None
    sha256: str | None = None
    read_error: str | None = None


# ----------------------------------------------------------------------------------------------------
# The parent: discover, dispatch, place parts, record.


def ingest(
    paths: Sequence[str | Path],
    out: Path,
    options: Options = Options(),
    progress: Callable[[Outcome], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Summary:
    """Ingest ``paths`` into the dataset ``out``; ``progress`` is called once per file, in order.

    ``stop`` is asked before each file is dispatched: once it returns True no new file is read, the
    files in flight are finished and placed, the manifest is written, and the summary says
    ``interrupted`` (running the same ingest again reads the rest, skipping what is recorded)."""
    stop = stop or (lambda: False)
    start = time.monotonic()
    summary = Summary(dataset=out)
    with dataset.Writer.open(out) as writer:
        manifest = writer.manifest()
        rows = manifest.select(["path", "sha256", "status", "events", "issues"]).to_pylist()
        # A file is known (a later copy is a duplicate) when its events or issues are in the dataset: a
        # file rejected before anything was placed (disk full, internal error) is read again.
        known = {r["sha256"]: r["path"] for r in rows
                 if r["sha256"] and (r["status"] == "parsed" or r["events"] or r["issues"])}  # fmt: skip
        existing = {(r["path"], r["sha256"]): r["status"] for r in rows}
        placer = _Placer(writer, out, known, existing, summary, progress)
        if options.workers <= 1:
            _init_worker(known)
            for member in discover(paths, options.limits):
                if stop():
                    summary.interrupted = True
                    break
                placer.add(_handle(member, out, options, known, run=run_job))
        else:
            summary.interrupted = _parallel(paths, out, options, known, placer, stop)
    summary.elapsed = time.monotonic() - start
    return summary


def _parallel(paths, out: Path, options: Options, known: dict, placer: _Placer, stop: Callable[[], bool]) -> bool:
    """Dispatch files to worker processes; True when ``stop`` ended the dispatch early."""
    stopped = False
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["umlogs.pipeline.ingest"])
    with ProcessPoolExecutor(options.workers, mp_context=context, initializer=_init_worker, initargs=(known,)) as pool:
        pending: dict[Future, int] = {}
        inflight = [0]

        def submit(job: _Job) -> Future:
            future = pool.submit(run_job, job)
            size = len(job.data or b"")
            inflight[0] += size
            future.add_done_callback(lambda _f, size=size: inflight.__setitem__(0, inflight[0] - size))
            return future

        for member in discover(paths, options.limits):
            if stop():
                stopped = True
                break
            slot = placer.reserve()
            result = _handle(member, out, options, known, run=submit)
            if isinstance(result, Future):
                pending[result] = slot
            else:
                placer.fill(slot, result)
            while len(pending) >= 2 * options.workers or inflight[0] > 4 * options.small_bytes:
                _collect(pending, placer, FIRST_COMPLETED)
        while pending:
            _collect(pending, placer, FIRST_COMPLETED)
    return stopped


def _collect(pending: dict[Future, int], placer: _Placer, how) -> None:
    done, _ = wait(list(pending), return_when=how)
    for future in done:
        slot = pending.pop(future)
        placer.fill(slot, future.result())


def _handle(member: Member, out: Path, options: Options, known: dict, *, run) -> Outcome | Future:
    """A member becomes an outcome now (skipped, rejected, duplicate, streamed in the parent) or a
    job for ``run`` (a worker)."""
    layout = (member.host, member.host_evidence)
    if member.status:
        return Outcome(member.path, member.status, member.reason, *_host(options, layout, None))
    if member.disk_path is not None:
        return run(_Job(member.path, str(out), options, layout, disk_path=str(member.disk_path)))
    reader = _Reader(member.stream, hashing=False)
    data = read_fully(reader, options.small_bytes + 1)
    if isinstance(reader.error, ExpansionError):
        reason = f"decompression bomb or oversized bundle: {reader.error}"
        return Outcome(member.path, "rejected", reason, *_host(options, layout, None), size=reader.count)
    if len(data) <= options.small_bytes:
        sha = hashlib.sha256(data).hexdigest()
        if sha in known:
            return _duplicate(member.path, sha, known[sha], len(data), options, layout)
        return run(_Job(member.path, str(out), options, layout, data=data, sha256=sha, read_error=_describe(reader.error)))
    stream = Peeked(reader)
    stream.buffer = data
    return parse_stream(stream, member.path, out, options, layout, sha256=None)


class _Placer:
    """Moves each file's parts into place and records its manifest row, in discovery order."""

    def __init__(self, writer, root: Path, known: dict, existing: dict, summary: Summary, progress) -> None:
        self.writer, self.root, self.known, self.existing = writer, root, dict(known), existing
        self.summary, self.progress = summary, progress
        self.ready: dict[int, Outcome] = {}
        self.next_slot = self.next_done = 0

    def reserve(self) -> int:
        self.next_slot += 1
        return self.next_slot - 1

    def add(self, outcome: Outcome) -> None:
        self.fill(self.reserve(), outcome)

    def fill(self, slot: int, outcome: Outcome) -> None:
        self.ready[slot] = outcome
        while self.next_done in self.ready:
            self._place(self.ready.pop(self.next_done))
            self.next_done += 1

    def _place(self, o: Outcome) -> None:
        if (o.parts or o.status == "parsed") and o.sha256 in self.known:
            _discard(o.parts)
            o.parts, o.status = [], "skipped"
            o.reason, o.events, o.issues = f"duplicate of {self.known[o.sha256]} (same sha256)", 0, 0
        for kind, temp, n in o.parts:
            dataset.place(Path(temp), dataset.part_path(self.root, kind, o.format, o.host, o.sha256, n))
        if o.parts or o.status == "parsed":
            self.known[o.sha256] = o.path
        s = self.summary
        s.seen += 1
        setattr(s, o.status, getattr(s, o.status) + 1)
        s.events += o.events
        s.issues += o.issues
        s.bytes += o.size or 0
        s.long_lines += o.long_lines
        if not o.accounted:
            s.unaccounted.append(o.path)
        if o.reason and o.reason.startswith("duplicate of"):
            s.duplicates += 1
        if o.status != "parsed":
            s.outcomes.append(o)
        if self.existing.get((o.path, o.sha256)) != o.status:
            self.writer.record(o.row())
            self.existing[(o.path, o.sha256)] = o.status
        if self.progress:
            self.progress(o)


# ----------------------------------------------------------------------------------------------------
# The worker: one file, read as a stream, parsed in batches.

_KNOWN: dict[str, str] = {}


def _init_worker(known: dict[str, str]) -> None:
    # Ctrl-C reaches the whole process group, SIGTERM may too: the parent decides how to stop, and
    # a worker always finishes the file it has (its parts are temporary until the parent places them).
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _KNOWN.clear()
    _KNOWN.update(known)


def run_job(job: _Job) -> Outcome:
    """Parse one file (on disk, or bytes handed over by the parent) into temporary parts."""
    try:
        return _run_job(job)
    except dataset.DatasetError:
        raise  # the dataset cannot be written (disk full): stop the run, not this file only
    except Exception as error:  # noqa: BLE001 - one bad file never stops the batch; the reason is recorded
        return Outcome(job.path, "rejected", f"internal error: {type(error).__name__}: {_describe(error)}",
                       *_host(job.options, job.layout, None))  # fmt: skip


def _run_job(job: _Job) -> Outcome:
    if job.disk_path is None:
        return parse_stream(io.BytesIO(job.data), job.path, Path(job.root), job.options, job.layout,
                            sha256=job.sha256, read_error=job.read_error)  # fmt: skip
    path = Path(job.disk_path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if size <= job.options.small_bytes:
                data = handle.read()
                sha = hashlib.sha256(data).hexdigest()
                stream: BinaryIO = io.BytesIO(data)
            else:
                sha = _file_sha(handle)
        if sha in _KNOWN:
            return _duplicate(job.path, sha, _KNOWN[sha], size, job.options, job.layout)
        if size > job.options.small_bytes:
            stream = open(path, "rb")
    except OSError as error:
        return Outcome(job.path, "rejected", _describe(error), *_host(job.options, job.layout, None))
    with stream:
        return parse_stream(stream, job.path, Path(job.root), job.options, job.layout, sha256=sha)


def parse_stream(
    stream: BinaryIO,
    path: str,
    root: Path,
    options: Options,
    layout: tuple[str | None, str | None],
    *,
    sha256: str | None,
    read_error: str | None = None,
) -> Outcome:
    """Decode, sniff and parse one file from ``stream``; its sha256 is computed while reading when
    not given. Never raises on content: a problem becomes the outcome's status and reason."""
    reader = _Reader(stream, hashing=sha256 is None)
    head = read_fully(reader, HEAD_BYTES)
    outcome = Outcome(path, "parsed")
    try:
        check_text(head)
    except NotText as error:
        return _finish_unparsed(outcome, reader, sha256, read_error, "skipped", f"not a log: {error}", options, layout)
    blocks, stats = iter_arrow(_prefixed(head, reader), max_line=options.max_line)
    first, blocks = head_lines(blocks, CONTENT_HEAD_LINES)
    parser = _parser(options.format, first, path)
    if parser is None:
        reason = "not a known log format (try --format; `umlogs formats` lists them)"
        return _finish_unparsed(outcome, reader, sha256, read_error, "skipped", reason, options, layout)
    outcome.host, outcome.host_source, outcome.host_evidence = _host(options, layout, first)
    outcome.format = parser.NAME
    parts = _Parts(root, parser.NAME, outcome.host, options.part_events)
    covered = 0
    try:
        # One DuckDB thread: ingest parallelizes across files. ``first`` holds CONTENT_HEAD_LINES
        # (more than FAST_MIN_LINES) lines, or the whole file.
        batches = parse_blocks(blocks, parser, path, host=outcome.host, utc_offset=options.utc_offset,
                               fast=len(first) >= FAST_MIN_LINES, batch=options.batch_events)  # fmt: skip
        for table, issues in batches:
            parts.write(table, issues)
            covered += pc.sum(table["line_count"]).as_py() or 0
            covered += sum(i.line_count for i in issues)
        parts.flush()
        for _ in blocks:  # a parser that stopped early: the rest still counts as read
            pass
        _drain(reader)
    except BaseException as error:
        _discard(parts.parts)
        if not isinstance(error, Exception):
            raise
        if no_space(error):
            raise dataset.DatasetError(f"{root}: no space left on device while writing {path}'s events; free space "
                                       "and run the same command again (what was recorded is kept)") from None  # fmt: skip
        outcome.status, outcome.reason = "rejected", f"internal error: {type(error).__name__}: {_describe(error)}"
        outcome.sha256, outcome.size = sha256, reader.count
        return outcome
    outcome.events, outcome.issues, outcome.parts = parts.events, parts.issues, parts.parts
    outcome.encoding, outcome.replaced, outcome.lines = stats.encoding, stats.replaced, stats.lines
    outcome.blank, outcome.long_lines, outcome.size = stats.blank, stats.long_lines, reader.count
    outcome.accounted = covered + stats.blank == stats.lines
    outcome.sha256 = sha256 or reader.hexdigest()
    error = reader.error or read_error
    if isinstance(reader.error, ExpansionError):
        _discard(outcome.parts)
        outcome.parts, outcome.events, outcome.issues = [], 0, 0
        outcome.status, outcome.reason = "rejected", f"decompression bomb or oversized bundle: {reader.error}"
    elif error:
        outcome.status = "rejected"
        outcome.reason = f"truncated or corrupt: {_describe(error)}; the {outcome.events} events read before it are kept"
    return outcome


class _Parts:
    """Writes a file's batches as numbered temporary parts of ``size`` events each (the last may hold
    fewer), and its parse issues likewise when there are any."""

    def __init__(self, root: Path, format: str, host: str | None, size: int) -> None:
        self.root, self.format, self.host, self.size = root, format, host, size
        self.token = uuid.uuid4().hex[:12]
        self.parts: list[tuple[str, str, int]] = []
        self.events = self.issues = 0
        self._n = {"events": 0, "issues": 0}
        self._held: dict[str, list[pa.Table]] = {"events": [], "issues": []}

    def write(self, table: pa.Table, issues: list[ParseIssue]) -> None:
        """Add a batch: every whole part it completes is written."""
        self.events += table.num_rows
        self.issues += len(issues)
        self._hold("events", table)
        if issues:
            self._hold("issues", issues_table(issues))

    def flush(self) -> None:
        """Write the rest (at the end of the file)."""
        for kind, held in self._held.items():
            if sum(t.num_rows for t in held):
                self._write(kind, pa.concat_tables(held))
            held.clear()

    def _hold(self, kind: str, table: pa.Table) -> None:
        """Hold ``table`` with the rows of ``kind`` not written yet, and write the whole parts they make."""
        held = self._held[kind]
        held.append(table)
        rows = sum(t.num_rows for t in held)
        if rows >= self.size:
            whole = pa.concat_tables(held)
            cut = rows - rows % self.size
            for start in range(0, cut, self.size):
                self._write(kind, whole.slice(start, self.size))
            held[:] = [whole.slice(cut)]

    def _write(self, kind: str, table: pa.Table) -> None:
        n = self._n[kind]
        self._n[kind] += 1
        temp = dataset.temp_part(self.root, kind, self.format, self.host, self.token, n)
        write_parquet(table, temp)
        self.parts.append((kind, str(temp), n))


class _Reader(io.RawIOBase):
    """Reads a stream, counting and (optionally) hashing; a read error ends the stream and is kept."""

    def __init__(self, inner: BinaryIO, *, hashing: bool) -> None:
        self.inner, self.count, self.error = inner, 0, None
        self.sha = hashlib.sha256() if hashing else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.error is not None:
            return 0
        try:
            data = self.inner.read(len(buffer))
        except (ExpansionError, *_READ_ERRORS) as error:
            self.error = error
            return 0
        buffer[: len(data)] = data
        self.count += len(data)
        if self.sha:
            self.sha.update(data)
        return len(data)

    def hexdigest(self) -> str:
        return self.sha.hexdigest()


def _prefixed(head: bytes, rest: BinaryIO) -> Peeked:
    stream = Peeked(rest)
    stream.buffer = head
    return stream


def _drain(reader: _Reader) -> None:
    while reader.read(MiB):
        pass


def _finish_unparsed(outcome: Outcome, reader: _Reader, sha256, read_error, status, reason, options, layout) -> Outcome:
    _drain(reader)
    outcome.host, outcome.host_source, outcome.host_evidence = _host(options, layout, None)
    outcome.status, outcome.reason = status, reason
    outcome.sha256, outcome.size = sha256 or reader.hexdigest(), reader.count
    if isinstance(reader.error, ExpansionError):
        outcome.status, outcome.reason = "rejected", f"decompression bomb or oversized bundle: {reader.error}"
    elif reader.error or read_error:
        outcome.status, outcome.reason = "rejected", f"truncated or corrupt: {_describe(reader.error) or read_error}"
    return outcome


def _duplicate(path: str, sha: str, first: str, size: int, options: Options, layout) -> Outcome:
    o = Outcome(path, "skipped", f"duplicate of {first} (same sha256)", *_host(options, layout, None))
    o.sha256, o.size = sha, size
    return o


def _parser(forced: str | None, head: list[str], path: str):
    if forced:
        return parsers.by_name(forced)
    found = parsers.detect(head)
    if found is None:
        name = _NAMED.get(rotated_base(path.rsplit("/", 1)[-1]).lower())
        found = parsers.by_name(name) if name and any(line.strip() for line in head) else None
    return found


def _host(options: Options, layout: tuple[str | None, str | None], head: list[str] | None) -> tuple:
    """``(host, host_source, host_evidence)``: ``--host``, else the layout, else the content."""
    if options.host:
        return options.host, "option", "--host"
    named = content_host(head) if head else (None, None)
    if layout[0]:
        evidence = layout[1]
        if named[0] and named[0] != layout[0]:
            evidence += f"; the log names {named[0]} ({named[1]})"
        return layout[0], "layout", evidence
    if named[0]:
        return named[0], "content", named[1]
    return None, "none", None


def content_host(head: list[str]) -> tuple[str | None, str | None]:
    """The machine a log names in its first lines, and the line that says so."""
    from umlogs.pipeline.discover import valid_host

    for number, line in enumerate(head[:CONTENT_HEAD_LINES], start=1):
        match = _CONTENT_HOST.search(line)
        host = valid_host(match.group(1)) if match else None
        if host:
            return host, f"line {number}: {match.group(0).strip()}"[:200]
    return None, None


def _file_sha(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(4 * MiB):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def no_space(error: BaseException) -> bool:
    """True for a full disk (pyarrow reports it as an OSError whose text holds the errno).

    >>> no_space(OSError(28, "No space left on device")), no_space(OSError("Detail: [errno 28] No space left"))
    (True, True)
    """
    return isinstance(error, OSError) and (error.errno == errno.ENOSPC or "[errno 28]" in str(error))


def _discard(parts: list[tuple[str, str, int]]) -> None:
    for _, temp, _ in parts:
        Path(temp).unlink(missing_ok=True)


def _describe(error: BaseException | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return (str(error) or type(error).__name__).splitlines()[0][:200]
