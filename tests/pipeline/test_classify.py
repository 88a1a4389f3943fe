"""The classify stage over Parquet files: the same findings as over the in-memory table, whatever the
mix of formats, and a connection that cannot reach files once the events are loaded."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from conftest import SAMPLES
from umlogs.pipeline.classify import classify_table, connect
from umlogs.pipeline.dataset import read_events
from umlogs.pipeline.parse import parse_file
from umlogs.pipeline.rules import RuleError, load_rule, load_rules
from umlogs.pipeline.store import events_table

LOGS = [SAMPLES / "windows_update" / "classic.log", SAMPLES / "rules" / "UM2001" / "match.log",
        SAMPLES / "rules" / "UM3001" / "match.txt"]  # fmt: skip


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("parts")
    paths = []
    for n, log in enumerate(LOGS):
        paths.append(folder / f"{n}.parquet")
        pq.write_table(events_table(parse_file(log).events), paths[-1])
    return paths


def test_parquet_files_of_several_formats_classify_like_one_table(parts):
    table = pa.concat_tables(pq.read_table(p) for p in parts)
    stored = classify_table(pads.dataset([pads.dataset(p) for p in parts]), load_rules())
    assert stored == classify_table(table, load_rules())
    assert {f.rule_id[:3] for f in stored} == {"UM1", "UM2", "UM3"}


def test_events_view_keeps_every_event_and_its_format(parts):
    con = connect(pads.dataset([str(p) for p in parts]), load_rules())
    expected = sorted(pa.concat_tables(pq.read_table(p, columns=["format"]) for p in parts).group_by("format")
                      .aggregate([("format", "count")]).to_pylist(), key=lambda r: r["format"])  # fmt: skip
    got = con.execute("SELECT format, count(*) FROM events GROUP BY ALL ORDER BY 1").fetchall()
    assert got == [(r["format"], r["format_count"]) for r in expected]


def test_read_events_keeps_text_dictionary_encoded(parts):
    table = read_events(pads.dataset([str(p) for p in parts]), ["event_id", "format", "message"])
    assert pa.types.is_dictionary(table.schema.field("message").type)
    assert not pa.types.is_dictionary(table.schema.field("event_id").type)
    plain = pa.concat_tables(pq.read_table(p, columns=["message"]) for p in parts)
    assert table["message"].cast(pa.string()).to_pylist() == plain["message"].to_pylist()


def test_no_file_access_once_loaded(parts):
    con = connect(pads.dataset([str(p) for p in parts]), load_rules())
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")


def test_a_severity_off_the_scale_names_the_rule(tmp_path, parts):
    path = tmp_path / "UX9002_loud.toml"
    path.write_text('id = "UX9002"\ntitle = "Loud"\nscenario = "hresult"\nseverity = "warning"\ncause = "c"\n'
                    'resolution = "r"\nreference = "hresult"\nsql = "SELECT event_id, \'loud\' AS severity FROM events"\n',
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(RuleError, match=re.escape(f"{path}: sql returned severity ['loud']")):
        classify_table(pq.read_table(parts[0]), [*load_rules(), load_rule(path)])
