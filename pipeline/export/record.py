"""What every encoder reads: a :class:`Record`, built from one event row or one finding.

A record carries the stable id, the UTC time and where its offset came from, and the plain values
(the event's :data:`~umlogs.pipeline.store.EVENT_SCHEMA` columns, or a finding's fields). Encoders
are pure functions of a record, so the same input always gives the same output.

Times: Windows logs write local time without a zone. The offset comes from the log when it says
(``utc_offset``, e.g. the classic banner's ``tz: +0200``), else from ``--tz``, else the local time is
taken as UTC and the record says so (``time_source == "assumed_utc"``). An entry without any time
gets the export time (``time_source == "export"``).

>>> from datetime import datetime, timezone
>>> row = {"event_id": "ab", "timestamp": datetime(2024, 5, 1, 12, 0), "utc_offset": 120}
>>> r = event_record(row, tz_offset=None, now=datetime(2025, 1, 1, tzinfo=timezone.utc))
>>> r.time.isoformat(), r.time_source, r.offset
('2024-05-01T10:00:00+00:00', 'log', 120)
>>> event_record({**row, "utc_offset": None}, tz_offset=-300, now=r.time).time.isoformat()
'2024-05-01T17:00:00+00:00'
>>> event_record({**row, "utc_offset": None}, tz_offset=None, now=r.time).time_source
'assumed_utc'
>>> finding_id("UM1001", "0x8024402C", ["b.log", "a.log"]) == finding_id("UM1001", "0x8024402C", ["a.log", "b.log"])
True
>>> finding_id("UM1008", "0x8024402C", ["a.log"], "error") == finding_id("UM1008", "0x8024402C", ["a.log"], "warning")
False
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib.metadata import version as _version

TIME_SOURCES = ("log", "option", "assumed_utc", "export")
PRODUCT = "umlogs"
VENDOR = "umlogs"


def product_version() -> str:
    """The installed umlogs version, as every encoder reports it."""
    return _version("umlogs")


@dataclass(frozen=True, slots=True)
class Record:
    """One event or one finding, ready for any encoder."""

    kind: str
    """``event`` (a parsed log entry) or ``finding`` (a rule match)."""
    id: str
    """Stable id: the event's ``event_id``, or :func:`finding_id` for a finding."""
    time: datetime
    """UTC, timezone-aware."""
    time_source: str
    """Where the UTC offset came from: one of :data:`TIME_SOURCES`."""
    offset: int | None
    """Minutes east of UTC applied to the local time (``None`` when ``time_source == "export"``)."""
    data: Mapping = field(default_factory=dict)
    """Event columns (EVENT_SCHEMA names) or finding fields (``Finding.to_dict()`` names)."""
    hresult_name: str | None = None
    """Symbolic name of ``data["hresult"]`` (``WU_E_PT_WINHTTP_NAME_NOT_RESOLVED``), when known."""
    version: str = "0"
    """umlogs version that produced the record."""

    @property
    def host(self) -> str | None:
        """The machine the record is about (an event's host, or a finding's only host)."""
        if self.kind == "event":
            return self.data.get("host")
        hosts = self.data.get("hosts") or ()
        return hosts[0] if len(hosts) == 1 else None

    @property
    def source(self) -> str | None:
        """The log file (a finding's first source)."""
        if self.kind == "event":
            return self.data.get("source")
        sources = self.data.get("sources") or ()
        return sources[0] if sources else None


def finding_id(rule_id: str, hresult: str | None, sources: Iterable[str], severity: str | None = None) -> str:
    """Stable id of a finding: a hash of the rule id, the HRESULT, the sorted source files and the
    severity (a rule that grades its own matches yields one finding per severity)."""
    key = "\x1f".join([rule_id, hresult or "", *sorted(sources)] + ([f"severity={severity}"] if severity else []))
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def resolve_time(local: datetime | None, log_offset: int | None, tz_offset: int | None, now: datetime):
    """``(utc_time, time_source, offset)`` for a naive local time, by the rule in the module docstring."""
    if local is None:
        return now.astimezone(timezone.utc), "export", None
    if log_offset is not None:
        offset, source = log_offset, "log"
    elif tz_offset is not None:
        offset, source = tz_offset, "option"
    else:
        offset, source = 0, "assumed_utc"
    if local.tzinfo is not None:
        local = local.astimezone(timezone.utc).replace(tzinfo=None)
    return _shift(local, offset), source, offset


def _shift(local: datetime, offset: int) -> datetime:
    """``local`` minus ``offset`` minutes, as UTC; clamped to years 1-9999 (a log saying ``0001-01-01``
    with a positive offset would otherwise raise OverflowError).

    >>> _shift(datetime(1, 1, 1), 60).isoformat(), _shift(datetime(9999, 12, 31, 23, 30), -60).year
    ('0001-01-01T00:00:00+00:00', 9999)
    """
    try:
        return (local - timedelta(minutes=offset)).replace(tzinfo=timezone.utc)
    except OverflowError:
        return (datetime.min if offset > 0 else datetime.max).replace(tzinfo=timezone.utc)


def event_record(row: Mapping, *, tz_offset: int | None, now: datetime, version: str = "0") -> Record:
    """A record for one event row (a dict with :data:`EVENT_SCHEMA` column names)."""
    time, source, offset = resolve_time(row.get("timestamp"), row.get("utc_offset"), tz_offset, now)
    return Record("event", row["event_id"], time, source, offset, row, _hresult_name(row.get("hresult")), version)


def finding_record(
    finding: Mapping, *, source_offsets: Mapping[str, set], tz_offset: int | None, now: datetime, version: str = "0"
) -> Record:
    """A record for one finding (``Finding.to_dict()`` with datetimes kept). The log's own offset is
    used when every source of the finding states the same single one (``source_offsets``)."""
    offsets = set().union(*(source_offsets.get(s, {None}) for s in finding["sources"])) if finding["sources"] else {None}
    log_offset = next(iter(offsets)) if len(offsets) == 1 else None
    last = finding.get("last_seen") or finding.get("first_seen")
    time, source, offset = resolve_time(last, log_offset, tz_offset, now)
    fid = finding_id(finding["rule_id"], finding.get("hresult"), finding["sources"], finding.get("severity"))
    return Record("finding", fid, time, source, offset, finding, finding.get("hresult_name"), version)


def utc_of(local: datetime | None, record: Record) -> datetime | None:
    """Another local time of the same record (a finding's ``first_seen``) in UTC, with the record's offset."""
    if local is None or record.offset is None:
        return None
    return _shift(local, record.offset)


def epoch_ms(time: datetime) -> int:
    """Milliseconds since 1970 (OCSF ``time``, CEF ``rt``).

    >>> epoch_ms(datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=timezone.utc))
    1500
    """
    delta = time - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def iso_utc(time: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``.

    >>> iso_utc(datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc))
    '2024-05-01T10:00:00.000000Z'
    """
    return time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=4096)
def _hresult_name(code: str | None) -> str | None:
    if not code:
        return None
    from umlogs.pipeline.hresult import HResultError, explain

    try:
        return explain(code)["name"] or None
    except HResultError:
        return None
