"""Property tests per grammar and per stage (Hypothesis; profiles in tests/conftest.py: ``ci`` by
default, ``HYPOTHESIS_PROFILE=long`` for 5,000 examples per property).

For each parser: arbitrary bytes, arbitrary text and mutated real lines never raise out of decode,
the parser, ``parse_blocks`` (fast path and Lark path) or ``parse_bytes``, and always satisfy the
invariant (the fuzz targets' checks, :mod:`targets`). Valid generated lines round-trip field by field.
Per stage: classify, ingest and every export encoder take whatever the parsers make of arbitrary
input, and synthetic records with any text, time and offset, without raising.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from conftest import SAMPLES
from targets import PARSERS, TARGETS
from umlogs.pipeline.classify import classify_table, load_rules
from umlogs.pipeline.export import FORMATS, encoder, serialize
from umlogs.pipeline.export.record import event_record, finding_record
from umlogs.pipeline.ingest import Options, ingest
from umlogs.pipeline.parse import FileResult, parse_bytes

NOW = datetime(2026, 1, 1)
SAMPLE_DIRS = {"windows_update": "windows_update", "update_worker": "update_worker", "portal_exception": "portal_exception"}
HEAVY = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"


def few(n: int) -> settings:
    """``n`` examples under ``ci`` (for a property that runs a whole stage per example), 50 times more
    under ``long``."""
    return settings(HEAVY, max_examples=n * 50 if LONG else n)


def sample_lines(name: str) -> list[bytes]:
    lines = []
    for path in sorted((SAMPLES / SAMPLE_DIRS[name]).iterdir()):
        if path.suffix in (".log", ".txt", ".json") and not path.name.endswith(".expected.json"):
            lines += path.read_bytes().splitlines(keepends=True)
    return lines


def mutated(name: str):
    """A few real lines of format ``name`` with bytes flipped, inserted or deleted."""
    real = sample_lines(name)

    @st.composite
    def build(draw):
        start = draw(st.integers(0, len(real) - 1))
        data = bytearray(b"".join(real[start : start + draw(st.integers(1, 12))]))
        for _ in range(draw(st.integers(0, 8))):
            where = draw(st.integers(0, max(len(data) - 1, 0)))
            action = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
            if action == "flip" and data:
                data[where] = draw(st.integers(0, 255))
            elif action == "insert":
                data[where:where] = draw(st.binary(min_size=1, max_size=8))
            elif action == "delete":
                del data[where : where + draw(st.integers(1, 16))]
            else:
                del data[where:]
        return bytes(data)

    return build()


KNOB = st.integers(0, 255).map(lambda n: bytes([n]))
"""The targets' first byte: chunk size and line limit of the decoder (small ones included)."""


@pytest.mark.parametrize("name", PARSERS)
@given(data=st.binary(max_size=2000), knob=KNOB)
def test_arbitrary_bytes(name, data, knob):
    TARGETS[name](knob + data)


@pytest.mark.parametrize("name", PARSERS)
@given(text=st.text(max_size=600), knob=KNOB, encoding=st.sampled_from(["utf-8", "utf-16", "cp1252", "latin-1"]))
def test_arbitrary_text(name, text, knob, encoding):
    TARGETS[name](knob + text.encode(encoding, "replace"))


@pytest.mark.parametrize("name", PARSERS)
@HEAVY
@given(data=st.data(), knob=KNOB)
def test_mutated_real_lines(name, data, knob):
    TARGETS[name](knob + data.draw(mutated(name)))


# --- valid generated logs round-trip ---------------------------------------------------------------

COMPONENT = st.sampled_from(["Agent", "AU", "Service", "Misc", "Setup", "DnldMgr", "Handler", "Report", "PT"])
MESSAGE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x85\u2028\u2029"),
                  min_size=1, max_size=80).filter(lambda s: s.strip() and s == s.rstrip())  # fmt: skip


@given(
    when=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31)),
    pid=st.integers(0, 0xFFFF), tid=st.integers(0, 0xFFFF), component=COMPONENT, message=MESSAGE,
)  # fmt: skip
def test_windows_update_classic_round_trip(when, pid, tid, component, message):
    """A classic line made of generated fields parses back to the same fields, on both paths."""
    stamp = when.strftime("%Y-%m-%d\t%H:%M:%S:") + f"{when.microsecond // 1000:03d}"
    line = f"{stamp}\t{pid:4d}\t{tid:x}\t{component}\t{message}\n"
    for fast in (True, False):
        result = parse_bytes(line.encode(), FileResult(source="g.log"), format="windows_update", fast=fast)
        assert result.accounted and not result.issues, (line, result.issues)
        (event,) = result.events
        assert (event.pid, event.tid, event.component) == (pid, tid, component)
        assert event.timestamp == when.replace(microsecond=when.microsecond // 1000 * 1000)
        assert event.message.strip() == message.strip() and event.raw == line.rstrip("\n")


EXCEPTION_TYPE = st.from_regex(r"\A(System|Microsoft)\.[A-Z][a-z]{2,8}(\.[A-Z][a-z]{2,8})?Exception\Z")
EXCEPTION_TEXT = st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=3, max_size=20)


