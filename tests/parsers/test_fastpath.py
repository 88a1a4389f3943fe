"""The fast path against the grammar of record: for any input, the DuckDB fast path and the pure
Lark parse must yield exactly the same events and parse issues (the differential test of issue 8)."""

from __future__ import annotations

import contextlib
import string
from datetime import datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SAMPLES, corpus_files
from umlogs.parsers import windows_update
from umlogs.parsers.event import ParseIssue
from umlogs.parsers.fastpath import line_regex
from umlogs.parsers.grammar import parser
from umlogs.pipeline import fastparse
from umlogs.pipeline import parse as parse_stage
from umlogs.pipeline.fastparse import parse_chunk
from umlogs.pipeline.parse import parse_file
from umlogs.pipeline.store import events_table


def lark_view(lines, utc_offset=None):
    out = list(windows_update.parse(lines, "x.log", host="h1", utc_offset=utc_offset))
    events = events_table(o for o in out if not isinstance(o, ParseIssue)).to_pylist()
    return events, [o for o in out if isinstance(o, ParseIssue)]


def fast_view(lines, utc_offset=None):
    chunk = parse_chunk(windows_update, lines, source="x.log", host="h1", utc_offset=utc_offset)
    return chunk.events.to_pylist(), chunk.issues


def assert_same(lines, utc_offset=None):
    """The fast path gives Lark's events and issues, however it reads new messages' features: by SQL
    from a string literal (as for a few hundred kB of them) or from a table (as for more), or by
    Lark from their lines (as for a few messages)."""
    lark_events, lark_issues = lark_view(lines, utc_offset)
    for how in ("literal", "table", "lark"):
        with features_read_by(how):
            fast_events, fast_issues = fast_view(lines, utc_offset)
        assert fast_issues == lark_issues
        assert len(fast_events) == len(lark_events)
        for slow, fast in zip(lark_events, fast_events):
            assert fast == slow, {k: (slow[k], fast[k]) for k in slow if slow[k] != fast[k]}


@contextlib.contextmanager
def features_read_by(how: str):
    """New messages' features read (no matter how few or many) by the features query from a
    ``literal`` or a ``table``, or by ``lark``."""
    before = fastparse.LARK_FEATURES, fastparse.LITERAL_BYTES
    fastparse.LARK_FEATURES = 10**9 if how == "lark" else 0
    fastparse.LITERAL_BYTES = 0 if how == "table" else 10**12
    try:
        yield
    finally:
        fastparse.LARK_FEATURES, fastparse.LITERAL_BYTES = before


def test_the_regex_is_built_from_the_grammar_terminals():
    lr = line_regex("windows_update")
    lark = parser("windows_update")
    for group in lr.groups:
        terminal = group.split("__")[1]
        assert lark.get_terminal(terminal).pattern.to_regexp() in lr.pattern
    assert "REPORT EVENT" in lr.guard and "REPORT EVENT" not in lr.pattern


@pytest.mark.parametrize("name", ["classic.log", "windows10.log"])
def test_samples_are_equal(name):
    lines = (SAMPLES / "windows_update" / name).read_text(encoding="utf-8").splitlines()
    assert_same(lines)


def test_whole_corpus_is_equal_file_by_file():
    for path in corpus_files("windows_update"):
        slow = parse_file(path, fast=False)
        fast = parse_file(path, fast=True)
        assert fast.issues == slow.issues, path
        assert fast.table().to_pylist() == slow.table().to_pylist(), path
        assert (fast.lines, fast.blank, fast.encoding) == (slow.lines, slow.blank, slow.encoding)


def test_chunks_in_worker_threads_equal_one_pass(tmp_path, monkeypatch):
    """Offsets announced by a banner carry across chunk boundaries, in DuckDB's threads too, and
    features read for several chunks at once (a number of lines no chunk boundary divides) land on
    their lines."""
    path = next(p for p in corpus_files("windows_update") if p.name.startswith("classic"))
    monkeypatch.setattr(parse_stage, "CHUNK_LINES", 1000)
    monkeypatch.setattr(fastparse, "FEATURE_LINES", 2500)
    pooled = parse_file(path, workers=2).table().to_pylist()
    monkeypatch.setattr(parse_stage, "CHUNK_LINES", 10**9)
    single = parse_file(path, workers=1).table().to_pylist()
    assert pooled == single
    assert {row["utc_offset"] for row in pooled} - {None}


