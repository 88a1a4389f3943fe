"""Linux update worker logs, one format with three kinds of file: the Hybrid Runbook Worker's
``worker.log`` (and ``worker.log.1`` … ``.5``, ``sandbox<id>.log``), the patch runbook's
``omsupdatemgmt.log``, and the Update Management troubleshooter's report (text, or its JSON form).
The grammar is ``grammars/update_worker.lark``.

Kind dispatch, not one start rule per kind: the grammar's single ``start`` accepts the first line of
an entry of any kind (and omsupdatemgmt's marked continuation lines), so the kind of a line is the
branch that parsed it. A file has one kind, fixed by its first entry; from then on, an entry line of
that kind starts a new event, and other lines continue the event above when that kind allows it:
a worker entry takes every other line (tracebacks, raw sandbox stdout), an omsupdatemgmt entry takes
``\\tDEBUG:``/``\\tVERBOSE:`` lines, ``|\\t`` output, ``<End of output>`` and indented lines, a
troubleshooter block takes indented lines. Anything else is a :class:`ParseIssue`. A JSON report is
read as a whole (:mod:`umlogs.parsers.update_worker_report`), one event per check record.

Levels: a ``[DEBUG]``/``[WARNING]``/``[ERROR]``/``ERROR:``/``WARNING:`` tag decides. Without a tag, a
worker or runbook message about a *terminal* exception is ``fatal`` (the worker stops), one that says
crashed, failed, unable to or exception is ``error``, anything else ``info``. Troubleshooter results:
Failed is ``error``, PassedWithWarning ``warning``, Debug ``debug``, Passed and Information ``info``.
Times are UTC (``utc_offset=0``); the ``utc_offset`` argument is accepted for the common signature.

>>> lines = ["2019-05-31 10:11:12 (8593)worker : Sandbox process crashed. [sandboxId=6c1f][exitCode=-11]",
...          "Traceback (most recent call last):", "ValueError: bad"]
>>> e = next(parse(lines, "worker.log"))
>>> e.component, e.pid, e.level, e.line_count, dict(e.attrs)["exitCode"], e.exception_chain
('worker', 8593, 'error', 3, '-11', (('ValueError', 'bad'),))
>>> e = next(parse(["2024-07-17T06:57:48Z> WARNING:- Return code from package manager: 100"], "o.log"))
>>> e.timestamp_utc.isoformat(), e.level, dict(e.attrs)["return_code"]
('2024-07-17T06:57:48+00:00', 'warning', '100')
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator
from datetime import datetime

from lark import Token, Transformer, UnexpectedInput, v_args

from umlogs.parsers import update_worker_report as report
from umlogs.parsers.event import Event, ParseIssue
from umlogs.parsers.grammar import parser
from umlogs.parsers.update_worker_runbook import runbook_attrs
from umlogs.parsers.message import carried

NAME = "update_worker"
DESCRIPTION = "Linux update worker: worker.log, omsupdatemgmt.log, troubleshooter report (text and JSON)"
EVENT_TYPE = "linux:update_worker:entry"

WORKER, RUNBOOK, TROUBLESHOOTER = "worker", "omsupdatemgmt", "troubleshooter"
_ENTRY_KINDS = {"worker_entry": WORKER, "oms_entry": RUNBOOK, "check_entry": TROUBLESHOOTER}
# First characters of the lines the grammar can accept; any other line skips the Lark parse.
_MARKED = frozenset("0123456789PFDI|\t<")
_TAG_LEVELS = {"DEBUG": "debug", "VERBOSE": "debug", "INFO": "info", "WARNING": "warning", "WARN": "warning",
               "ERROR": "error", "CRITICAL": "fatal", "FATAL": "fatal"}  # fmt: skip
_RESULT_LEVELS = {"Failed": "error", "PassedWithWarning": "warning", "Debug": "debug"}
_TERMINAL = re.compile(r"(?<!non )terminal exception", re.IGNORECASE)
_FAILURE = re.compile(r"\b(?:crash(?:ed)?|fail(?:ed|ure)?|unable to|exception)\b", re.IGNORECASE)
# [sandboxId=6c1f…][pId=9001]: a value runs to the "]" before the next group or the end of the
# entry, so a traceback value may hold "]" and newlines ([exception=…OSError: [Errno 28] …]).
_KEY_VALUE = re.compile(r"\[([A-Za-z_][\w.-]*)=(.*?)\](?=\[[A-Za-z_][\w.-]*=|\s*$)", re.DOTALL)
# Its two ends: the parser reads groups through them in linear time (_key_value_spans), and the
# tests prove that reading equal to the regex above, which defines the groups.
_KEY_START = re.compile(r"\[([A-Za-z_][\w.-]*)=")
_KEY_END = re.compile(r"\](?=\[[A-Za-z_][\w.-]*=|\s*$)")
# A group followed by more text on its line: "[status=401] retrying"
_SIMPLE_KEY_VALUE = re.compile(r"\[([A-Za-z_][\w.-]*)=([^\[\]\n]*)\]")
# The last line of a Python traceback: "ValueError: bad" · "urllib2.URLError: <urlopen error …>"
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))(?::\s*(.*))?$")


@v_args(inline=True)
class _LineToFields(Transformer):
    """One line to ``(kind of line, fields)``."""

    def start(self, item):
        return item

    def text(self, *tokens: Token) -> dict:
        tag = next((str(t) for t in tokens if t.type == "LEVEL_TAG"), "")
        message = next((str(t) for t in tokens if t.type == "MESSAGE"), "")
        return {"tag": tag, "message": tag + message}

    def worker_entry(self, date, sep, clock, pid, component, text=None) -> tuple[str, dict]:
        return "worker_entry", {"stamp": f"{date}{sep}{clock}", "pid": int(pid), "component": str(component),
                                **(text or {"tag": "", "message": ""})}  # fmt: skip

    def oms_entry(self, date, sep, clock, *rest) -> tuple[str, dict]:
        zulu = "Z" if rest and isinstance(rest[0], Token) else ""
        text = rest[-1] if rest and isinstance(rest[-1], dict) else {"tag": "", "message": ""}
        return "oms_entry", {"stamp": f"{date}{sep}{clock}{zulu}", "pid": None, "component": RUNBOOK, **text}

    def check_entry(self, result, message=None) -> tuple[str, dict]:
        return "check_entry", {"result": str(result), "message": str(message or ""), "component": TROUBLESHOOTER}

    def oms_detail(self, tag, message=None) -> tuple[str, dict]:
        return "oms_detail", {"tag": tag.strip().rstrip(":"), "message": str(message or "")}

    def output_line(self, *segments) -> tuple[str, dict]:
        return "output_line", {}

    def end_of_output(self, _) -> tuple[str, dict]:
        return "end_of_output", {}


_TO_FIELDS = _LineToFields()


def _classify(line: str) -> tuple[str, dict] | None:
    """What kind of line this is for the grammar, or ``None`` when the grammar rejects it.

    >>> _classify("Failed: OMS agent is not running")
    ('check_entry', {'result': 'Failed', 'message': 'OMS agent is not running', 'component': 'troubleshooter'})
    >>> _classify("  File \\"/opt/microsoft/omsconfig/worker.py\\", line 42") is None
    True
    """
    if line[:1] not in _MARKED and not line.lstrip().startswith("<"):
        return None
    try:
        return parser(NAME, _TO_FIELDS).parse(line)
    except UnexpectedInput:
        return None


def sniff(head: list[str]) -> bool:
    """True when ``head`` starts like one of the three kinds of file. Never raises.

    >>> sniff(["2019-05-31 10:11:12 (8593)worker : Sandbox process started."])
    True
    >>> sniff(["2024-07-17T06:57:48Z> [APM] Refreshing local repo..."]), sniff(["", "Passed: Hybrid worker is running"])
    (True, True)
    >>> sniff(['[{"RuleId": "Linux.ProxyCheck", "CheckResult": "Passed"}]'])
    True
    >>> sniff(["2021/07/13 10:22:58.9553434 3696  8172  Shared          InitializeSus"]), sniff([])
    (False, False)
    """
    try:
        if report.looks_like_json(head):
            text = "\n".join(head)
            return '"RuleId"' in text and '"CheckResult"' in text
        first = next((line for line in head if line.strip()), "")
        item = _classify(first)
        return item is not None and item[0] in _ENTRY_KINDS
    except Exception:  # noqa: BLE001 - sniffing must never raise, whatever the input
        return False


def parse(
    lines: Iterable[str], source: str, *, host: str | None = None, utc_offset: int | None = None
) -> Iterator[Event | ParseIssue]:
    """One :class:`Event` per entry (its continuation lines included), a :class:`ParseIssue` for each
    line that cannot be placed. Blank lines yield nothing and belong to no event. A text log is read
    as a stream; a JSON report (whose first non-blank line opens an array or object) as a whole."""
    lines = iter(lines)
    opening: list[str] = []  # up to the first non-blank line
    for line in lines:
        opening.append(line)
        if line.strip():
            break
    if report.looks_like_json(opening):
        yield from _parse_json([*opening, *lines], source, host)
        return
    lines = itertools.chain(opening, lines)
    kind: str | None = None
    block: list[tuple[int, str]] = []
    head: dict = {}
    runbook_state: dict[str, str] = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item = _classify(line)
        if item and item[0] in _ENTRY_KINDS and kind in (None, _ENTRY_KINDS[item[0]]):
            if block:
                yield _event(kind, head, block, source, host, runbook_state)
            kind, head, block = _ENTRY_KINDS[item[0]], item[1], [(line_no, line)]
        elif block and _continues(kind, item, line):
            block.append((line_no, line))
        else:
            if block:
                yield _event(kind, head, block, source, host, runbook_state)
                block = []
            reason = "no entry above this continuation line" if kind is None else f"not a {kind} line"
            yield ParseIssue(source, line_no, reason, line[: ParseIssue.TEXT_LIMIT], format=NAME, host=host)
    if block:
        yield _event(kind, head, block, source, host, runbook_state)


def _continues(kind: str | None, item: tuple[str, dict] | None, line: str) -> bool:
    if kind == WORKER:
        return True
    if kind == RUNBOOK and item and item[0] in ("oms_detail", "output_line", "end_of_output"):
        return True
    return line[:1].isspace()


def _event(kind, head: dict, block, source, host, runbook_state: dict[str, str]) -> Event:
    line_no = block[0][0]
    rest = [line for _, line in block[1:]]
    first = head["message"]
    message = "\n".join([first, *rest])
    attrs: dict[str, str] = {"kind": kind}
    chain: tuple[tuple[str, str], ...] = ()
    if kind == TROUBLESHOOTER:
        result = head["result"]
        attrs["check_result"] = result
        level = _RESULT_LEVELS.get(result, "info")
        check = None if result == "Debug" else report.check_of(" ".join([first, *(r.strip() for r in rest)]))
        if check:
            attrs["check_id"], attrs["rule_group"] = check
    else:
        level = _level(head["tag"], first)
        if kind == WORKER:
            attrs.update(_key_values(message))
            chain = _exception_chain(attrs["exception"].splitlines() if "exception" in attrs else rest)
        else:
            attrs.update(_key_values(first))
            attrs.update(runbook_attrs(first, rest, runbook_state))
    found = carried(message)
    stamp = head.get("stamp")
    timestamp = _timestamp(stamp) if stamp else None
    return Event(
        format=NAME,
        source=source,
        line_no=line_no,
        raw="\n".join(line for _, line in block),
        message=message,
        line_count=len(block),
        host=host,
        timestamp=timestamp,
        timestamp_text=stamp,
        utc_offset=0 if timestamp else None,
        pid=head.get("pid"),
        component=head["component"],
        level=level,
        hresult=found.hresults[0] if found.hresults else None,
        hresults=found.hresults,
        success_codes=found.success_codes,
        kbs=found.kbs,
        guids=found.guids,
        urls=found.urls,
        exception_chain=chain,
        attrs=tuple(attrs.items()),
    )


def _level(tag: str, message: str) -> str:
    """The level a tag names, else what the words of the entry's first line say.

    >>> _level("[WARNING] ", "[WARNING] Request to service failed"), _level("", "Worker safe loop terminal exception.")
    ('warning', 'fatal')
    >>> _level("", "Worker safe loop non terminal exception. [exception=x]"), _level("", "Job started.")
    ('error', 'info')
    """
    word = tag.strip(" []:-")
    if word in _TAG_LEVELS:
        return _TAG_LEVELS[word]
    words = _SIMPLE_KEY_VALUE.sub("", _without_key_values(message))
    if _TERMINAL.search(words):
        return "fatal"
    return "error" if _FAILURE.search(words) else "info"


def _key_values(message: str) -> dict[str, str]:
    """The ``[key=value]`` groups of an entry (``[OperationId=…]``, ``[Sources=…]`` in omsupdatemgmt.log
    too), first occurrence of a key kept.

    >>> _key_values("Sandbox process crashed. [exitCode=1][exception=OSError: [Errno 28] No space]")
    {'exitCode': '1', 'exception': 'OSError: [Errno 28] No space'}
    >>> _key_values("Unable to get job actions. [status=401] Retrying in 30 s.")
    {'status': '401'}
    """
    found: dict[str, str] = {}
    for key, value in (*_key_value_groups(message), *_SIMPLE_KEY_VALUE.findall(message)):
        found.setdefault(key, value.strip())
    return found


def _key_value_groups(text: str) -> list[tuple[str, str]]:
    """What ``_KEY_VALUE.findall(text)`` finds, in linear time (see :func:`_key_value_spans`).

    >>> _key_value_groups("[a=1][exception=OSError: [Errno 28] No space]  ")
    [('a', '1'), ('exception', 'OSError: [Errno 28] No space')]
    """
    return [(key, text[start:end]) for _, (start, end), key in _key_value_spans(text)]


def _without_key_values(text: str) -> str:
    """What ``_KEY_VALUE.sub("", text)`` leaves, in linear time.

    >>> _without_key_values("Crashed. [exitCode=1][exception=OSError: [Errno 28] No space]")
    'Crashed. '
    """
    kept, last = [], 0
    for (start, end), _, _ in _key_value_spans(text):
        kept.append(text[last:start])
        last = end
    return "".join(kept) + text[last:]


def _key_value_spans(text: str) -> Iterator[tuple[tuple[int, int], tuple[int, int], str]]:
    """The matches of ``_KEY_VALUE`` in ``text``: each group's span, its value's span and its key. A
    value runs from its ``[key=`` to the first "]" after it that the next group or the end of the
    entry follows. The regex alone searches the rest of the text again from every ``[key=`` that no
    such "]" follows: quadratic on a long entry or line holding many of them (a hostile line of 24 KB
    took 2 s). tests/parsers/test_update_worker.py proves both readings equal."""
    ends = [m.start() for m in _KEY_END.finditer(text)]
    resume = 0
    for start in _KEY_START.finditer(text):
        if start.start() < resume:  # inside the group just read
            continue
        end = bisect.bisect_left(ends, start.end())
        if end == len(ends):  # no "]" closes it, nor any group after it
            return
        yield (start.start(), ends[end] + 1), (start.end(), ends[end]), start.group(1)
        resume = ends[end] + 1


def _exception_chain(rest: list[str]) -> tuple[tuple[str, str], ...]:
    """``(type, message)`` of each unindented exception line of a traceback, in order."""
    found = (_EXCEPTION_LINE.match(line) for line in rest)
    return tuple((m.group(1), (m.group(2) or "").strip()) for m in found if m)


def _timestamp(stamp: str) -> datetime | None:
    """UTC wall-clock time of ``2019-05-31 10:11:12`` or ``2024-07-17T06:57:48Z``; ``None`` if impossible.

    >>> _timestamp("2024-07-17T06:57:48Z"), _timestamp("2019-13-31 10:11:12")
    (datetime.datetime(2024, 7, 17, 6, 57, 48), None)
    """
    try:
        return datetime(int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10]),
                        int(stamp[11:13]), int(stamp[14:16]), int(stamp[17:19]))  # fmt: skip
    except ValueError:
        return None


def _parse_json(lines: list[str], source: str, host: str | None) -> Iterator[Event | ParseIssue]:
    for item in report.json_records(lines):
        if isinstance(item, tuple):
            line_no, count, reason = item
            text = lines[line_no - 1][: ParseIssue.TEXT_LIMIT]
            yield ParseIssue(source, line_no, reason, text, line_count=count, format=NAME, host=host)
        elif not isinstance(item.value, dict):
            text = item.raw[: ParseIssue.TEXT_LIMIT]
            reason = "a JSON value that is not a troubleshooter record"
            yield ParseIssue(source, item.line_no, reason, text, line_count=item.line_count, format=NAME, host=host)
        else:
            yield _json_event(item, source, host)


def _json_event(item: report.Record, source: str, host: str | None) -> Event:
    record = item.value
    result = str(record.get("CheckResult") or "")
    arguments = record.get("CheckResultMessageArguments") or []
    arguments = arguments if isinstance(arguments, list) else [arguments]
    rule_id = str(record.get("RuleId") or "")
    message = str(record.get("CheckResultMessage") or "")
    if not message:
        message = f"{rule_id} {result}".strip() + (": " + ", ".join(map(str, arguments)) if arguments else "")
    attrs = {"kind": TROUBLESHOOTER, "check_result": result}
    check = (report.known_check(rule_id), str(record.get("RuleGroupId") or "")) if rule_id else report.check_of(message)
    if check:
        attrs["check_id"], attrs["rule_group"] = check
    if record.get("CheckResultMessageId"):
        attrs["message_id"] = str(record["CheckResultMessageId"])
    if arguments:
        attrs["arguments"] = "; ".join(map(str, arguments))
    found = carried(message)
    return Event(
        format=NAME, source=source, line_no=item.line_no, raw=item.raw, message=message,
        line_count=item.line_count, host=host, component=TROUBLESHOOTER,
        level=_RESULT_LEVELS.get(result, "info"), hresult=found.hresults[0] if found.hresults else None,
        hresults=found.hresults, urls=found.urls, attrs=tuple(attrs.items()),
    )  # fmt: skip


__all__ = ["NAME", "DESCRIPTION", "EVENT_TYPE", "sniff", "parse"]