@given(chain=st.lists(st.tuples(EXCEPTION_TYPE, EXCEPTION_TEXT), min_size=1, max_size=6))
def test_portal_exception_chain_round_trip(chain):
    """``T1: m1 ---> T2: m2 ...`` parses back to the same chain, outermost first."""
    text = " ---> ".join(f"{kind}: {message}" for kind, message in chain)
    result = parse_bytes(text.encode() + b"\n", FileResult(source="p.txt"), format="portal_exception")
    (event,) = result.events
    assert [tuple(link) for link in event.exception_chain] == chain


# --- stages: classify, ingest, export ------------------------------------------------------------

RULES = load_rules(())


@few(30)
@given(data=st.one_of(st.binary(max_size=1500), mutated("windows_update"), mutated("update_worker"),
                      mutated("portal_exception")), name=st.sampled_from(PARSERS))  # fmt: skip
def test_classify_takes_anything_parsed(data, name):
    result = parse_bytes(data, FileResult(source="x.log"), format=name)
    assume(result.error is None)
    for finding in classify_table(result.table(), RULES):
        assert finding.count >= 1 and finding.rule_id


@few(25)
@given(data=st.one_of(st.binary(max_size=1500), mutated("windows_update"), mutated("update_worker")))
def test_ingest_takes_anything(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("ingest")
    (folder / "in").mkdir()
    (folder / "in" / "WindowsUpdate.log").write_bytes(data)
    summary = ingest([folder / "in"], folder / "ds", Options(workers=1))
    assert summary.consistent and summary.seen == 1 and not summary.unaccounted


TEXT = st.text(max_size=120).map(lambda s: s.encode("utf-8", "replace").decode("utf-8"))
"""Text an Arrow column can hold (valid UTF-8: no lone surrogates)."""
OFFSET = st.none() | st.integers(-(99 * 60 + 99), 99 * 60 + 99)
TIME = st.none() | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))


@st.composite
def records(draw):
    if draw(st.booleans()):
        row = {"event_id": draw(TEXT), "format": draw(st.sampled_from(PARSERS)), "source": draw(TEXT),
               "host": draw(st.none() | TEXT), "line_no": draw(st.integers(0, 1 << 40)), "line_count": 1,
               "level": draw(st.sampled_from(["debug", "info", "warning", "error", "fatal"])), "message": draw(TEXT),
               "raw": draw(TEXT), "component": draw(st.none() | TEXT), "timestamp": draw(TIME),
               "timestamp_text": draw(st.none() | TEXT), "utc_offset": draw(OFFSET), "pid": draw(st.none() | st.integers(0, 1 << 31)),
               "tid": None, "hresult": draw(st.none() | st.sampled_from(["0x80240022", "0x8024402C"]) | TEXT),
               "hresults": draw(st.lists(TEXT, max_size=2)), "exception_chain": [{"type": draw(TEXT), "message": draw(TEXT)}],
               "attrs": draw(st.lists(st.tuples(TEXT, TEXT), max_size=2)), "kbs": [], "urls": [], "guids": [],
               "update_ids": [], "success_codes": []}  # fmt: skip
        return event_record(row, tz_offset=draw(OFFSET), now=NOW.astimezone())
    sources = draw(st.lists(TEXT, max_size=3))
    finding = {"rule_id": draw(TEXT), "title": draw(TEXT), "scenario": draw(TEXT),
               "severity": draw(st.sampled_from(["info", "warning", "error", "critical"])),
               "hresult": draw(st.none() | TEXT), "hresult_name": draw(st.none() | TEXT), "count": draw(st.integers(0, 1 << 40)),
               "first_seen": draw(TIME), "last_seen": draw(TIME), "hosts": draw(st.lists(TEXT, max_size=2)),
               "sources": sources, "cause": draw(TEXT), "resolution": draw(TEXT), "reference": draw(TEXT),
               "detail": draw(st.none() | TEXT),
               "evidence": [{"source": draw(TEXT), "line_no": 1, "text": draw(TEXT), "host": None}]}  # fmt: skip
    offsets = {s: {draw(OFFSET)} for s in sources}
    return finding_record(finding, source_offsets=offsets, tz_offset=draw(OFFSET), now=NOW.astimezone())


@pytest.mark.parametrize("name", FORMATS)
@given(record=records())
@example(record=event_record({"event_id": "x", "timestamp": datetime(1, 1, 1), "utc_offset": 60}, tz_offset=None,
                             now=NOW.astimezone()))  # fmt: skip
@example(record=event_record({"event_id": "x", "timestamp": datetime(9999, 12, 31, 23, 59), "utc_offset": None},
                             tz_offset=-(99 * 60 + 99), now=NOW.astimezone()))  # fmt: skip
def test_encoders_take_any_record(name, record):
    """Any text, any time in years 1-9999, any offset: one line of valid UTF-8 (valid JSON for the
    JSON formats), never an exception."""
    line = serialize(encoder(name)(record))
    assert "\n" not in line and "\r" not in line
    line.encode("utf-8")
    if name in ("ecs", "ocsf", "hec"):
        json.loads(line)


@pytest.mark.parametrize("name", FORMATS)
@HEAVY
@given(data=st.one_of(mutated("windows_update"), mutated("update_worker"), mutated("portal_exception")),
       index=st.integers(0, 2), mode=st.integers(0, 1))  # fmt: skip
def test_encoders_take_anything_parsed(name, data, index, mode):
    TARGETS[name](bytes([index * 4 + mode]) + data)
