"""Error text pasted from the Azure portal, from runbook job output and from PowerShell: .NET exception
chains, ARM JSON errors, PowerShell error records, Python tracebacks. The grammar is
``grammars/portal_exception.lark``; the walk over its pieces is in :mod:`.portal_exception_fields`.

How a text splits into error strings:

* blank lines always separate error strings;
* a block of several lines is read as **one message per line** when every line is a complete
  message on its own: it starts at the margin (no indentation), is not a continuation (a stack
  frame ``at …``, ``--->``, ``--- End of …``, ``+ …``, ``At line:``, a traceback line, a closing
  bracket), starts with a letter, a digit, ``{`` or ``[``, and the line before it ends a sentence
  (``. ! ? : ) ] } "`` or a quote);
* otherwise the block is **one** error string whose lines are structure (frames, records) or hard
  wrapping: a line ending in ``-`` or ``/`` is joined to the next without a space (a wrapped GUID or
  resource id), other lines with one.

>>> e = next(parse(["System.Net.WebException: closed ---> System.ComponentModel.Win32Exception (0x80090326): bad"], "t"))
>>> e.exception_chain
(('System.Net.WebException', 'closed'), ('System.ComponentModel.Win32Exception', 'bad'))
>>> e.hresults, dict(e.attrs)["inner_type"]
(('0x80090326',), 'System.ComponentModel.Win32Exception')
>>> [(e.line_no, e.line_count) for e in parse(["First failed.", "Second failed.", "", "Third", "  wrapped."], "t")]
[(1, 1), (2, 1), (4, 2)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime

from umlogs.parsers.event import Event, ParseIssue
from umlogs.parsers.message import carried, is_failure
from umlogs.parsers.portal_exception_fields import Analysis, _pieces, analyze

NAME = "portal_exception"
DESCRIPTION = "Error text from the Azure portal, job output and PowerShell: .NET exception chains, ARM JSON errors"
EVENT_TYPE = "azure:portal:exception"

# A line that continues the error string above it rather than starting a new one.
_CONTINUATION = re.compile(
    r"""^(?:\s|at\s|--->|---|\+|At\s+(?:line:|\S.*char:)|File\s+"|Traceback\b|During\s+handling|
    The\s+above\s+exception|[}\]),"]|\w+:\s*$)""",
    re.VERBOSE,
)
_SENTENCE_END = tuple(".!?:)]}\"'’”")
# Seen in the first lines of a file, these make it error text (checked after the log-line test).
_STRONG = {"PREFIX_REGISTER", "PREFIX_DETAILS", "PREFIX_RUNBOOK", "PREFIX_ASSESSMENT", "ARROW", "STACK_END",
           "HR_FROM", "HR_NAMED", "HR_NAME_FIRST", "RESOURCE_ID", "KEYED_GUID", "KEYED_QUOTED", "ACTION", "PS_FIELD", "TRACEBACK", "JSON"}  # fmt: skip
_PHRASES = re.compile(
    r"(?i)exception|error|fail|denied|authoriz|forbidden|could not|cannot|can't|unable|invalid|overquota"
    r"|timed out|not found|expired|suspended|does not exist"
    r"|maintenancewindowexceeded|the certificate presented|solution have been enabled"
)
# A line of a timestamped log (WindowsUpdate.log, omsupdatemgmt.log, worker.log): the sniff says no.
_LOG_LINE = re.compile(r"^\s*\[?[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}[ T\t][0-9]{2}:[0-9]{2}:[0-9]{2}")
# Troubleshooter output ("Passed: …", "Failed: …"), read by update_worker, is not error text.
_CHECK_LINE = re.compile(r"^(?:Passed|Failed|Debug|Information|Warning|Skipped)\s*:")
# A whole-file JSON document is error text only when it is an ARM or Web API error body.
_JSON_ERROR = re.compile(r'"error"\s*:\s*\{|"(?:Message|ExceptionMessage|ExceptionType)"\s*:')
_OFFSET = re.compile(r"(Z|([+-])([0-9]{2}):?([0-9]{2}))$")
_SNIFF_CHARS = 8000


def sniff(head: list[str]) -> bool:
    """True when the first lines read as error text: a piece only error text has (a prefix, ``--->``,
    an HRESULT phrase, a resource id, JSON, a PowerShell record field), or an exception type with a
    message, or an error phrase in prose. Timestamped log lines and binary junk say no.

    >>> sniff(["Unable to Register Machine for Patch Management, Registration Failed with Exception X"])
    True
    >>> sniff(["2019-05-31 10:11:12 (8593)worker : Exception: boom"])
    False
    >>> sniff(["\\x00\\x01\\x02ELF"]), sniff(["hello world"]), sniff(["Failed: OMS agent is not running"])
    (False, False, False)
    >>> sniff(['{"error": {"code": "Conflict", "message": "Quota exceeded."}}'])
    True
    """
    try:
        lines = [line for line in head if line.strip()]
        text = "\n".join(lines)[:_SNIFF_CHARS]
        if not lines or _junk(text):
            return False
        logged = sum(bool(_LOG_LINE.match(line) or _CHECK_LINE.match(line)) for line in lines)
        if logged * 2 >= len(lines) or _CHECK_LINE.match(lines[0]):
            return False
        if text.lstrip()[:1] in "{[" and (not _JSON_ERROR.search(text) or '"RuleId"' in text):
            return False

        kinds = {p.type for p in _pieces(text)}
        if kinds & _STRONG:
            return True
        a = analyze(text)
        return bool(a.chain) or bool(_PHRASES.search(text) and len(text.split()) >= 3)
    except Exception:  # noqa: BLE001 - a sniff never raises
        return False


