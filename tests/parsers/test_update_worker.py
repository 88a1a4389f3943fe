"""Linux update worker logs: sniffing per kind, the golden sample, the real corpus, continuation
lines, the JSON report, and properties."""

from __future__ import annotations

import itertools
import json
import os
import string
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SAMPLES
from umlogs import parsers
from umlogs.parsers import update_worker
from umlogs.parsers.event import Event, ParseIssue
from umlogs.pipeline.parse import parse_file

CORPUS = Path(__file__).parents[2].parent / "shared" / "corpus" / "update_worker"
SAMPLE_DIR = SAMPLES / "update_worker"
WORKER = "2019-05-31 10:11:12 (8593)worker : Sandbox process started. [sandboxId=6c1f0d2e][pId=9001]"
RUNBOOK_OLD = "2019-06-03 02:00:41> Package manager was invoked using: sudo apt-get -q update"
RUNBOOK_NEW = "2024-07-17T06:57:48Z> [APM] Refreshing local repo..."
CHECK = "Passed: Hybrid worker is running"
JSON_HEAD = ['[{"RuleId": "ProxyCheck", "RuleGroupId": "connectivity", "CheckResult": "Passed"}]']


def _parse(lines: list[str]) -> tuple[list[Event], list[ParseIssue]]:
    items = list(update_worker.parse(lines, "test.log"))
    return [i for i in items if isinstance(i, Event)], [i for i in items if isinstance(i, ParseIssue)]


def _accounted(lines: list[str], items) -> bool:
    blank = sum(1 for line in lines if not line.strip())
    return sum(i.line_count for i in items) + blank == len(lines)


# --- sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [[WORKER], [RUNBOOK_OLD], [RUNBOOK_NEW], ["", CHECK], ["Debug: Machine Information:   Static hostname: vm1"],
     ["Failed: OMS agent is not running"], JSON_HEAD, ["[", '  {"RuleId": "ImdsCheck",', '   "CheckResult": "Failed"}']],
    ids=["worker", "runbook-old", "runbook-new", "check", "debug", "failed", "json", "json-pretty"],
)  # fmt: skip
def test_sniff_accepts_each_kind(head):
    assert update_worker.sniff(head)
    assert parsers.detect(head) is update_worker


@pytest.mark.parametrize(
    "head",
    [[], [""], ["hello world"], ["2021/07/13 10:22:58.9553434 3696  8172  Shared          InitializeSus"],
     ["\tDEBUG: Invoking package manager using: sudo apt-get -q update"], ["|\tReading package lists..."],
     ['[{"name": "not a troubleshooter record"}]'], ["2019-05-31 10:11:12 worker : no pid"], ["Passed the salt"]],
)  # fmt: skip
def test_sniff_rejects_other_text(head):
    assert not update_worker.sniff(head)


def test_windows_update_lines_are_not_taken():
    assert parsers.detect(["2018-10-02\t11:21:58:874\t 408\t1224\tPT\tWARNING: PTError: 0x80072ee2"]).NAME == "windows_update"


# --- golden sample and corpus ---------------------------------------------------------------------


def test_golden_sample():
    lines = (SAMPLE_DIR / "omsupdatemgmt-yum.log").read_text(encoding="utf-8").splitlines()
    expected = json.loads((SAMPLE_DIR / "omsupdatemgmt-yum.expected.json").read_text(encoding="utf-8"))
    events, issues = _parse(lines)
    assert issues == []
    actual = [
        {"line_no": e.line_no, "line_count": e.line_count, "timestamp": e.timestamp.isoformat(),
         "timestamp_text": e.timestamp_text, "utc_offset": e.utc_offset, "pid": e.pid, "component": e.component,
         "level": e.level, "message": e.message, "hresults": list(e.hresults), "attrs": dict(e.attrs)}
        for e in events
    ]  # fmt: skip
    assert actual == expected


def _corpus(name: str) -> Path:
    path = CORPUS / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must run with ../shared beside the checkout")
        pytest.skip(f"{path} is missing")
    return path


def test_corpus_patch_log_parses_without_issues():
    result = parse_file(_corpus("linux-patch-core-issue262.log"))
    assert (result.format, result.issues, result.accounted) == ("update_worker", [], True)
    assert [e.line_no for e in result.events] == [1, 3, 4, 5]
    first, invoked, code, output = result.events
    assert first.line_count == 2 and dict(first.attrs)["package_manager"] == "apt"
    assert dict(first.attrs)["Sources"].endswith(".list")
    assert (invoked.level, code.level) == ("error", "warning")
    assert dict(code.attrs)["return_code"] == "100" and dict(code.attrs)["package_manager"] == "apt"
    assert dict(output.attrs)["output"].splitlines()[-1] == "E: The list of sources could not be read."
    assert all(e.utc_offset == 0 and e.timestamp == datetime(2024, 7, 17, 6, 57, 48) for e in result.events)


