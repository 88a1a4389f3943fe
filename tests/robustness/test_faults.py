"""Faults during ingest: SIGTERM and Ctrl-C stop cleanly, a full disk fails the run with one clear
line and leaves the dataset readable, two ingests into one dataset are serialized by refusal.

(SIGKILL at many points is in tests/pipeline/test_ingest.py, beside the first kill test.)

"Clean" is checked the same way each time: the dataset reads with plain pyarrow, every manifest row's
events are all there (no file half in), no temporary part is visible, and running the same ingest
again ends with exactly the events of an uninterrupted run, without duplicates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from conftest import corpus_files
from umlogs.pipeline import dataset
from umlogs.pipeline import ingest as ingesting
from umlogs.pipeline.ingest import Options, ingest

UMLOGS = Path(sys.executable).with_name("umlogs")
HANG_GUARD = 600.0


def make_fleet(root: Path, copies: int = 3) -> Path:
    """Many distinct logs (each corpus file, several times with one line changed), so an ingest runs
    long enough to be interrupted midway."""
    fleet = root / "fleet"
    for n in range(copies):
        for path in corpus_files("windows_update"):
            target = fleet / f"host{n:02d}" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes() + f"\n2024-01-01\t00:00:00:000\t 1\t1\tAgent\tcopy {n}\n".encode())
    return fleet


def event_ids(root: Path) -> list[str]:
    return sorted(dataset.events_dataset(root).to_table(columns=["event_id"]).column("event_id").to_pylist())


def assert_consistent(root: Path) -> None:
    """Readable by plain pyarrow; each recorded file's events all present; nothing half-written visible."""
    plain = pads.dataset(root / "events", format="parquet", partitioning="hive") if (root / "events").exists() else None
    if plain is not None:
        plain.to_table()
    rows = dataset.read_manifest(root).to_pylist()
    table = dataset.events_dataset(root).to_table(columns=["source"])
    counts: dict[str, int] = {}
    for source in table.column("source").to_pylist():
        counts[source] = counts.get(source, 0) + 1
    recorded = {r["path"] for r in rows}
    for r in rows:
        if r["status"] == "parsed":
            assert counts.get(r["path"], 0) == r["events"], r["path"]
    assert set(counts) <= recorded, set(counts) - recorded  # no events of a file without its manifest row


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    fleet = make_fleet(root)
    clean = root / "clean"
    ingest([fleet], clean, Options(workers=2))
    return fleet, event_ids(clean)


def _wait_for_rows(dataset_root: Path, child: subprocess.Popen, rows: int) -> None:
    journal = dataset_root / dataset.JOURNAL
    deadline = time.monotonic() + HANG_GUARD
    while child.poll() is None and time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") >= rows:
            return
        time.sleep(0.02)
    pytest.fail("the ingest ended before it could be interrupted")


@pytest.mark.parametrize(("signum", "workers", "group"), [(signal.SIGTERM, 1, False), (signal.SIGINT, 2, True)],
                         ids=["SIGTERM-to-the-process", "Ctrl-C-to-the-group"])  # fmt: skip
def test_signal_stops_cleanly_and_a_rerun_finishes(tmp_path, fleet, signum, workers, group):
    """SIGTERM to umlogs, or Ctrl-C (SIGINT to the whole process group, workers included): the run
    stops at the next file, exits 128 + signal with one line, and the dataset is consistent."""
    source, clean_ids = fleet
    out = tmp_path / "ds"
    child = subprocess.Popen([str(UMLOGS), "ingest", str(source), "-o", str(out), "-q", "--workers", str(workers)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)  # fmt: skip
    try:
        _wait_for_rows(out, child, 3)
        (os.killpg if group else os.kill)(child.pid, signum)
        stdout, stderr = child.communicate(timeout=HANG_GUARD)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr + stdout
    assert f"interrupted by {signal.Signals(signum).name}" in stderr and stderr.count("\n") == 1
    assert "(true)" in stdout
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.name != ".lock"]
    assert (out / "files.parquet").exists() and not (out / dataset.JOURNAL).exists()  # manifest written
    assert_consistent(out)
    assert len(event_ids(out)) < len(clean_ids)
    rerun = subprocess.run([str(UMLOGS), "ingest", str(source), "-o", str(out), "-q"], capture_output=True, text=True,
                           timeout=HANG_GUARD)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    ids = event_ids(out)
    assert ids == clean_ids and len(ids) == len(set(ids))