@given(st.lists(st.text("ab.\u00e9", max_size=5), max_size=12), st.text("ab.\u00e9", min_size=1, max_size=3), st.integers(0, 3),
       st.sampled_from([pa.string(), pa.large_string()]))  # fmt: skip
def test_lines_holding_a_text_are_those_python_finds(lines, text, skip, kind):
    """The banner search over the lines' bytes finds the lines Python's ``in`` finds, in slices too,
    for 32- and 64-bit offsets, and a match running from one line into the next is none."""
    array = pa.array(lines, kind).slice(min(skip, len(lines)))
    assert fastparse._holding(array, text) == [i for i, line in enumerate(lines[min(skip, len(lines)) :]) if text in line]


def test_a_parse_left_halfway_leaves_the_next_whole():
    """A consumer that stops reading a file's chunks halfway cuts its line query short: the
    thread's DuckDB connections are closed, and the next parse in the thread gives what it should,
    by SQL or by Lark."""
    lines = (SAMPLES / "windows_update" / "classic.log").read_text(encoding="utf-8").splitlines()
    chunks = [pa.array(lines[i : i + 10], pa.string()) for i in range(0, len(lines), 10)]
    parsed = fastparse.parse_chunks(windows_update, chunks, source="x.log", rows=10)
    assert next(parsed).events.num_rows
    parsed.close()
    assert "databases" not in fastparse._local.__dict__
    assert_same(lines)
    assert fastparse._local.databases


def test_known_messages_are_reused_and_start_afresh_when_full(monkeypatch):
    """A thread keeps the features of the messages it has met: a second pass over the same lines reads
    them all from there, and the result is the same; past the limit, the set starts afresh."""
    lines = (SAMPLES / "windows_update" / "classic.log").read_text(encoding="utf-8").splitlines()
    monkeypatch.setattr(fastparse._local, "known", None, raising=False)
    monkeypatch.setattr(fastparse, "CACHED_MESSAGES", 10**6)
    assert_same(lines)
    known = set(fastparse._local.known.messages.to_pylist())
    asked: list[list[bool]] = []
    real = fastparse._query_features
    monkeypatch.setattr(fastparse, "_query_features", lambda parser, table: (asked.append(table.column("_guarded").to_pylist()), real(parser, table))[1])
    assert_same(lines)
    assert len(known) > 20 and set(fastparse._local.known.messages.to_pylist()) == known
    # by SQL (once from a literal, once from a table), the REPORT EVENT records only: every other message was known
    assert len(asked) == 2 and all(all(guarded) for guarded in asked)
    full = fastparse._local.known
    some = fastparse._Known(pa.concat_arrays([full.messages[:3], pa.array(["not in the sample"])]), full.features.take([0, 1, 2, 0]))
    monkeypatch.setattr(fastparse._local, "known", some)
    monkeypatch.setattr(fastparse, "CACHED_MESSAGES", 5)
    assert_same(lines)
    assert set(fastparse._local.known.messages.to_pylist()) == known  # "not in the sample" is gone


# --- generated input -----------------------------------------------------------------------------

_WORDS = st.sampled_from([
    "WARNING:", "FATAL:", "*FAILED*", "hr =", "hr=", "hr:", "error", "error =", "Exit code =", "Call error code =",
    "resultMapped=", "Flags:", "registry key", "0x80072ee2", "80072EE2", "0x240001", "0x00000000", "0X8024402C",
    "[8024402C]", "KB2267602", "KB 5034441", "F398026B-5FFE-4881-8F09-7C2562D4EF39.203",
    "{0F08FAA9-349A-4C42-B6AC-719B27352AD4}.200", "855E8A7C-ECB4-4CA3-B045-1DFA50104289",
    "http://wsus01.contoso.local:8530/ClientWebService/client.asmx", "CallerId = UpdateOrchestrator,",
    "ClientId = <<PROCESS>>: taskhostw.exe", "(cV = abc.1)", "Logging initialized (build: 7.6.7601.23806, tz: -0330)",
    "Logging initialized (build: 1, tz: +0530)", "REPORT EVENT:", "* START *", "* END *", "** START **", "## END ##",
    "-- START --", ":: END ::", "+++++++++++", "Finding updates", "Install", "Download", "Service", "é", "İ", "\u00a0", "\t",
])  # fmt: skip
_MESSAGES = st.lists(st.one_of(_WORDS, st.text(max_size=12)), max_size=12).map(" ".join).map(
    lambda m: m.replace("\n", " ").replace("\r", " ")
)
_TIMES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))