def parse(
    lines: Iterable[str], source: str, *, host: str | None = None, utc_offset: int | None = None
) -> Iterator[Event | ParseIssue]:
    """One :class:`Event` per error string (see the module docstring for how strings are told apart).
    Every non-blank line belongs to exactly one event; blank lines yield nothing."""
    lines = list(lines)
    for first, last in records(lines):
        yield _event(lines[first : last + 1], first + 1, source, host, utc_offset)


def records(lines: list[str]) -> list[tuple[int, int]]:
    """``(first, last)`` line indexes (0-based, inclusive) of each error string.

    >>> records(["A failed.", "B failed.", "", "C failed:", "   at X.Y()", "", "wrapped over", "two lines"])
    [(0, 0), (1, 1), (3, 4), (6, 7)]
    """
    out: list[tuple[int, int]] = []
    start = None
    for i, line in enumerate([*lines, ""]):
        if line.strip() and start is None:
            start = i
        elif not line.strip() and start is not None:
            block = lines[start:i]
            if len(block) > 1 and _one_per_line(block):
                out.extend((start + k, start + k) for k in range(len(block)))
            else:
                out.append((start, i - 1))
            start = None
    return out


def _one_per_line(block: list[str]) -> bool:
    for k, line in enumerate(block):
        if _CONTINUATION.match(line) or not (line[0].isalnum() or line[0] in "{["):
            return False
        if k and not block[k - 1].rstrip().endswith(_SENTENCE_END):
            return False
    return True


def logical_text(lines: list[str]) -> str:
    """The lines of one error string joined for parsing: a line ending in ``-`` or ``/`` runs on
    into the next (a wrapped GUID or path), other lines keep their newline.

    >>> logical_text(["tenant '00000000-0000-", "0000-0000-000000000000'", "next"])
    "tenant '00000000-0000-0000-0000-000000000000'\\nnext"
    """
    parts: list[str] = []
    for line in lines:
        if parts and parts[-1].endswith(("-", "/")) and not parts[-1].endswith(("--", " -")) and line[:1].isalnum():
            parts[-1] += line
        else:
            parts.append(line.rstrip())
    return "\n".join(parts)


def _event(block: list[str], line_no: int, source: str, host: str | None, utc_offset: int | None) -> Event:
    raw = "\n".join(block)
    text = logical_text(block)
    try:
        a = analyze(text)
        reason = None
    except Exception as error:  # noqa: BLE001 - bad input is data: keep the text as an event
        a, reason = Analysis(message=" ".join(text.split())), f"{type(error).__name__}: {error}"[:200]
    found = carried(text)
    codes = list(found.hresults) + [c for c in a.decimal_codes if is_failure(c) and c not in found.hresults]
    attrs = _attrs(a, codes)
    if reason:
        attrs["parse_error"] = reason
    stamp, offset = _timestamp(a.timestamp_text, utc_offset)
    return Event(
        format=NAME,
        source=source,
        line_no=line_no,
        line_count=len(block),
        raw=raw,
        message=a.message or " ".join(text.split()),
        host=host,
        timestamp=stamp,
        timestamp_text=a.timestamp_text,
        utc_offset=offset if stamp else None,
        component=(a.chain[0][0] if a.chain else None),
        level="error",
        hresult=codes[0] if codes else None,
        hresults=tuple(codes),
        success_codes=found.success_codes,
        kbs=found.kbs,
        update_ids=found.update_ids,
        guids=found.guids,
        urls=found.urls,
        operation=a.fields.get("Operation"),
        exception_chain=a.chain,
        attrs=tuple(sorted(attrs.items())),
    )


def _attrs(a: Analysis, codes: list[str]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if a.chain:
        attrs["outer_type"], attrs["inner_type"] = a.chain[0][0], a.chain[-1][0]
        attrs["chain_depth"] = str(len(a.chain))
    if a.prefix:
        attrs["prefix"] = a.prefix
    attrs.update(a.ids)
    if a.hosts:
        attrs["hosts"] = ",".join(a.hosts)
    named = [a.names[c] for c in codes if c in a.names] + [n for c, n in a.names.items() if c not in codes]
    if named:
        attrs["hresult_name"] = ",".join(named)
    attrs.update(a.json)
    attrs.update(a.powershell)
    attrs.update((f"field.{k}", v) for k, v in a.fields.items())
    if a.redacted:
        attrs["redacted"] = ",".join(a.redacted)
    if a.frames:
        attrs["stack_frames"] = str(a.frames)
    return attrs


def _timestamp(text: str | None, utc_offset: int | None) -> tuple[datetime | None, int | None]:
    """Local time and offset from a time the text carries.

    >>> _timestamp("2019-05-31T10:11:12.5+02:00", None)
    (datetime.datetime(2019, 5, 31, 10, 11, 12, 500000), 120)
    >>> _timestamp("2019-13-31 10:11:12", None)
    (None, None)
    """
    if not text:
        return None, utc_offset
    zone = _OFFSET.search(text)
    offset = utc_offset
    if zone:
        text = text[: zone.start()]
        offset = 0 if zone.group(1) == "Z" else (-1 if zone.group(2) == "-" else 1) * (
            int(zone.group(3)) * 60 + int(zone.group(4))
        )
    try:
        stamp = datetime.fromisoformat(text.replace(",", ".").replace("/", "-").replace(" ", "T")[:26])
    except ValueError:
        return None, None
    return stamp, offset


def _junk(text: str) -> bool:
    bad = sum(1 for c in text if (ord(c) < 32 and c not in "\t\r\n") or c == "\ufffd")
    return bad * 20 > len(text)


__all__ = ["NAME", "DESCRIPTION", "EVENT_TYPE", "sniff", "parse", "records", "logical_text"]