def test_stop_callback_in_the_library(tmp_path, fleet):
    """``ingest(stop=...)``: no file is dispatched once it says stop; the summary says interrupted."""
    source, clean_ids = fleet
    calls = []
    summary = ingest([source], tmp_path / "ds", Options(workers=1), stop=lambda: len(calls) > 4 or calls.append(1) is not None)
    assert summary.interrupted and summary.seen == 5 and summary.consistent
    assert_consistent(tmp_path / "ds")


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    except OSError:
        return False
    return result.returncode == 0


def test_full_disk_tmpfs(tmp_path, fleet):
    """A 2 MiB tmpfs fills midway: one line naming the dataset and the reason, exit 2, the dataset
    readable; once space is freed the same command finishes the job without duplicates."""
    source, clean_ids = fleet
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "2m"):
        pytest.skip("cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN): test_full_disk_injected covers it")
    try:
        out = small / "ds"
        result = subprocess.run([str(UMLOGS), "ingest", str(source), "-o", str(out), "-q", "--workers", "2"],
                                capture_output=True, text=True, timeout=HANG_GUARD)  # fmt: skip
        assert result.returncode == 2 and "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("umlogs: error: ")]
        assert len(lines) == 1 and f"umlogs: error: {out}: no space left on device" in lines[0], result.stderr
        assert_consistent(out)
        subprocess.run(["mount", "-o", "remount,size=400m", str(small)], check=True)
        rerun = subprocess.run([str(UMLOGS), "ingest", str(source), "-o", str(out), "-q"], capture_output=True,
                               text=True, timeout=HANG_GUARD)  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        ids = event_ids(out)
        assert ids == clean_ids and len(ids) == len(set(ids))
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_full_disk_injected(tmp_path, fleet, monkeypatch):
    """The same, with ENOSPC injected into the part writer after a few parts (runs without mount)."""
    source, clean_ids = fleet
    real = ingesting.write_parquet
    written = []

    def full(table, path):
        if len(written) >= 3:
            raise OSError(28, "No space left on device")
        written.append(path)
        real(table, path)

    monkeypatch.setattr(ingesting, "write_parquet", full)
    with pytest.raises(dataset.DatasetError, match="no space left on device"):
        ingest([source], tmp_path / "ds", Options(workers=1))
    assert_consistent(tmp_path / "ds")
    monkeypatch.setattr(ingesting, "write_parquet", real)
    ingest([source], tmp_path / "ds", Options(workers=1))
    assert event_ids(tmp_path / "ds") == clean_ids


def test_journal_write_fails(tmp_path, fleet, monkeypatch):
    """Disk full while the manifest row is appended (an OSError out of the dataset itself): one line,
    exit 2, no traceback."""
    from typer.testing import CliRunner

    from umlogs.pipeline.cli import app

    source, _ = fleet

    def full(self, row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dataset.Writer, "record", full)
    result = CliRunner().invoke(app, ["ingest", str(source), "-o", str(tmp_path / "ds"), "-q", "--workers", "1"])
    assert result.exit_code == 2
    assert result.output.startswith(f"umlogs: error: {tmp_path / 'ds'}: no space left on device")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_two_ingests_at_once_are_serialized_by_refusal(tmp_path, fleet):
    """While one ingest writes, a second one into the same dataset is refused (exit 2, one line) and
    the first one's result is unchanged by it; never interleaved."""
    source, clean_ids = fleet
    out = tmp_path / "ds"
    first = subprocess.Popen([str(UMLOGS), "ingest", str(source), "-o", str(out), "-q", "--workers", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for_rows(out, first, 1)
        second = subprocess.run([str(UMLOGS), "ingest", str(source), "-o", str(out), "-q"], capture_output=True,
                                text=True, timeout=HANG_GUARD)  # fmt: skip
        first.communicate(timeout=HANG_GUARD)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 2 and "another ingest is writing to this dataset" in second.stderr
    assert "Traceback" not in second.stderr and first.returncode == 0
    assert event_ids(out) == clean_ids
