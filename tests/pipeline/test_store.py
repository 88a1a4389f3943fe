"""The event schema: documented field by field, round-trips through Parquet, stable ids."""

from __future__ import annotations

import re

import pyarrow.parquet as pq

from conftest import ROOT
from umlogs.parsers.event import Event
from umlogs.pipeline.store import EVENT_SCHEMA, ISSUE_SCHEMA, event_from_row, events_table, parquet_sink


def documented_fields(page: str) -> list[str]:
    return re.findall(r"^\| `([a-z_]+)` \|", page, flags=re.MULTILINE)


def test_docs_events_md_lists_every_field_in_order():
    page = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    names = documented_fields(page)
    assert names == EVENT_SCHEMA.names + ISSUE_SCHEMA.names


def test_events_round_trip_through_parquet(tmp_path):
    event = Event(
        format="windows_update", source="a.log", line_no=3, raw="r", message="m", hresults=("0x8024402C",),
        hresult="0x8024402C", attrs=(("report_status", "Failure"),), exception_chain=(("System.Exception", "x"),),
        utc_offset=120,
    )  # fmt: skip
    out = tmp_path / "e.parquet"
    with parquet_sink(out) as sink:
        sink(events_table([event]))
    table = pq.read_table(out)
    assert table.schema.metadata[b"umlogs.schema_version"] == b"1"
    (row,) = table.to_pylist()
    assert event_from_row(row) == event
    assert row["event_id"] == event.event_id and len(row["event_id"]) == 32


def test_a_failing_sink_leaves_no_file(tmp_path):
    out = tmp_path / "e.parquet"
    try:
        with parquet_sink(out) as sink:
            sink(events_table([]))
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
