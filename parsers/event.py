"""The typed records every parser yields: :class:`Event` for a log entry, :class:`ParseIssue` for
input no grammar accepts.

Both are plain frozen dataclasses; ``umlogs.pipeline.store`` turns them into Arrow columns with one
explicit schema (documented field by field in docs/events.md).

>>> e = Event(format="windows_update", source="a.log", line_no=3, raw="x", message="x")
>>> e.level, e.line_count
('info', 1)
>>> ParseIssue(source="a.log", line_no=7, reason="no grammar accepts this line", text="garbage").line_count
1
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

LEVELS = ("debug", "info", "warning", "error", "fatal")


@dataclass(frozen=True, slots=True)
class Event:
    """One log entry. Fields a format does not have stay ``None`` or empty."""

    format: str
    source: str
    line_no: int
    raw: str
    message: str
    line_count: int = 1
    host: str | None = None
    timestamp: datetime | None = None
    """Local wall-clock time as written in the log (naive)."""
    timestamp_text: str | None = None
    utc_offset: int | None = None
    """Minutes east of UTC, when the log reveals it (the classic banner's ``tz: +0200``)."""
    pid: int | None = None
    tid: int | None = None
    component: str | None = None
    level: str = "info"
    hresult: str | None = None
    """The first failure HRESULT the entry carries, ``0x`` + 8 upper-case hex digits."""
    hresults: tuple[str, ...] = ()
    """Every failure HRESULT, in order of appearance, without repeats."""
    success_codes: tuple[str, ...] = ()
    kbs: tuple[str, ...] = ()
    update_ids: tuple[str, ...] = ()
    guids: tuple[str, ...] = ()
    caller_id: str | None = None
    urls: tuple[str, ...] = ()
    operation: str | None = None
    """``finding``, ``downloading``, ``installing``, … for operation banners."""
    operation_phase: str | None = None
    """``start`` or ``end`` for operation banners."""
    exit_code: str | None = None
    exception_chain: tuple[tuple[str, str], ...] = ()
    """``(type, message)`` pairs of an exception chain, outermost first."""
    attrs: tuple[tuple[str, str], ...] = field(default=())
    """Format-specific named fields, e.g. the columns of a classic ``REPORT EVENT`` record."""

    @property
    def event_id(self) -> str:
        """Stable identity: the same line of the same source always gives the same id (the MD5 of
        format, host, source, line number and raw text, joined by U+001F; DuckDB computes the same).

        >>> a = Event(format="f", source="s", line_no=1, raw="r", message="r")
        >>> a.event_id == Event(format="f", source="s", line_no=1, raw="r", message="other").event_id
        True
        >>> a.event_id == Event(format="f", source="s", line_no=2, raw="r", message="r").event_id
        False
        """
        key = "\x1f".join((self.format, self.host or "", self.source, str(self.line_no), self.raw))
        return hashlib.md5(key.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()

    @property
    def timestamp_utc(self) -> datetime | None:
        """UTC time, when both the local time and the offset are known."""
        if self.timestamp is None or self.utc_offset is None:
            return None
        try:
            return (self.timestamp - timedelta(minutes=self.utc_offset)).replace(tzinfo=timezone.utc)
        except OverflowError:  # before year 1 or after 9999
            return None


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """Input that no grammar accepted: where it is, why, and its first characters."""

    source: str
    line_no: int
    reason: str
    text: str
    line_count: int = 1
    format: str | None = None
    host: str | None = None

    TEXT_LIMIT = 120


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(value):
    """``value`` (a decoded JSON value) with every lone surrogate replaced by U+FFFD.

    Decoded bytes never hold one, but a JSON escape can (``"\\ud800"``), and event text must be valid
    Unicode: Arrow strings are UTF-8, and writing a lone surrogate raises.

    >>> without_surrogates({"a": ["x\\ud800y", 1], "\\udc00": None}) == {"a": ["x\\ufffdy", 1], "\\ufffd": None}
    True
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    return value