_GUID = st.uuids().map(lambda u: "{" + str(u).upper() + "}")
_FIELD = st.one_of(st.just(""), st.sampled_from(["AutomaticUpdates", "Success", "Failure", "Content Download"]), st.text(max_size=8))


@st.composite
def _records(draw):
    """A REPORT EVENT record: well formed, with fields left empty, or cut short."""
    fields = [
        draw(_GUID), f"{draw(_TIMES):%Y-%m-%d %H:%M:%S}:145+0300", str(draw(st.integers(0, 9))), str(draw(st.integers(0, 999))),
        str(draw(st.integers(0, 999))), draw(st.one_of(_GUID, st.just("{00000000-0000-0000-0000-000000000000}"))),
        str(draw(st.integers(0, 300))), draw(st.sampled_from(["0", "80072ee2", "8024402C", "240001", "123456789", "g"])),
        draw(_FIELD), draw(_FIELD), draw(_FIELD),
    ]  # fmt: skip
    fields = [f.replace("\t", " ").replace("\n", " ").replace("\r", " ") for f in fields]
    tail = draw(st.sampled_from(["", "\t", "\tfailed with error 0x80072ee2.", "\ta\tb"]))
    keep = draw(st.one_of(st.just(len(fields)), st.integers(1, len(fields))))
    return "\t".join(fields[:keep]) + (tail if keep == len(fields) else "")


@st.composite
def _lines(draw):
    when = draw(_TIMES)
    message = draw(_MESSAGES)
    component = draw(st.text(alphabet=string.ascii_letters + "(", min_size=1, max_size=18))
    kind = draw(st.sampled_from(["classic", "collapsed", "etl", "etl-dash", "text", "mutated", "report"]))
    if kind in ("classic", "collapsed"):
        sep = "\t" if kind == "classic" else " "
        line = (f"{when:%Y-%m-%d}{sep}{when:%H:%M:%S}:{when.microsecond // 1000:03d}{sep}{draw(st.integers(0, 99999)):>4}"
                f"{sep}{draw(st.integers(0, 0xFFFFFFFF)):x}{sep}{component}{sep}{message}")  # fmt: skip
    elif kind.startswith("etl"):
        date = f"{when:%Y/%m/%d}" if kind == "etl" else f"{when:%Y-%m-%d}"
        line = (f"{date} {when:%H:%M:%S}.{when.microsecond:06d}{draw(st.integers(0, 9))} {draw(st.integers(0, 10**10)):<5} "
                f"{draw(st.integers(0, 10**10)):<5} {component:<15} {message}")  # fmt: skip
    elif kind == "report":
        line = f"{when:%Y-%m-%d}\t{when:%H:%M:%S}:123\t 408\t1224\tReport\tREPORT EVENT: " + draw(_records())
    elif kind == "text":
        line = message
    else:
        base = f"{when:%Y-%m-%d}\t{when:%H:%M:%S}:123\t 408\t1224\t{component}\t{message}"
        cut = draw(st.integers(0, len(base)))
        line = base[:cut] + draw(st.text(max_size=5)).replace("\n", "") + base[cut:]
    return line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_lines(), min_size=1, max_size=25), st.one_of(st.none(), st.integers(-720, 840)))
def test_generated_logs_are_equal(lines, utc_offset):
    assert_same(lines, utc_offset)


_YEARS, _MONTHS, _DAYS = ("0000", "0001", "1900", "2000", "2023", "2024", "9999"), ("00", "01", "02", "04", "12", "13", "99"), ("00", "01", "28", "29", "30", "31", "32", "99")


def test_every_kind_of_date_and_time_of_day_is_read_as_lark_reads_it():
    """Stamps the generated logs rarely hold: impossible days and times (month 13, 30 February, hour
    24, second 60), year 0, dates whose two separators differ, in both layouts."""
    dates = [f"{y}{a}{m}{b}{d}" for y in _YEARS for m in _MONTHS for d in _DAYS for a in "-/" for b in "-/"]
    times = [f"{h}:{m}:{s}" for h in ("00", "09", "23", "24", "25", "99") for m in ("00", "59", "60", "99") for s in ("00", "59", "60", "99")]
    stamps = [(d, "11:21:58") for d in dates] + [(d, t) for d in ("2024-02-29", "2023/12/31") for t in times]
    lines = [line for d, t in stamps for line in (f"{d}\t{t}:874\t 408\t1224\tAgent\tmessage",
                                                  f"{d} {t}.7433169 1224  5678  Agent           message")]  # fmt: skip
    assert_same(lines)


