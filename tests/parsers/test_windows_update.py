"""WindowsUpdate.log: sniffing, the golden samples, the real corpus, encodings, and properties."""

from __future__ import annotations

import json
import re
import string
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SAMPLES, corpus_files, shared_path
from umlogs.parsers import windows_update
from umlogs.parsers.event import Event, ParseIssue
from umlogs.pipeline.parse import parse_bytes, parse_file, FileResult

CLASSIC = "2018-10-02\t11:21:58:874\t 408\t1224\tPT\tWARNING: PTError: 0x80072ee2"
ETL = "2023/05/22 08:10:31.7433169 2944  3952  Handler         * START *   CBS  Install"


@pytest.mark.parametrize(
    "head",
    [
        [CLASSIC],
        [ETL],
        ["", "2024-04-11 12:48:04.6269606 1980  8444  DownloadManager Update: AC1C2DB8 is suspended!"],
        ["2018-10-02 11:21:58:874 408 1224 PT WARNING: PTError: 0x80072ee2"],  # tabs collapsed by a paste
    ],
)
def test_sniff_accepts_both_layouts(head):
    assert windows_update.sniff(head)


@pytest.mark.parametrize(
    "head",
    [
        [],
        ["2019-05-31 10:11:12 (8593)worker : Sandbox process started."],
        ["2019-05-31 10:11:12> Package manager was invoked using: apt-get"],
        ["System.InvalidOperationException: Unable to Register Machine"],
        ["\x00\x01\x02"],
    ],
)
def test_sniff_rejects_other_text(head):
    assert not windows_update.sniff(head)


def _golden_view(event: Event) -> dict:
    return {
        "line_no": event.line_no,
        "timestamp": event.timestamp.isoformat() if event.timestamp else None,
        "utc_offset": event.utc_offset,
        "pid": event.pid,
        "tid": event.tid,
        "component": event.component,
        "level": event.level,
        "hresults": list(event.hresults),
        "success_codes": list(event.success_codes),
        "kbs": list(event.kbs),
        "update_ids": list(event.update_ids),
        "caller_id": event.caller_id,
        "operation": event.operation,
        "operation_phase": event.operation_phase,
        "exit_code": event.exit_code,
        "attrs": dict(event.attrs),
        "message": event.message,
    }


@pytest.mark.parametrize("case", ["classic", "windows10"])
def test_golden_sample(case):
    result = parse_file(SAMPLES / "windows_update" / f"{case}.log")
    assert result.error is None and result.issues == []
    expected = json.loads((SAMPLES / "windows_update" / f"{case}.expected.json").read_text(encoding="utf-8"))
    assert [_golden_view(e) for e in result.events] == expected


def test_message_leading_spaces_are_kept_in_the_windows10_layout():
    line = "2022/06/29 13:33:05.6934798 9860  3184  Agent             * Online = Yes"
    (event,) = windows_update.parse([line], "x.log")
    assert event.message == "  * Online = Yes"


def test_classic_tz_banner_sets_the_offset_and_utc_time():
    lines = [
        "2021-08-28\t11:05:07:920\t 576\ta70\tMisc\t===========  Logging initialized (build: 7.6.7600.256, tz: +0530)  ===========",
        "2021-08-28\t11:05:08:000\t 576\ta70\tAgent\tWARNING: Exit code = 0x8024402C",
    ]
    first, second = windows_update.parse(lines, "x.log")
    assert first.utc_offset == second.utc_offset == 330
    assert second.timestamp_utc.isoformat() == "2021-08-28T05:35:08+00:00"
    assert second.hresult == "0x8024402C" and second.level == "warning"


def test_report_event_fields_are_named():
    line = (
        "2018-10-02\t10:55:26:049\t 408\t12cc\tReport\tREPORT EVENT: {0F08FAA9-349A-4C42-B6AC-719B27352AD4}\t"
        "2018-10-02 10:55:18:145+0300\t1\t148\t101\t{00000000-0000-0000-0000-000000000000}\t0\t80072ee2\t"
        "AutomaticUpdates\tFailure\tSoftware Synchronization\tWindows Update Client failed to detect with error 0x80072ee2."
    )
    (event,) = windows_update.parse([line], "x.log")
    attrs = dict(event.attrs)
    assert attrs["report_event_id"] == "148"
    assert attrs["report_status"] == "Failure"
    assert attrs["report_kind"] == "Software Synchronization"
    assert attrs["report_time"] == "2018-10-02 10:55:18:145+0300"
    assert event.hresults == ("0x80072EE2",) and event.level == "error" and event.caller_id == "AutomaticUpdates"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Send failed with hr = 80072ee2.", "0x80072EE2"),
        ("Last proxy send request failed with hr = 0x80190193, HTTP status code = 403", "0x80190193"),
        ("WinHttp: SendRequestToServerForFileInformation MakeRequest failed. error 0x80072ee2", "0x80072EE2"),
        ("GetCookie failure, error = 8024402c, soap client error = 5", "0x8024402C"),
        ("Failed to create registry key, hr:80070005", "0x80070005"),
        ("AU: Failed to initialize, hr=8024A000", "0x8024A000"),
        ("*FAILED* [8024402C] Sync of Updates", "0x8024402C"),
        ("  * WARNING: Exit code = 0x8024402C", "0x8024402C"),
        ("  - WARNING: Exit code = 0x00000000; Call error code = 0x80240022", "0x80240022"),
        ("MSI install returned resultMapped=80070643", "0x80070643"),
        ("FATAL: UH: 0x80070057: Invalid parameter", "0x80070057"),
    ],
)
def test_every_written_form_of_an_hresult(message, code):
    (event,) = windows_update.parse([f"2018-10-02\t11:21:58:874\t 408\t1224\tAgent\t{message}"], "x.log")
    assert event.hresult == code


