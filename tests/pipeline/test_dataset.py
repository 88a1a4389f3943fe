"""The dataset contract: plain pyarrow.dataset reads it back; orphans of an interrupted run go away."""

from __future__ import annotations

import doctest
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from conftest import shared_path
from umlogs.pipeline import dataset
from umlogs.pipeline.ingest import Options, ingest
from umlogs.pipeline.store import EVENT_SCHEMA


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    (root / "fleet" / "web01").mkdir(parents=True)
    (root / "fleet" / "web01" / "WindowsUpdate.log").write_bytes(
        shared_path("corpus", "windows_update", "etl-findingsanity.log").read_bytes())  # fmt: skip
    (root / "fleet" / "lnx02").mkdir()
    (root / "fleet" / "lnx02" / "worker.log").write_bytes(
        shared_path("corpus", "update_worker", "troubleshooter-docs-update-agent-issues-linux.log").read_bytes())  # fmt: skip
    ingest([root / "fleet"], root / "out", Options(workers=1))
    return root / "out"


def test_doctests():
    assert doctest.testmod(dataset).failed == 0


def test_plain_pyarrow_reads_the_layout(small: Path):
    # What docs/dataset.md tells any reader to do: hive partitioning with string partition columns.
    partitioning = pads.partitioning(pa.schema([("format", pa.string()), ("host", pa.string())]), flavor="hive")
    events = pads.dataset(small / "events", format="parquet", partitioning=partitioning).to_table()
    assert set(EVENT_SCHEMA.names) <= set(events.schema.names)
    manifest = pq.read_table(small / "files.parquet")
    parsed = {r["host"]: r["events"] for r in manifest.to_pylist() if r["status"] == "parsed"}
    counts = {}
    for host in events.column("host").to_pylist():
        counts[host] = counts.get(host, 0) + 1
    assert counts == parsed and set(parsed) == {"web01", "lnx02"}
    names = sorted(p.relative_to(small).as_posix() for p in (small / "events").rglob("*.parquet"))
    assert all(n.startswith("events/format=") and "/host=" in n and n.rsplit("/", 1)[1].startswith("part-") for n in names)
    sha = {r["host"]: r["sha256"][: dataset.SHA_PREFIX] for r in manifest.to_pylist()}
    assert any(f"part-{sha['web01']}-00000" in n for n in names)


def test_orphans_removed_on_next_start(small: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    folder = copy / "events" / "format=windows_update" / "host=web99"
    folder.mkdir(parents=True)
    pq.write_table(EVENT_SCHEMA.empty_table(), folder / "part-0123456789abcdef-00000.parquet")
    (folder / ".abc-00000.inprogress").write_bytes(b"half a part")
    kept = sorted(p for p in (copy / "events").rglob("part-*") if "web99" not in str(p))
    with dataset.Writer.open(copy):
        pass
    assert sorted((copy / "events").rglob("part-*")) == kept
    assert not (folder / ".abc-00000.inprogress").exists()


def test_journal_rows_survive_until_compacted(tmp_path: Path):
    with dataset.Writer.open(tmp_path / "ds") as writer:
        writer.record({"path": "a.log", "status": "skipped", "host_source": "none", "reason": "x"})
        assert dataset.read_manifest(tmp_path / "ds").column("path").to_pylist() == ["a.log"]
    assert not (tmp_path / "ds" / dataset.JOURNAL).exists()
    assert pq.read_table(tmp_path / "ds" / "files.parquet").column("path").to_pylist() == ["a.log"]


def test_lock_is_exclusive(tmp_path: Path):
    with dataset.Writer.open(tmp_path / "ds"):
        with pytest.raises(dataset.DatasetError, match="another ingest"):
            with dataset.Writer.open(tmp_path / "ds"):
                pass
