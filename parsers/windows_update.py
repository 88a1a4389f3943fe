"""WindowsUpdate.log in both layouts: classic WUA 7.x (tab separated) and Get-WindowsUpdateLog
(Windows 10+, fixed width). The grammar is ``grammars/windows_update.lark``.

>>> [e.hresult for e in parse(["2018-10-02\\t11:21:58:874\\t 408\\t1224\\tPT\\tWARNING: PTError: 0x80072ee2"], "x.log")]
['0x80072EE2']
>>> e = next(parse(["2023/05/22 08:10:31.7433169 2944  3952  Handler           two leading spaces"], "x.log"))
>>> e.pid, e.tid, e.component, repr(e.message)
(2944, 3952, 'Handler', "'  two leading spaces'")
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime

from lark import Token, Transformer, UnexpectedInput, v_args

from umlogs.parsers.event import Event, ParseIssue
from umlogs.parsers.grammar import parser
from umlogs.parsers.message import carried, is_failure, normalize_code, sql_is_failure, sql_normalize_code

NAME = "windows_update"
DESCRIPTION = "WindowsUpdate.log: classic WUA 7.x (tab separated) and Get-WindowsUpdateLog (Windows 10+)"
EVENT_TYPE = "windows:update_client:entry"

# Width of the Windows 10+ component column, padding included ("DownloadManager" + one space).
_COMPONENT_COLUMN = 16
# ===========  Logging initialized (build: 7.6.7601.23806, tz: +0300)  ===========
BANNER_TEXT = "Logging initialized"
_TZ_BANNER = re.compile(r"Logging initialized \(build: [^,]*, tz: ([+-])([0-9][0-9])([0-9][0-9])\)")
_FATAL = re.compile(r"\bFATAL\b", re.ASCII)
_WARNING = re.compile(r"\bWARNING\b", re.ASCII)
# The fields of a REPORT EVENT record, in order (the last, the description, is optional).
REPORT_FIELDS = (
    "report_id", "report_time", "report_version", "report_event_id", "report_category",
    "update_id", "update_revision", "report_hresult", "report_caller", "report_status",
    "report_kind", "report_message",
)  # fmt: skip


@v_args(inline=True)
class _LineToFields(Transformer):
    """Turns one parsed line into a dict of raw fields (strings), layout-specific parts resolved."""

    def start(self, date: Token, rest: dict) -> dict:
        return {"date": str(date), **rest}

    def classic(self, time, pid, tid, component, message=None) -> dict:
        fields = {"time": str(time), "pid": int(pid), "tid": int(tid, 16), "component": str(component)}
        if isinstance(message, dict):
            return {**fields, **message}
        return {**fields, "message": str(message or "")}

    def report_event(self, prefix, *values) -> dict:
        report = dict(zip(REPORT_FIELDS, (str(v) if v is not None else "" for v in values), strict=False))
        report["report_id"] = report["report_id"].strip("{}").upper()
        report["update_id"] = report["update_id"].strip("{}").upper()
        message = "\t".join((prefix + values[0], *(str(v) if v is not None else "" for v in values[1:])))
        return {"message": message, "report": report}

    def etl(self, time, pid, tid, component, pad=None, message=None) -> dict:  # noqa: PLR0913
        spaces = len(pad or "") - max(1, _COMPONENT_COLUMN - len(component))
        text = " " * max(0, spaces) + str(message or "")
        return {"time": str(time), "pid": int(pid), "tid": int(tid), "component": str(component), "message": text}


_TO_FIELDS = _LineToFields()


def sniff(head: list[str]) -> bool:
    """True when the first non-blank line of ``head`` is a WindowsUpdate.log line.

    >>> sniff(["", "2021/07/13 10:22:58.9553434 3696  8172  Shared          InitializeSus"])
    True
    >>> sniff(["2019-05-31 10:11:12 (8593)worker : Sandbox process started."])
    False
    """
    first = next((line for line in head if line.strip()), "")
    if not first[:4].isdigit():
        return False
    try:
        parser(NAME).parse(first)
    except UnexpectedInput:
        return False
    return True


def parse(
    lines: Iterable[str],
    source: str,
    *,
    host: str | None = None,
    utc_offset: int | None = None,
    first_line_no: int = 1,
) -> Iterator[Event | ParseIssue]:
    """One :class:`Event` per non-blank line, or a :class:`ParseIssue` for a line the grammar rejects.

    ``utc_offset`` (minutes east of UTC) applies until a classic ``Logging initialized`` banner says
    otherwise. Blank lines yield nothing. Lines are numbered from ``first_line_no``.
    """
    lark = parser(NAME, _TO_FIELDS)
    offset = utc_offset
    for line_no, line in enumerate(lines, start=first_line_no):
        if not line.strip():
            continue
        try:
            fields = lark.parse(line)
        except UnexpectedInput as error:
            yield ParseIssue(source, line_no, _reason(error), line[: ParseIssue.TEXT_LIMIT], format=NAME, host=host)
            continue
        offset = banner_offset(fields["message"], offset)
        yield _event(fields, line, line_no, source, host, offset)


def banner_offset(message: str, current: int | None) -> int | None:
    """The UTC offset a classic ``Logging initialized`` banner announces, else ``current``.

    >>> banner_offset("===  Logging initialized (build: 7.6.7601.23806, tz: -0330)  ===", None)
    -210
    """
    banner = _TZ_BANNER.search(message)
    if not banner:
        return current
    sign = -1 if banner.group(1) == "-" else 1
    return sign * (int(banner.group(2)) * 60 + int(banner.group(3)))


def _event(fields: dict, line: str, line_no: int, source: str, host: str | None, offset: int | None) -> Event:
    message = fields["message"]
    found = carried(message)
    report = fields.get("report")
    hresults, success, attrs, caller = found.hresults, found.success_codes, (), found.caller_id
    update_ids = found.update_ids
    if report:
        code = normalize_code(report["report_hresult"]) if len(report["report_hresult"]) <= 8 else None
        if code and is_failure(code) and code not in hresults:
            hresults = (code, *hresults)
        elif code and not is_failure(code) and code not in success:
            success = (code, *success)
        update = f"{report['update_id']}.{report['update_revision']}"
        if not update.startswith("00000000-0000-0000-0000-000000000000") and update not in update_ids:
            update_ids = (update, *update_ids)
        caller = report["report_caller"] or caller
        attrs = tuple(report.items())
    text = f"{fields['date']} {fields['time']}"
    return Event(
        format=NAME,
        source=source,
        line_no=line_no,
        raw=line,
        message=message,
        host=host,
        timestamp=_timestamp(fields["date"], fields["time"]),
        timestamp_text=text,
        utc_offset=offset,
        pid=fields["pid"],
        tid=fields["tid"],
        component=fields["component"],
        level=_level(message, report, bool(hresults)),
        hresult=hresults[0] if hresults else None,
        hresults=hresults,
        success_codes=success,
        kbs=found.kbs,
        update_ids=update_ids,
        guids=found.guids,
        caller_id=caller,
        urls=found.urls,
        operation=found.operation,
        operation_phase=found.operation_phase,
        exit_code=found.exit_code,
        attrs=attrs,
    )


def _timestamp(date: str, time: str) -> datetime | None:
    """Local time from the two layouts' stamps; ``None`` for an impossible date such as month 13.

    >>> _timestamp("2018-10-02", "11:21:58:874"), _timestamp("2023/05/22", "08:10:31.7433169")
    (datetime.datetime(2018, 10, 2, 11, 21, 58, 874000), datetime.datetime(2023, 5, 22, 8, 10, 31, 743316))
    >>> _timestamp("2023/13/22", "08:10:31.7433169") is None
    True
    """
    try:
        return datetime(
            int(date[0:4]), int(date[5:7]), int(date[8:10]),
            int(time[0:2]), int(time[3:5]), int(time[6:8]), int(time[9:15].ljust(6, "0")),
        )  # fmt: skip
    except ValueError:
        return None


def _level(message: str, report: dict | None, failed: bool) -> str:
    """``FATAL`` > ``*FAILED*`` or a failed report > ``WARNING`` > any failure code > info."""
    if _FATAL.search(message):
        return "fatal"
    if "*FAILED*" in message or (report and report["report_status"] == "Failure"):
        return "error"
    if _WARNING.search(message):
        return "warning"
    return "error" if failed else "info"


def _reason(error: UnexpectedInput) -> str:
    expected = sorted(getattr(error, "expected", None) or getattr(error, "allowed", None) or ())
    where = f"column {error.column}" if getattr(error, "column", None) not in (None, -1) else "end of line"
    hint = f": expected {', '.join(expected[:4])}" if expected else ""
    return f"not a WindowsUpdate.log line at {where}{hint}"


# --- The fast path: the transformer's work as DuckDB expressions -------------------------------


def sql_fields(group) -> dict[str, str]:
    """What :class:`_LineToFields` and :func:`_event` compute, as DuckDB expressions over the groups
    of :func:`umlogs.parsers.fastpath.line_regex` (``group(name)`` is a group's text, ``''`` when the
    group took no part). A name that starts with ``_`` is a step the others share: it is computed
    first, once a line, and the others refer to it by that name. tests/parsers/test_fastpath.py
    proves both paths give the same events.
    """
    classic = f"({group('classic__CLASSIC_TIME__0')} <> '')"
    date = group("start__DATE__0")
    component = f"(CASE WHEN {classic} THEN {group('classic__COMPONENT__0')} ELSE {group('etl__COMPONENT__0')} END)"
    etl_spaces = f"(length({group('etl__PAD__0')}) - greatest(1, {_COMPONENT_COLUMN} - length({group('etl__COMPONENT__0')})))"
    # The stamp from its parts, no string built per line: the day (a cast reads a date whose two
    # separators agree; mixed ones go by the format they call for), the time of day (a cast, which
    # would take 24:00:00 too), the fraction's first six digits as microseconds (CLASSIC_TIME has
    # three, ETL_TIME seven). 0.3 s per 1M lines where strptime for the day and the time took 0.9 s;
    # tests/parsers/test_fastpath.py holds impossible days and times, year 0 and mixed separators.
    separators = f"(substr({date}, 5, 1) || substr({date}, 8, 1))"
    mixed = "(CASE " + separators + " " + " ".join(f"WHEN '{a}{b}' THEN try_strptime({date}, '%Y{a}%m{b}%d')" for a in "-/" for b in "-/") + " END)"
    day = f"coalesce(try_cast({date} AS DATE), CAST({mixed} AS DATE))"
    of_day = "(CASE WHEN _time < '24' THEN try_cast(substr(_time, 1, 8) AS TIME) END)"
    micros = f"to_microseconds(CASE WHEN {classic} THEN CAST(substr(_time, 10, 3) AS BIGINT) * 1000 ELSE CAST(substr(_time, 10, 6) AS BIGINT) END)"
    return {
        "_time": f"(CASE WHEN {classic} THEN {group('classic__CLASSIC_TIME__0')} ELSE {group('etl__ETL_TIME__0')} END)",
        "timestamp": f"(CASE WHEN NOT starts_with({date}, '0000') THEN {day} + {of_day} + {micros} END)",
        "timestamp_text": f"({date} || ' ' || _time)",
        "pid": f"CAST(CASE WHEN {classic} THEN {group('classic__PID__0')} ELSE {group('etl__PID__0')} END AS BIGINT)",
        "tid": f"(CASE WHEN {classic} THEN CAST('0x' || {group('classic__CLASSIC_TID__0')} AS BIGINT) ELSE CAST({group('etl__TID__0')} AS BIGINT) END)",
        "component": component,
        "message": f"(CASE WHEN {classic} THEN {group('classic__MESSAGE__0')} WHEN {etl_spaces} <= 0 THEN {group('etl__ETL_MESSAGE__0')} "
        f"ELSE repeat(' ', {etl_spaces}) || {group('etl__ETL_MESSAGE__0')} END)",  # no copy of a message that gains no spaces
    }


def sql_level(message: str, hresults: str, report_status: str = "NULL") -> str:
    """:func:`_level` in DuckDB (``report_status`` is a REPORT EVENT record's status, else NULL)."""
    return (
        f"(CASE WHEN contains({message}, 'FATAL') AND regexp_matches({message}, '\\bFATAL\\b') THEN 'fatal' "
        f"WHEN contains({message}, '*FAILED*') OR {report_status} = 'Failure' THEN 'error' "
        f"WHEN contains({message}, 'WARNING') AND regexp_matches({message}, '\\bWARNING\\b') THEN 'warning' "
        f"WHEN len({hresults}) > 0 THEN 'error' ELSE 'info' END)"
    )


def sql_report(parts: str, found) -> dict[str, str]:
    """What :meth:`_LineToFields.report_event` and :func:`_event` make of a REPORT EVENT record, in
    DuckDB, for a line whose message is one (the grammar's ``report_event``, checked by the line
    regex). ``parts`` is the message split at tabs (``string_split(message, chr(9))``): the record's
    fields, the description (the 12th) and any tabs it holds after them. ``found(name)`` is the
    column computed from the message alone; the result maps the columns the record changes to their
    expressions. ``attrs`` is the list of the record's values, which the caller names by
    :data:`REPORT_FIELDS` in order (DuckDB's ``MAP()`` would take ~0.1 ms a record to pair them).
    """
    values = [
        f"upper(trim(substr({parts}[1], {len('REPORT EVENT: ') + 1}), '{{}}'))", *(f"{parts}[{n}]" for n in range(2, 6)),
        f"upper(trim({parts}[6], '{{}}'))", *(f"{parts}[{n}]" for n in range(7, 12)),
        f"array_to_string({parts}[12:], chr(9))",
    ]  # fmt: skip
    code = f"(CASE WHEN length({parts}[8]) <= 8 THEN {sql_normalize_code(f'{parts}[8]')} END)"
    update = f"{values[5]} || '.' || {parts}[7]"

    def put_first(value: str, column: str, condition: str) -> str:
        """``column`` with ``value`` put first where ``condition`` holds and it is not there yet."""
        listed = found(column)
        return f"(CASE WHEN {condition} AND NOT list_contains({listed}, {value}) THEN list_prepend({value}, {listed}) ELSE {listed} END)"

    return {
        "hresults": put_first(code, "hresults", sql_is_failure(code)),
        "success_codes": put_first(code, "success_codes", f"NOT {sql_is_failure(code)}"),
        "update_ids": put_first(update, "update_ids", f"NOT starts_with({update}, '00000000-0000-0000-0000-000000000000')"),
        "caller_id": f"(CASE WHEN {parts}[9] <> '' THEN {parts}[9] ELSE {found('caller_id')} END)",
        "attrs": f"(CASE WHEN len({parts}) >= 12 THEN [{', '.join(values)}] ELSE [{', '.join(values[:-1])}] END)",
        "report_status": f"{parts}[10]",
    }


__all__ = ["NAME", "DESCRIPTION", "EVENT_TYPE", "REPORT_FIELDS", "sniff", "parse", "banner_offset", "sql_fields", "sql_level", "sql_report"]
