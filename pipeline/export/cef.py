"""ArcSight Common Event Format: ``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|extension``.

Header fields escape ``\\`` and ``|``; extension values escape ``\\``, ``=``, newline (``\\n``) and
carriage return (``\\r``), as the CEF specification says. Other control characters (NUL, ESC, …)
have no CEF escape and become U+FFFD, as do C1 controls and the Unicode line and paragraph separators
(U+0085, U+2028, U+2029 end a line for some readers), so a record is always one line. Extension keys are sorted.

>>> from datetime import datetime, timezone
>>> from umlogs.pipeline.export.record import Record
>>> r = Record("event", "e1", datetime(2024, 5, 1, 10, tzinfo=timezone.utc), "log", 0,
...     {"format": "windows_update", "source": "a.log", "line_no": 2, "level": "error",
...      "message": "a=b|c\\nd", "raw": "x", "hresult": "0x80240022"}, "WU_E_ALL_UPDATES_FAILED", "1.0")
>>> print(encode(r))
CEF:0|umlogs|umlogs|1.0|0x80240022|WU_E_ALL_UPDATES_FAILED|8|cat=windows_update cn1=2 cn1Label=line cs1=0x80240022 cs1Label=hresult externalId=e1 fname=a.log msg=a\\=b|c\\nd outcome=failure rt=1714557600000
"""

from __future__ import annotations

import re

from umlogs.pipeline.export.record import PRODUCT, VENDOR, Record, epoch_ms, utc_of

LEVEL_SEVERITY = {"debug": 1, "info": 3, "warning": 6, "error": 8, "fatal": 10}
FINDING_SEVERITY = {"info": 3, "warning": 6, "error": 8, "critical": 10}
NAME_LIMIT = 512
_OTHER_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_FAILED_LEVELS = ("error", "fatal")


def encode(record: Record) -> str:
    """One CEF line (without a trailing newline)."""
    if record.kind == "event":
        signature, name, severity, ext = _event(record)
    else:
        signature, name, severity, ext = _finding(record)
    ext["externalId"] = record.id
    ext["rt"] = epoch_ms(record.time)
    header = [VENDOR, PRODUCT, record.version, signature, name[:NAME_LIMIT], str(severity)]
    extension = " ".join(f"{k}={escape_extension(str(v))}" for k, v in sorted(ext.items()) if v not in (None, ""))
    return "CEF:0|" + "|".join(escape_header(h) for h in header) + "|" + extension


def escape_header(text: str) -> str:
    """A header field: ``\\`` and ``|`` escaped; line breaks and other controls cannot appear.

    >>> escape_header("a|b\\\\c\\nd")
    'a\\\\|b\\\\\\\\c d'
    """
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return _OTHER_CONTROLS.sub("\ufffd", text.replace("\r", " ").replace("\n", " "))


def escape_extension(text: str) -> str:
    """An extension value: ``\\``, ``=``, newline and carriage return escaped; other controls replaced.

    >>> escape_extension("k=v\\\\x\\r\\n\\x00")
    'k\\\\=v\\\\\\\\x\\\\r\\\\n\ufffd'
    """
    text = text.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")
    return _OTHER_CONTROLS.sub("\ufffd", text)


def _event(record: Record) -> tuple[str, str, int, dict]:
    d = record.data
    failed = bool(d.get("hresult")) or d.get("level") in _FAILED_LEVELS
    signature = d.get("hresult") or f"{d.get('format')}:{d.get('level')}"
    name = record.hresult_name or f"{d.get('format')} {d.get('level')}" + (f" {d['component']}" if d.get("component") else "")
    ext = {
        "msg": d.get("message"),
        "cat": d.get("format"),
        "dvchost": d.get("host"),
        "fname": d.get("source"),
        "dvcpid": d.get("pid"),
        "outcome": "failure" if failed else None,
        "cn1": d.get("line_no"),
        "cn1Label": "line",
        "cs1": d.get("hresult"),
        "cs1Label": "hresult" if d.get("hresult") else None,
        "cs2": d.get("component"),
        "cs2Label": "component" if d.get("component") else None,
        "cs3": ",".join(d.get("kbs") or ()) or None,
        "cs3Label": "kbs" if d.get("kbs") else None,
        "cs4": d.get("operation"),
        "cs4Label": "operation" if d.get("operation") else None,
        "cs5": None if record.time_source == "log" else record.time_source,
        "cs5Label": None if record.time_source == "log" else "timeSource",
    }
    return signature, name, LEVEL_SEVERITY.get(d.get("level"), 3), ext


def _finding(record: Record) -> tuple[str, str, int, dict]:
    d = record.data
    first, last = utc_of(d.get("first_seen"), record), utc_of(d.get("last_seen"), record)
    hosts = list(d.get("hosts") or ())
    ext = {
        "msg": d.get("cause"),
        "cat": d.get("scenario"),
        "dhost": hosts[0] if len(hosts) == 1 else None,
        "fname": ",".join(d.get("sources") or ()) or None,
        "cnt": d.get("count"),
        "start": epoch_ms(first) if first else None,
        "end": epoch_ms(last) if last else None,
        "request": d.get("reference"),
        "cs1": d.get("hresult"),
        "cs1Label": "hresult" if d.get("hresult") else None,
        "cs2": d.get("resolution"),
        "cs2Label": "resolution" if d.get("resolution") else None,
        "cs3": ",".join(hosts) or None,
        "cs3Label": "hosts" if hosts else None,
        "cs4": d.get("detail"),
        "cs4Label": "detail" if d.get("detail") else None,
        "cs5": None if record.time_source == "log" else record.time_source,
        "cs5Label": None if record.time_source == "log" else "timeSource",
    }
    return d["rule_id"], d["title"], FINDING_SEVERITY.get(d.get("severity"), 3), ext
