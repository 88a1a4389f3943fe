"""The event schema: documented field by field, round-trips through Parquet, stable ids."""

from __future__ import annotations

import re

import pyarrow.parquet as pq

from conftest import ROOT
from umlogs.parsers.event import Event
from umlogs.pipeline import store
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


def test_many_distinct_messages_keep_their_dictionary(tmp_path):
    # 30,000 distinct 100-character messages (3 MB of dictionary, past Parquet's default 1 MiB), each
    # on 3 events. Kept encoded, the column is the dictionary and small indices (~3.1 MB); given up,
    # most of the 90,000 messages would be written out plainly after the first 1 MiB (~8 MB).
    messages = [f"{n:06d} ".ljust(100, "x") for n in range(30_000)] * 3
    events = [Event(format="windows_update", source="a.log", line_no=n + 1, raw=m, message=m) for n, m in enumerate(messages)]
    out = tmp_path / "e.parquet"
    with parquet_sink(out) as sink:
        sink(events_table(events))
    meta = pq.ParquetFile(out).metadata
    column = meta.row_group(0).column(EVENT_SCHEMA.names.index("message"))
    assert meta.num_row_groups == 1 and column.has_dictionary_page
    assert column.total_uncompressed_size < 4_000_000
    assert pq.read_table(out, columns=["message"]).column("message").to_pylist() == messages


def test_the_sink_gathers_tables_into_row_groups_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 5)
    out = tmp_path / "e.parquet"
    numbers = iter(range(1, 8))
    with parquet_sink(out) as sink:
        for n, size in enumerate((2, 2, 2, 1)):  # 6 rows pass 5: one row group; the last row makes its own
            table = events_table([Event(format="f", source="s", line_no=next(numbers), raw="r", message="m") for _ in range(size)])
            if n == 1:  # a column of another type, which the sink casts, joins a group as well
                table = table.set_column(table.schema.get_field_index("line_count"), "line_count", table.column("line_count").cast("int64"))
            sink(table)
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [6, 1]
    assert pq.read_table(out, columns=["line_no"]).column("line_no").to_pylist() == list(range(1, 8))