def test_corpus_troubleshooter_parses_without_issues():
    result = parse_file(_corpus("troubleshooter-docs-update-agent-issues-linux.log"))
    assert (result.format, result.issues, result.accounted) == ("update_worker", [], True)
    results = [dict(e.attrs)["check_result"] for e in result.events]
    assert results.count("Passed") == 12 and results.count("Debug") == 2
    checks = [dict(e.attrs).get("check_id") for e in result.events if dict(e.attrs)["check_result"] == "Passed"]
    assert checks[:3] == ["Linux.OperatingSystemCheck", "Linux.OMSAgentInstallCheck", "Linux.OMSAgentStatusCheck"]
    assert "Linux.LogAnalyticsConnectivityCheck1" in checks  # found across the report's wrapped "azure.   com"
    debug = result.events[0]
    assert (debug.level, debug.line_count) == ("debug", 9)


@pytest.mark.parametrize("path", sorted(p.name for p in SAMPLE_DIR.iterdir() if p.suffix in (".log", ".json")
                                         and not p.name.endswith(".expected.json")))  # fmt: skip
def test_every_sample_parses_without_issues(path):
    result = parse_file(SAMPLE_DIR / path)
    assert (result.format, result.issues, result.accounted, result.error) == ("update_worker", [], True, None)


# --- continuation lines ---------------------------------------------------------------------------


def test_traceback_is_one_event():
    events, issues = _parse((SAMPLE_DIR / "worker.log").read_text(encoding="utf-8").splitlines())
    crash = next(e for e in events if "Sandbox process crashed" in e.message)
    assert (crash.line_no, crash.line_count, crash.level, crash.component) == (8, 6, "error", "worker")
    assert crash.raw.count("\n") == 5 and crash.message.endswith("No space left on device]")
    assert dict(crash.attrs)["exitCode"] == "1"
    assert dict(crash.attrs)["exception"].startswith("Traceback (most recent call last):\n  File ")
    assert crash.exception_chain == (("OSError", "[Errno 28] No space left on device"),)
    assert issues == []


def test_worker_levels_keys_and_out_of_order_lines():
    events, _ = _parse((SAMPLE_DIR / "worker.log").read_text(encoding="utf-8").splitlines())
    by_line = {e.line_no: e for e in events}
    assert by_line[3].level == "debug" and by_line[19].level == "warning" and by_line[1].level == "info"
    assert dict(by_line[15].attrs)["status"] == "401" and by_line[15].level == "error"
    assert by_line[20].timestamp < by_line[19].timestamp  # a background thread's line, kept as written
    assert by_line[5].line_count == 3  # raw sandbox stdout belongs to the runbook entry above it


def test_terminal_exception_is_fatal():
    events, _ = _parse(["2019-05-31 10:20:00 (8593)worker : Worker safe loop terminal exception. [exception=boom]"])
    assert events[0].level == "fatal"


def test_pipe_output_lines_attach_to_their_entry():
    lines = ["2019-06-03 02:03:52> Output from package manager:", "|\tHit:1 http://a bionic InRelease",
             "|\tE: one |\tE: two", "<End of output>", "2019-06-03 02:03:53> next"]  # fmt: skip
    events, issues = _parse(lines)
    assert issues == [] and [e.line_count for e in events] == [4, 1]
    assert dict(events[0].attrs)["output"] == "Hit:1 http://a bionic InRelease\nE: one\nE: two"
    assert events[0].raw == "\n".join(lines[:4])


def test_return_code_knows_its_package_manager():
    lines = ["2019-06-03 02:00:00> Package manager was invoked using: sudo zypper --non-interactive refresh",
             "2019-06-03 02:00:09> Return code from package manager: 103",
             "2019-06-03 02:00:10> Time Remaining: 00:00:00, Cutoff time: 2019-06-03 02:00:00 [Out of time!]"]  # fmt: skip
    events, _ = _parse(lines)
    assert dict(events[1].attrs) == {"kind": "omsupdatemgmt", "return_code": "103", "package_manager": "zypper",
                                     "command": "sudo zypper --non-interactive refresh"}  # fmt: skip
    assert dict(events[2].attrs)["out_of_time"] == "true" and "command" not in dict(events[2].attrs)


def test_lines_that_cannot_be_placed_are_issues():
    lines = ["\tDEBUG: orphan", RUNBOOK_OLD, "not a continuation", "|\tbut this is one"]
    items = list(update_worker.parse(lines, "x.log"))
    assert [type(i).__name__ for i in items] == ["ParseIssue", "Event", "ParseIssue", "ParseIssue"]
    assert items[0].reason == "no entry above this continuation line" and items[2].reason == "not a omsupdatemgmt line"
    assert _accounted(lines, items)


def test_troubleshooter_continuation_and_failed_check():
    lines = ["Failed: Hybrid worker is not running.", "    current_mof file is missing", "", "Passed: x", "stray"]
    items = list(update_worker.parse(lines, "t.log"))
    failed = items[0]
    assert (failed.level, failed.line_count, dict(failed.attrs)["check_id"]) == ("error", 2, "Linux.HybridWorkerStatusCheck")
    assert isinstance(items[-1], ParseIssue) and _accounted(lines, items)


