"""Fuzz targets: one ``check_<name>(data: bytes)`` per parser, the archive reader and each export
encoder. Each target raises only when umlogs breaks a promise:

* an exception escapes a parser, a stage or an encoder (bad input is data, never an exception);
* the line invariant fails (lines read == event lines + issue lines + blank lines);
* an encoder's serialized record is not one line, or a JSON one does not read back.

The targets are plain functions so that ``tests/robustness`` can replay the inputs the fuzzers found
without atheris; :mod:`fuzz.run` drives them with atheris for a given number of minutes.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

from umlogs import parsers
from umlogs.parsers.event import Event, ParseIssue
from umlogs.pipeline import decode, discover, ingest, parse
from umlogs.pipeline.export import FORMATS, encoder, serialize
from umlogs.pipeline.export.record import event_record, finding_record

PARSERS = ("windows_update", "update_worker", "portal_exception")
"""Fuzzed parsers, by format name."""

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
ARCHIVE_LIMITS = discover.Limits(max_total_bytes=8 << 20, ratio_floor=1 << 16, max_members=200,
                                 max_nested_zip_in_memory=4 << 20)  # fmt: skip
"""Small bounds, so one fuzz input cannot take seconds: the logic checked is the same."""
_READ_ERRORS = (discover.ExpansionError, *ingest._READ_ERRORS)
"""What a member stream may raise while it is read: ingest's reader records these as the file's reason."""


class Broken(AssertionError):
    """A promise umlogs made and did not keep (the invariant, one line per record, ...)."""


def lines_of(data: bytes, *, chunk_bytes: int = decode.CHUNK_BYTES, max_line: int = decode.MAX_LINE_CHARS):
    """``(lines, stats)``: ``data`` decoded as the parse stage decodes a file."""
    blocks, stats = decode.iter_blocks(io.BytesIO(data), chunk_bytes=chunk_bytes, max_line=max_line)
    lines = [line for block in blocks for line in block]
    return lines, stats


def check_accounting(lines: list[str], items, what: str) -> None:
    """The invariant as ``FileResult.accounted`` states it: the records' ``line_count`` plus the blank
    lines equal the lines read. Records also start on a line that exists, in order, and own at least
    one line, except a later JSON value on a line an earlier value already owns (``[1 2]``), which owns
    none. (A record's lines need not follow its ``line_no``: a JSON report's first
    object owns the ``[`` line before it, and a count never includes blank lines.)"""
    covered, previous = 0, 0
    for item in items:
        if not isinstance(item, (Event, ParseIssue)):
            raise Broken(f"{what}: yielded {type(item).__name__}")
        shares_a_line = item.line_no == previous  # a later JSON value on a line an earlier one owns: 0 lines
        if item.line_count < (0 if shares_a_line else 1) or not previous <= item.line_no <= len(lines):
            raise Broken(f"{what}: record at line {item.line_no} (+{item.line_count}) after line {previous} "
                         f"of {len(lines)}")  # fmt: skip
        covered, previous = covered + item.line_count, item.line_no
    blank = sum(1 for line in lines if not line.strip())
    if covered + blank != len(lines):
        raise Broken(f"{what}: {covered} record lines + {blank} blank != {len(lines)} lines")


def _named(check, name: str, doc: str):
    """``check`` named ``check_<name>``, as :data:`TARGETS` and the fuzz runs list it, with ``doc``."""
    check.__name__, check.__doc__ = f"check_{name}", doc
    return check


def _parser_target(name: str):
    module = parsers.by_name(name)

    def check(data: bytes) -> None:
        # The first byte picks a small chunk size and line limit, so decoding's edges are fuzzed too.
        knob = data[0] if data else 0
        chunk = 1 + (knob & 0x0F) * 3 if knob & 0x80 else decode.CHUNK_BYTES
        max_line = 40 + (knob & 0x30) * 8 if knob & 0x40 else decode.MAX_LINE_CHARS
        lines, stats = lines_of(data[1:], chunk_bytes=chunk, max_line=max_line)
        if stats.lines != len(lines) or stats.blank != sum(1 for line in lines if not line.strip()):
            raise Broken(f"decode: stats say {stats.lines} lines/{stats.blank} blank, got {len(lines)}")
        if any(len(line) > max_line for line in lines):
            raise Broken("decode: a line longer than max_line")
        module.sniff(lines[: parsers.HEAD_LINES])
        check_accounting(lines, list(module.parse(lines, "fuzz.log")), f"{name}.parse")
        for fast in (True, False):
            covered = 0
            batch = 64 if knob & 1 else 50_000  # several fast-path chunks, or one
            blocks = [pa.array(lines, pa.string())]
            for table, issues in parse.parse_blocks(blocks, module, "fuzz.log", fast=fast, batch=batch):
                covered += sum(table.column("line_count").to_pylist()) + sum(i.line_count for i in issues)
            if covered + stats.blank != len(lines):
                raise Broken(f"parse_blocks(fast={fast}): {covered} + {stats.blank} blank != {len(lines)} lines")
        result = parse.parse_bytes(data[1:], parse.FileResult(source="fuzz.log"), format=name if knob & 2 else None)
        if not result.accounted:
            raise Broken(f"parse_bytes: not accounted {result}")

    return _named(check, name, f"{name}: sniff, parse (Lark), parse_blocks (fast and Lark) and parse_bytes on ``data``.")


check_windows_update = _parser_target("windows_update")
check_update_worker = _parser_target("update_worker")
check_portal_exception = _parser_target("portal_exception")


def check_archive(data: bytes) -> None:
    """``data`` as a file handed to ``discover``: every member found is read to its end; nothing but
    a member's recorded read error may be raised."""
    folder = Path(tempfile.mkdtemp(prefix="umlogs-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        path = folder / "bundle.bin"
        path.write_bytes(data)
        for count, member in enumerate(discover.discover([path], ARCHIVE_LIMITS)):
            if count > 2 * ARCHIVE_LIMITS.max_members + 10:
                raise Broken("discover: more members than the limit allows")
            if member.status not in (None, "skipped", "rejected"):
                raise Broken(f"discover: status {member.status!r}")
            if member.status and not member.reason:
                raise Broken(f"discover: {member.status} without a reason")
            if "\n" in member.path or "/../" in member.path or member.path.startswith("/"):
                raise Broken(f"discover: unsafe member name {member.path!r}")
            if member.stream is not None:
                try:
                    discover.read_fully(member.stream, ARCHIVE_LIMITS.max_total_bytes + 1)
                except _READ_ERRORS:
                    pass
    finally:
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


def _text(fdp, limit: int) -> str:
    """Fuzzed text as a record can hold it: Arrow strings are UTF-8, so no lone surrogates."""
    return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, limit)).encode("utf-8", "replace").decode("utf-8")


def _time(fdp) -> datetime | None:
    if fdp.ConsumeBool():
        return None
    day = fdp.ConsumeIntInRange(1, datetime.max.toordinal())
    return datetime.fromordinal(day) + timedelta(seconds=fdp.ConsumeIntInRange(0, 86_399),
                                                 microseconds=fdp.ConsumeIntInRange(0, 999_999))  # fmt: skip


def _offset(fdp) -> int | None:
    """``None``, or minutes east of UTC as a log (``tz: +9959``) or ``--tz`` can state them."""
    return None if fdp.ConsumeBool() else fdp.ConsumeIntInRange(-(99 * 60 + 99), 99 * 60 + 99)


def records_of(data: bytes):
    """Records built from ``data``: events a parser made of it, or a synthetic event or finding whose
    every field comes from the fuzzer (times anywhere in years 1-9999, offsets up to ±99:99)."""
    if not data:
        return []
    mode, rest = data[0] % 4, data[1:]
    if mode < 2:
        name = PARSERS[data[0] // 4 % 3]
        result = parse.parse_bytes(rest, parse.FileResult(source="fuzz.log"), format=name,
                                   utc_offset=None if mode else 120)  # fmt: skip
        tz = -300 if data[0] & 0x80 else None
        return [event_record(row, tz_offset=tz, now=NOW) for row in result.table().to_pylist()]
    import atheris  # only the synthetic records need the data provider (the tests replay parsed ones without it)

    fdp = atheris.FuzzedDataProvider(rest)
    if mode == 2:
        text = _text(fdp, 200)
        row = {
            "event_id": _text(fdp, 32), "format": fdp.PickValueInList(list(PARSERS) + [text]),
            "source": _text(fdp, 100), "host": None if fdp.ConsumeBool() else _text(fdp, 60),
            "line_no": fdp.ConsumeIntInRange(0, 1 << 40), "line_count": fdp.ConsumeIntInRange(0, 1 << 20),
            "level": fdp.PickValueInList(["debug", "info", "warning", "error", "fatal", text]),
            "message": text, "raw": _text(fdp, 200), "component": _text(fdp, 30) or None,
            "timestamp": _time(fdp), "timestamp_text": _text(fdp, 30) or None, "utc_offset": _offset(fdp),
            "pid": fdp.ConsumeIntInRange(-(1 << 31), 1 << 31), "tid": fdp.ConsumeIntInRange(-(1 << 31), 1 << 31),
            "hresult": fdp.PickValueInList([None, "0x80240022", "0x8024402C", _text(fdp, 12)]),
            "hresults": [_text(fdp, 12) for _ in range(fdp.ConsumeIntInRange(0, 3))],
            "kbs": [_text(fdp, 10) for _ in range(fdp.ConsumeIntInRange(0, 2))],
            "exception_chain": [{"type": _text(fdp, 40), "message": _text(fdp, 80)}
                                for _ in range(fdp.ConsumeIntInRange(0, 3))],  # fmt: skip
            "attrs": [(_text(fdp, 20), _text(fdp, 40)) for _ in range(fdp.ConsumeIntInRange(0, 3))],
            "urls": [_text(fdp, 40)], "update_ids": [], "guids": [], "success_codes": [],
            "caller_id": _text(fdp, 20) or None, "operation": _text(fdp, 20) or None,
            "operation_phase": _text(fdp, 10) or None, "exit_code": _text(fdp, 10) or None,
        }
        return [event_record(row, tz_offset=_offset(fdp), now=NOW)]
    text = _text(fdp, 200)
    sources = [_text(fdp, 60) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    finding = {
        "rule_id": _text(fdp, 10), "title": text, "scenario": _text(fdp, 30),
        "severity": fdp.PickValueInList(["info", "warning", "error", "critical", text]),
        "hresult": fdp.PickValueInList([None, "0x80240022", _text(fdp, 12)]), "hresult_name": _text(fdp, 30) or None,
        "count": fdp.ConsumeIntInRange(0, 1 << 40), "first_seen": _time(fdp), "last_seen": _time(fdp),
        "hosts": [_text(fdp, 40) for _ in range(fdp.ConsumeIntInRange(0, 3))], "sources": sources,
        "cause": _text(fdp, 100), "resolution": _text(fdp, 100), "reference": _text(fdp, 60), "detail": text or None,
        "evidence": [{"source": _text(fdp, 40), "line_no": fdp.ConsumeIntInRange(0, 1 << 31), "text": _text(fdp, 80),
                      "host": _text(fdp, 20) or None} for _ in range(fdp.ConsumeIntInRange(0, 3))],  # fmt: skip
    }
    offsets = {s: {_offset(fdp)} for s in sources}
    return [finding_record(finding, source_offsets=offsets, tz_offset=_offset(fdp), now=NOW)]


def _encoder_target(name: str):
    encode = encoder(name)

    def check(data: bytes) -> None:
        for record in records_of(data):
            line = serialize(encode(record))
            if not isinstance(line, str):
                raise Broken(f"{name}: serialize gave {type(line).__name__}")
            if "\n" in line or "\r" in line:
                raise Broken(f"{name}: a record spans lines: {line[:200]!r}")
            if name in ("ecs", "ocsf", "hec"):
                json.loads(line)
            line.encode("utf-8")  # what every transport does: a lone surrogate would raise here

    return _named(check, name, f"The {name} encoder on records built from ``data``: one line, valid UTF-8 (and JSON).")


check_ecs = _encoder_target("ecs")
check_ocsf = _encoder_target("ocsf")
check_cef = _encoder_target("cef")
check_syslog = _encoder_target("syslog")
check_hec = _encoder_target("hec")

TARGETS = {name: globals()[f"check_{name}"] for name in (*PARSERS, "archive", *FORMATS)}
"""Every target by name, in the order ``run.py`` runs them."""