def test_a_message_is_the_rest_of_the_line_only_where_the_grammar_says():
    """RE2 stops after the component and the separator or padding after it; the rest of the line
    is the message (:class:`~umlogs.parsers.fastpath.Rest`) only when it holds no line break and
    follows the separator. Every other line goes to Lark, which reads it as the grammar says."""
    head = "2018-10-02\t11:21:58:874\t 408\t1224\t"
    rests = ["\tWARNING: a\rb", "\r", "\r\tx", "\t\r", "", "\t", " ", "  two spaces", "\t\tafter two tabs", "\tone\ntwo",
             " x\u00e9\u2028y", "\t\u00a0", "(\tx", "\x0b\tvertical tab", "\tquoting itself: " + head + "PT\tx"]  # fmt: skip
    lines = [head + "PT" + rest for rest in rests]
    assert_same(lines)
    events, issues = fast_view(lines)
    assert [i.line_no for i in issues] == [1, 2, 3, 4, 10] and len(events) == 10  # the five holding \r or \n
    etl = "2023/05/22 08:10:31.7433169 2944  3952  Handler"  # the Windows 10+ message: no space first, then any
    rests = ["", " ", "   * START *", " " * 20 + "past the column", "\r", "  a\rb", " x\ny", "\tafter a tab", " é\u3000"]
    lines = [etl + rest for rest in rests]
    assert_same(lines)
    assert [i.line_no for i in fast_view(lines)[1]] == [5, 6, 7, 8]


def test_lines_between_the_taken_ones_are_read_apart():
    """Blank lines and lines the fast path leaves to Lark split a chunk's lines into runs: the raw
    text of each run comes back as a slice of the chunk, or line by line where there are more than
    RUNS runs, and the lines between them go to Lark, each under its own number."""
    lines = (SAMPLES / "windows_update" / "classic.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) > fastparse.RUNS
    assert_same(["junk", *lines[:7], "", "  ", *lines[7:30], "not a log line", *lines[30:], "", "tail junk"])
    assert_same([spaced for i, line in enumerate(lines) for spaced in (line, "" if i % 3 else f"junk {i}")])


def test_report_event_records_take_the_fast_path(monkeypatch):
    """REPORT EVENT records are read by SQL, not handed to Lark (which would be 50x slower)."""
    path = next(p for p in corpus_files("windows_update") if "REPORT EVENT" in p.read_text(encoding="utf-8", errors="replace"))
    handed: list[str] = []
    real = fastparse._lark
    monkeypatch.setattr(fastparse, "_lark", lambda parser, slow, *a: (handed.extend(line for _, line, _ in slow), real(parser, slow, *a))[1])
    result = parse_file(path)
    assert result.issues == [] and handed == []
    assert sum(1 for row in result.table().column("attrs").to_pylist() if row) > 100


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=80).map(lambda t: t.replace("\n", "")), max_size=12))
def test_arbitrary_text_is_equal(lines):
    assert_same(lines)


def test_files_under_fast_min_lines_go_to_lark(tmp_path, monkeypatch):
    """A file of fewer than FAST_MIN_LINES lines is parsed by Lark (the fast path's fixed cost is
    more than Lark's for so few), a file of that many by the fast path: the same events either way."""
    lines = (SAMPLES / "windows_update" / "windows10.log").read_text(encoding="utf-8").splitlines() * 5
    fast_files = []
    real = fastparse.parse_chunks
    monkeypatch.setattr(fastparse, "parse_chunks", lambda *args, **kw: fast_files.append(kw["source"]) or real(*args, **kw))
    small, large = tmp_path / "small.log", tmp_path / "large.log"
    small.write_text("\n".join(lines[: parse_stage.FAST_MIN_LINES - 1]) + "\n", encoding="utf-8")
    large.write_text("\n".join(lines[: parse_stage.FAST_MIN_LINES]) + "\n", encoding="utf-8")
    for path in (small, large):
        parsed, lark = parse_file(path), parse_file(path, fast=False)
        assert parsed.table().to_pylist() == lark.table().to_pylist() and parsed.issues == lark.issues
        assert parsed.event_count == len(lines[: parse_stage.FAST_MIN_LINES]) - (path is small)
    assert fast_files == [str(large)]