# --- the JSON report ------------------------------------------------------------------------------


def test_json_report_gives_one_event_per_record():
    lines = (SAMPLE_DIR / "troubleshooter.json").read_text(encoding="utf-8").splitlines()
    events, issues = _parse(lines)
    assert issues == [] and len(events) == 8 and _accounted(lines, events)
    first = dict(events[0].attrs)
    assert first["check_id"] == "Linux.OperatingSystemCheck" and first["check_result"] == "Failed"
    assert first["arguments"] == "Debian GNU/Linux 8 (jessie)" and events[0].level == "error"
    assert (events[0].line_no, events[-1].level) == (2, "info")


def test_json_on_one_line_and_broken_json():
    line = json.dumps([{"RuleId": "ImdsCheck", "CheckResult": "Failed"}, {"RuleId": "ProxyCheck", "CheckResult": "Passed"}])
    events, _ = _parse([line])
    assert [dict(e.attrs)["check_id"] for e in events] == ["Linux.ImdsCheck", "Linux.ProxyCheck"]
    assert sum(e.line_count for e in events) == 1 and events[0].event_id != events[1].event_id
    broken = ['[{"RuleId": "ImdsCheck", "CheckResult": "Failed"},', "  {oops", "]"]
    items = list(update_worker.parse(broken, "b.json"))
    assert isinstance(items[-1], ParseIssue) and _accounted(broken, items)



def test_a_text_log_is_read_as_a_stream():
    """Events come out while lines still come in: the first entries are yielded long before the
    last line is read (memory does not grow with the log)."""
    def lines():
        yield ""
        yield from itertools.repeat(WORKER, 1000)
        raise AssertionError("the parse read the whole log before yielding")

    events = list(itertools.islice(update_worker.parse(lines(), "long.log"), 3))
    assert [e.line_no for e in events] == [2, 3, 4]
    # A JSON report after blank lines is still read as one.
    events, issues = _parse(["", "  ", *JSON_HEAD])
    assert issues == [] and [e.line_no for e in events] == [3]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="[]=ab_.-1 \n\t", max_size=60))
def test_key_value_groups_are_the_regex_reading(text):
    """The linear reading of ``[key=value]`` groups finds, and removes, what the regex that defines
    them finds and removes."""
    assert update_worker._key_value_groups(text) == update_worker._KEY_VALUE.findall(text)
    assert update_worker._without_key_values(text) == update_worker._KEY_VALUE.sub("", text)

# --- properties -----------------------------------------------------------------------------------

_STAMPS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(lambda d: d.replace(microsecond=0))
_COMPONENTS = st.sampled_from(["worker", "sandbox", "runbook", "hybridworker"])
_MESSAGES = st.text(string.ascii_letters + string.digits + " .,;'\"()/=-_", min_size=1, max_size=80).filter(
    lambda m: m[0] not in " [" and m.strip() == m
)


@given(_STAMPS, st.integers(1, 4_000_000), _COMPONENTS, _MESSAGES)
def test_worker_lines_round_trip(stamp, pid, component, message):
    line = f"{stamp:%Y-%m-%d %H:%M:%S} ({pid}){component} : {message}"
    (event,) = update_worker.parse([line], "w.log")
    assert (event.timestamp, event.pid, event.component, event.message, event.raw) == (stamp, pid, component, message, line)
    assert event.utc_offset == 0


@given(_STAMPS, st.booleans(), st.sampled_from(["", "[ERROR] ", "WARNING:- ", "[APM] "]), _MESSAGES)
def test_runbook_lines_round_trip(stamp, iso, tag, message):
    text = f"{stamp:%Y-%m-%dT%H:%M:%SZ}" if iso else f"{stamp:%Y-%m-%d %H:%M:%S}"
    (event,) = update_worker.parse([f"{text}> {tag}{message}"], "o.log")
    assert (event.timestamp, event.timestamp_text, event.message, event.component) == (stamp, text, tag + message, "omsupdatemgmt")
    assert event.level == {"[ERROR] ": "error", "WARNING:- ": "warning"}.get(tag, event.level)


@given(st.sampled_from(["Passed", "Failed", "PassedWithWarning", "Debug", "Information"]), _MESSAGES)
def test_check_lines_round_trip(result, message):
    (event,) = update_worker.parse([f"{result}: {message}"], "t.log")
    assert (dict(event.attrs)["check_result"], event.message, event.timestamp) == (result, message, None)


_LINE_PARTS = st.sampled_from([WORKER, RUNBOOK_NEW, CHECK, "\tDEBUG: x", "|\tout", "  indented", "[", "{", "]", "", "<End of output>"])


@settings(max_examples=300)
@given(st.lists(st.one_of(st.text(max_size=100), _LINE_PARTS), max_size=25))
def test_arbitrary_text_never_raises_and_every_line_is_accounted(lines):
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    items = list(update_worker.parse(lines, "fuzz.log"))
    assert _accounted(lines, items)
    update_worker.sniff(lines)
