"""The Linux Update Management troubleshooter's report, for :mod:`umlogs.parsers.update_worker`: which
check a result line belongs to, and the records of the report's JSON form.

The checks are the Linux ones of ../shared/reference/troubleshooter_checks.tsv (ids and groups are the
script's own; the id ``Linux.HybridWorkerPackgeCheck`` is spelt as the script spells it). A text report
names no check, so the check is recognised from the words of its result line, passed or failed:

>>> check_of("OMS agent is not running")
('Linux.OMSAgentStatusCheck', 'servicehealth')
>>> check_of("TCP test for {eus2-jobruntimedata-prod-su1.azure-automation.net} (port 443) failed")
('Linux.JRDSConnectivityCheck', 'connectivity')
>>> check_of("TCP test for {0000.ods.opinsights.azure.            com} (port 443) succeeded")[0]
'Linux.LogAnalyticsConnectivityCheck1'
>>> check_of("Machine Information:   Static hostname: LinuxVM2") is None
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from umlogs.parsers.event import without_surrogates

# (check id, rule group, what its result line says, passed or failed). First match wins, so the
# TCP tests, whose lines differ only by endpoint, come first.
_CHECKS: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (check, group, re.compile(pattern, re.IGNORECASE))
    for check, group, pattern in (
        ("Linux.AgentServiceConnectivityCheck", "connectivity",
         r"registration \(agent service\) endpoint|TCP test for \{[^}]*(?:agentservice|agentsvc)"),
        ("Linux.JRDSConnectivityCheck", "connectivity", r"\(JRDS\) endpoint|TCP test for \{[^}]*jobruntimedata"),
        ("Linux.LogAnalyticsConnectivityCheck1", "connectivity", r"TCP test for \{[^}]*\.ods\.opinsights"),
        ("Linux.LogAnalyticsConnectivityCheck2", "connectivity", r"TCP test for \{[^}]*\.oms\.opinsights"),
        ("Linux.OperatingSystemCheck", "prerequisites", r"operating system version"),
        ("Linux.DmidecodeCheck", "prerequisites", r"dmidecode|asset tag"),
        ("Linux.OMSAgentInstallCheck", "servicehealth", r"(?:OMS|monitoring) agent is (?:not )?installed"),
        ("Linux.OMSAgentStatusCheck", "servicehealth", r"(?:OMS|monitoring) agent is (?:not )?running"),
        ("Linux.MultiHomingCheck", "servicehealth", r"registered with (?:more than one )?log analytics workspace"),
        ("Linux.HybridWorkerPackgeCheck", "servicehealth", r"hybrid worker package"),
        ("Linux.HybridWorkerStatusCheck", "servicehealth", r"hybrid worker is (?:not )?running"),
        ("Linux.ProxyCheck", "connectivity", r"\bproxy\b"),
        ("Linux.ImdsCheck", "connectivity", r"\bIMDS\b"),
        ("Linux.InternetConnectionCheck", "connectivity", r"(?:not )?connected to (?:the )?internet"),
        ("Linux.ReposAccessCheck", "connectivity", r"repositor(?:y|ies)"),
    )
)  # fmt: skip
_KNOWN = {check: group for check, group, _ in _CHECKS}
# A report wrapped to a fixed width leaves runs of spaces inside words ("port 4            43").
_WRAP_GAP = re.compile(r" {4,}")


def check_of(message: str) -> tuple[str, str] | None:
    """``(check id, rule group)`` of a troubleshooter result line, or ``None`` when no check says this."""
    text = _WRAP_GAP.sub("", message)
    return next(((check, group) for check, group, pattern in _CHECKS if pattern.search(text)), None)


def known_check(rule_id: str) -> str:
    """A JSON record's ``RuleId`` in the text report's spelling (``Linux.`` in front when the script's
    Linux checks know it without).

    >>> known_check("OMSAgentStatusCheck"), known_check("PatchExtensionCheck")
    ('Linux.OMSAgentStatusCheck', 'PatchExtensionCheck')
    """
    return f"Linux.{rule_id}" if f"Linux.{rule_id}" in _KNOWN else rule_id


@dataclass(frozen=True, slots=True)
class Record:
    """One JSON object of the report: where it starts, how many lines it owns, its text and value."""

    line_no: int
    line_count: int
    raw: str
    value: object


def looks_like_json(lines: list[str]) -> bool:
    """True when the first non-blank line opens a JSON array or object.

    >>> looks_like_json(["", '[{"RuleId": "ProxyCheck"'])
    True
    """
    first = next((line.lstrip() for line in lines if line.strip()), "")
    return first[:1] in ("[", "{")


def json_records(lines: list[str]) -> Iterator[Record | tuple[int, int, str]]:
    """The objects of a JSON report, in order: a whole array, one object per line, or objects one
    after another. Every non-blank line is owned by exactly one item: a line is owned by the first
    object that touches it, and brackets and commas between objects by the object next to them. Text
    that is not JSON comes back as ``(line_no, line_count, reason)`` covering the lines it spans.

    >>> [(r.line_no, r.line_count, r.value["RuleId"]) for r in json_records(['[{"RuleId": "A"},', ' {"RuleId": "B"}]'])]
    [(1, 1, 'A'), (2, 1, 'B')]
    >>> list(json_records(['[{"RuleId": "A"}, oops']))[-1]
    (1, 0, 'not a JSON value at column 19')
    >>> list(json_records(["[", "]"]))
    [(1, 2, 'brackets without any JSON record')]
    """
    text = "\n".join(lines)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    decoder = json.JSONDecoder()
    owned = 0  # lines 1..owned already belong to an item
    pos = 0
    pending: Record | None = None
    while True:
        while pos < len(text) and (text[pos].isspace() or text[pos] in "[],"):
            pos += 1
        if pos >= len(text):
            break
        first = _line_of(starts, pos)
        try:
            value, end = decoder.raw_decode(text, pos)
            value = without_surrogates(value)  # a "\ud800" escape decodes to text Arrow cannot store
        except (json.JSONDecodeError, RecursionError):
            if pending:
                yield pending
                pending = None
            column = pos - starts[first - 1] + 1
            yield (first, _count(lines, owned + 1, len(lines)), f"not a JSON value at column {column}")
            return
        last = _line_of(starts, end - 1)
        if pending:
            yield pending
        # Lines not yet owned up to this object's last line (an opening "[" or a lone "," included).
        pending = Record(first, _count(lines, owned + 1, last), text[pos:end], value)
        owned = max(owned, last)
        pos = end
    if pending is None:
        if _count(lines, 1, len(lines)):
            first = next(n for n, line in enumerate(lines, start=1) if line.strip())
            yield (first, _count(lines, 1, len(lines)), "brackets without any JSON record")
        return
    if pending:
        # The closing brackets after the last object belong to it.
        tail = _count(lines, owned + 1, len(lines))
        yield Record(pending.line_no, pending.line_count + tail, pending.raw, pending.value)


def _line_of(starts: list[int], pos: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi - 1:
        mid = (lo + hi) // 2
        if starts[mid] <= pos:
            lo = mid
        else:
            hi = mid
    return lo + 1


def _count(lines: list[str], first: int, last: int) -> int:
    """Non-blank lines among lines ``first..last`` (1-based, inclusive)."""
    return sum(1 for line in lines[max(first, 1) - 1 : last] if line.strip())
