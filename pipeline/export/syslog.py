"""Syslog, RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG``.

* PRI = facility user (1) × 8 + severity from the level (or the finding's severity).
* Structured data uses the SD-ID ``umlogs@32473`` (32473 is the enterprise number RFC 5612 reserves
  for documentation; private SD-IDs need ``name@number``). Parameter values escape ``"``, ``\\`` and
  ``]`` (RFC 5424 section 6.3.3); control characters in them become U+FFFD.
* MSG is UTF-8 and starts with the BOM. So that one record stays one line (for files, UDP and
  receivers that split on newlines), MSG escapes ``\\`` as ``\\\\`` and control characters as ``\\n``,
  ``\\r``, ``\\t`` or ``\\xHH`` (C0, DEL and C1), and the Unicode line and paragraph separators as
  ``\\u2028`` and ``\\u2029``; :func:`unescape_msg` reverses it.
* Header fields that are unknown are the NILVALUE ``-``.

>>> from datetime import datetime, timezone
>>> from umlogs.pipeline.export.record import Record
>>> r = Record("event", "e1", datetime(2024, 5, 1, 10, tzinfo=timezone.utc), "log", 0,
...     {"format": "windows_update", "source": "a.log", "line_no": 2, "level": "error", "pid": 88,
...      "message": 'bad "x"]\\n', "raw": "x", "host": "web 01"}, None, "1.0")
>>> encode(r)
'<11>1 2024-05-01T10:00:00.000000Z web_01 umlogs 88 windows_update [umlogs@32473 format="windows_update" id="e1" level="error" line="2" source="a.log"] \\ufeffbad "x"]\\\\n'
"""

from __future__ import annotations

import re

from umlogs.pipeline.export.record import PRODUCT, Record, iso_utc

FACILITY = 1  # user-level messages
SD_ID = "umlogs@32473"
LEVEL_SEVERITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "fatal": 2}
FINDING_SEVERITY = {"info": 6, "warning": 4, "error": 3, "critical": 2}
BOM = "\ufeff"
NIL = "-"
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\\\\]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_UNESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|.)", re.DOTALL)


def encode(record: Record) -> str:
    """One RFC 5424 message (a ``str``; send it UTF-8 encoded)."""
    d = record.data
    if record.kind == "event":
        severity = LEVEL_SEVERITY.get(d.get("level"), 6)
        procid, msgid, message = d.get("pid"), d.get("format"), d.get("message") or ""
        params = {"id": record.id, "format": d.get("format"), "source": d.get("source"), "line": d.get("line_no"),
                  "level": d.get("level"), "component": d.get("component"), "hresult": d.get("hresult")}
    else:
        severity = FINDING_SEVERITY.get(d.get("severity"), 6)
        procid, msgid = None, "finding"
        message = d["title"] + (f": {d['detail']}" if d.get("detail") else "")
        params = {"id": record.id, "rule": d["rule_id"], "severity": d.get("severity"), "hresult": d.get("hresult"),
                  "count": d.get("count"), "scenario": d.get("scenario"), "reference": d.get("reference")}
    if record.time_source != "log":
        params["timeSource"] = record.time_source
    header = [
        f"<{FACILITY * 8 + severity}>1",
        iso_utc(record.time),
        header_field(record.host, 255),
        PRODUCT,
        header_field(None if procid is None else str(procid), 128),
        header_field(msgid, 32),
    ]
    return " ".join(header) + " " + structured_data(SD_ID, params) + " " + BOM + escape_msg(message)


def header_field(value: str | None, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``limit`` characters, or ``-``.

    >>> header_field("host name\\u00e9", 255), header_field("", 32), header_field(None, 32)
    ('host_name_', '-', '-')
    """
    if not value:
        return NIL
    return "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]


def structured_data(sd_id: str, params: dict) -> str:
    """``[SD-ID name="value" …]``; parameters sorted, empty ones left out.

    >>> structured_data("x@1", {"b": 'q"]\\\\', "a": 1, "c": None})
    '[x@1 a="1" b="q\\\\"\\\\]\\\\\\\\"]'
    """
    parts = [sd_id] + [f'{name}="{escape_param(str(v))}"' for name, v in sorted(params.items()) if v not in (None, "")]
    return "[" + " ".join(parts) + "]"


def escape_param(text: str) -> str:
    """A PARAM-VALUE: ``"``, ``\\`` and ``]`` escaped with a backslash, controls replaced."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
    return re.sub("[\x00-\x1f\x7f-\x9f\u2028\u2029]", "\ufffd", text)


def escape_msg(text: str) -> str:
    """MSG text on one line: ``\\`` doubled, control characters written as escapes.

    >>> escape_msg("a\\\\b\\nc\\x00")
    'a\\\\\\\\b\\\\nc\\\\x00'
    """
    return _CONTROLS.sub(lambda m: _NAMED.get(m.group()) or _code(m.group()), text)


def _code(char: str) -> str:
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def unescape_msg(text: str) -> str:
    """The inverse of :func:`escape_msg`.

    >>> unescape_msg(escape_msg("a\\\\n\\n\\x1b[0m\\t")) == "a\\\\n\\n\\x1b[0m\\t"
    True
    """
    reverse = {v[1]: k for k, v in _NAMED.items()}
    return _UNESCAPE.sub(lambda m: chr(int(m.group(1)[1:], 16)) if len(m.group(1)) > 1 else reverse[m.group(1)], text)
