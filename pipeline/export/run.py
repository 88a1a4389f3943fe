"""``umlogs export`` as a library call: check the request, read the sources, classify, encode every
record, and write the lines to a stream or a file, or deliver them with :mod:`.send`.

>>> import io
>>> out = io.StringIO()
>>> run = export([], Request(format="cef"), stream=out)
>>> run.written, out.getvalue()
(0, '')
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from umlogs.pipeline.export import FORMATS, ExportError, encoder, serialize
from umlogs.pipeline.export.record import Record
from umlogs.pipeline.export.send import TOKEN_ENV, Delivery, Sender, parse_target

WHAT = ("events", "findings", "all")
# Which formats each kind of --to target carries.
TARGET_FORMATS = {"syslog": ("syslog", "cef"), "http": ("hec",)}


@dataclass(frozen=True, slots=True)
class Request:
    """Everything ``umlogs export`` and ``umlogs tail`` were asked for, checked by :meth:`check`."""

    format: str
    what: str = "all"
    to: str | None = None
    ca_file: str | None = None
    tz_offset: int | None = None
    host: str | None = None
    input_format: str | None = None
    rule_dirs: tuple[Path, ...] = ()
    batch_size: int = 500
    retries: int = 5
    backoff: float = 0.5
    index: str | None = None

    def check(self) -> None:
        """Raise :class:`ExportError` for a request that cannot work, before any log is read."""
        encoder(self.format)
        if self.what not in WHAT:
            raise ExportError(f"--what {self.what!r}: choose from {', '.join(WHAT)}")
        if self.to:
            target = parse_target(self.to)
            kind = "syslog" if target.scheme.startswith("syslog") else "http"
            if self.format not in TARGET_FORMATS[kind]:
                raise ExportError(f"--to {target.scheme}:// carries --format {' or '.join(TARGET_FORMATS[kind])}, "
                                  f"not {self.format}")
            if kind == "http" and not os.environ.get(TOKEN_ENV):
                raise ExportError(f"Splunk HEC needs its token in the environment variable {TOKEN_ENV}")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise ExportError(f"--ca-file {self.ca_file}: no such file")
        if self.batch_size < 1 or self.retries < 0 or self.backoff < 0:
            raise ExportError("--batch-size must be at least 1, --retries and --backoff not negative")

    def encode_function(self) -> Callable[[Record], str | dict]:
        encode = encoder(self.format)
        return functools.partial(encode, index=self.index) if self.format == "hec" else encode

    def sender(self, *, give_up: bool = True) -> Sender:
        return Sender(parse_target(self.to), token=os.environ.get(TOKEN_ENV), ca_file=self.ca_file,
                      batch_size=self.batch_size, retries=self.retries, backoff=self.backoff, give_up=give_up)


@dataclass(slots=True)
class ExportRun:
    """What an export did: records by kind, lines written, unreadable sources, delivery counts."""

    events: int = 0
    findings: int = 0
    written: int = 0
    errors: list[str] = field(default_factory=list)
    delivery: Delivery | None = None


def export(paths: Sequence[Path], request: Request, *, out: Path | None = None, stream: TextIO | None = None) -> ExportRun:
    """Export ``paths`` as ``request`` says: to ``request.to``, else to ``out``, else to ``stream``."""
    from umlogs.pipeline.export import source

    request.check()
    loaded = source.load(paths, format=request.input_format, host=request.host)
    findings = source.classify(loaded.table, request.rule_dirs) if request.what in ("findings", "all") else []
    run = ExportRun(errors=list(loaded.errors))
    records = source.records(loaded, what=request.what, findings=findings, tz_offset=request.tz_offset)
    if request.to:
        sender = request.sender()
        deliver(records, request.encode_function(), sender, run)
        run.delivery = sender.close()
    elif out is not None:
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("w", encoding="utf-8", newline="\n") as handle:
                write(records, request.encode_function(), handle, run)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        write(records, request.encode_function(), stream or sys.stdout, run)
    return run


def write(records: Iterable[Record], encode: Callable, handle: TextIO, run: ExportRun) -> None:
    """One line per record."""
    for record in records:
        handle.write(serialize(encode(record)) + "\n")
        _count(record, run)


def deliver(records: Iterable[Record], encode: Callable, sender: Sender, run: ExportRun) -> None:
    """Hand every record to ``sender`` (which batches and retries)."""
    for record in records:
        sender.add(record.id, serialize(encode(record)))
        _count(record, run)


def _count(record: Record, run: ExportRun) -> None:
    run.written += 1
    if record.kind == "event":
        run.events += 1
    else:
        run.findings += 1


__all__ = ["ExportError", "ExportRun", "FORMATS", "Request", "export"]