@pytest.mark.parametrize(
    "message",
    [
        "Service 8B24B027-1DEE-BABB-9A95-3517DFB9C552 is not in sequential scan list",
        "Flags: 0X80010010 (cV = oE1Z.1)",
        "Validating signature for C:\\x.cab with dwProvFlags 0x00000080:",
        "Opened registry key 0x80000002",
        "Timer: 29A863E7-8609-4D1E-B7CD-5668F857F1DB, Expires 2023-05-22 08:10:31, not idle-only",
    ],
)
def test_hex_that_is_not_an_hresult_is_left_alone(message):
    (event,) = windows_update.parse([f"{ETL[:45]}Agent           {message}"], "x.log")
    assert event.hresults == ()


def test_success_codes_are_kept_apart():
    (event,) = windows_update.parse(["2021-08-28\t03:07:48:216\t 648\t13bc\tService\t**  END  **  Service: Service exit [Exit code = 0x240001]"], "x.log")
    assert event.hresults == () and event.success_codes == ("0x00240001",)
    assert (event.operation, event.operation_phase, event.exit_code) == ("service", "end", "0x00240001")


# --- the real corpus -----------------------------------------------------------------------------

# Written independently of the grammar: the forms the issue names, as a tester would grep for them.
_ERROR_FORMS = re.compile(
    r"(?:\bhr ?[=:] ?(?:0x)?|\berror =? ?(?:0x)?|\*FAILED\* \[|Exit code = 0x|Call error code = 0x|resultMapped=|FATAL: UH: 0x)"
    r"(8[0-9a-fA-F]{7})\b"
)


def test_corpus_parses_with_zero_issues_and_keeps_every_error_code():
    files = corpus_files("windows_update")
    assert len(files) >= 9
    for path in files:
        result = parse_file(path)
        assert result.error is None, path
        assert result.format == "windows_update"
        assert result.issues == [], (path, result.issues[:3])
        text = path.read_bytes().decode("utf-8-sig", errors="replace").split("\n")
        non_blank = [line for line in text if line.strip()]
        assert len(result.events) == len(non_blank), path
        for event in result.events:
            for code in _ERROR_FORMS.findall(event.raw):
                assert "0x" + code.upper() in event.hresults, (path, event.line_no, event.raw)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_reencoded_corpus_file_gives_the_same_events(encoding):
    path = shared_path("corpus", "windows_update", "classic-rsasbeih-huffman.log")
    data = path.read_bytes()
    original = parse_bytes(data, FileResult(source="x"))
    bom = b"\xfe\xff" if encoding == "utf-16-be" else b""
    other = parse_bytes(bom + data.decode("utf-8").encode(encoding), FileResult(source="x"))
    assert other.encoding != original.encoding
    assert other.events == original.events


# --- properties ----------------------------------------------------------------------------------

_COMPONENTS = st.text(alphabet=string.ascii_letters, min_size=1, max_size=20)
_MESSAGES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=200
).filter(lambda m: not m.startswith("REPORT EVENT: "))
_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))


@given(_TIMES, st.integers(0, 99999), st.integers(0, 0xFFFF), _COMPONENTS, _MESSAGES)
def test_generated_classic_lines_round_trip(when, pid, tid, component, message):
    message = message.lstrip(" ") if message.strip() else "x"
    line = f"{when:%Y-%m-%d}\t{when:%H:%M:%S}:{when.microsecond // 1000:03d}\t{pid:>4}\t{tid:x}\t{component}\t{message}"
    (event,) = windows_update.parse([line], "x.log")
    assert isinstance(event, Event)
    assert (event.pid, event.tid, event.component, event.message) == (pid, tid, component, message)
    assert event.timestamp == when.replace(microsecond=when.microsecond // 1000 * 1000)


@given(_TIMES, st.integers(0, 999999), st.integers(0, 999999), _COMPONENTS, _MESSAGES)
def test_generated_windows10_lines_round_trip(when, pid, tid, component, message):
    message = message if message.strip() else "x"
    ticks = f"{when.microsecond:06d}0"
    line = f"{when:%Y/%m/%d %H:%M:%S}.{ticks} {pid:<5} {tid:<5} {component:<15} {message}"
    (event,) = windows_update.parse([line], "x.log")
    assert isinstance(event, Event)
    assert (event.pid, event.tid, event.component) == (pid, tid, component)
    assert event.message == message.rstrip("\r")
    assert event.timestamp == when


@settings(max_examples=300)
@given(st.lists(st.text(max_size=120), max_size=20))
def test_arbitrary_text_never_raises_and_every_line_is_accounted_for(lines):
    lines = [line.replace("\n", " ") for line in lines]
    out = list(windows_update.parse(lines, "x.log"))
    assert all(isinstance(o, (Event, ParseIssue)) for o in out)
    assert len(out) == sum(1 for line in lines if line.strip())
