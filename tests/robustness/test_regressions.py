"""Regression tests for what the hostile-input suite and the fuzzers found, one per bug, with the
smallest input that showed it (inline). docs/robustness.md lists them."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from conftest import SAMPLES
from umlogs.pipeline.cli import app, one_line
from umlogs.pipeline.export import source

UMLOGS = Path(sys.executable).with_name("umlogs")
GOOD = SAMPLES / "windows_update" / "classic.log"


def test_export_does_not_block_on_a_fifo(tmp_path):
    """Bug: ``export`` opened every source to see whether it is an archive; opening a FIFO blocks
    until a writer comes, so the run hung. A FIFO is now named as not a regular file."""
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    assert source.is_bundle(fifo) is False
    result = subprocess.run([str(UMLOGS), "export", str(fifo), str(GOOD), "-F", "cef", "-o", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"umlogs: error: {fifo}: not a regular file" in result.stderr
    assert len((tmp_path / "o").read_text().splitlines()) > 68


def test_export_of_a_bundle_whose_events_have_no_host(tmp_path):
    """Bug: ``export`` read its temporary dataset with inferred hive partitioning, which raised
    ArrowInvalid (a traceback) when every event's host was null, e.g. a truncated WindowsUpdate.log.gz
    without a host in its name or content."""
    whole = gzip.compress(GOOD.read_bytes())
    (tmp_path / "truncated.log.gz").write_bytes(whole[:400])
    result = CliRunner().invoke(app, ["export", str(tmp_path / "truncated.log.gz"), "-F", "ecs", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "truncated or corrupt" in result.output
    assert len((tmp_path / "o").read_text().splitlines()) >= 1  # the events read before the cut are exported


def test_error_line_stays_one_line_for_a_file_name_with_a_newline(tmp_path):
    """Bug: a file named ``a\\nb.log`` split its error message (and ingest's skipped line) over two
    lines. Names are now shown with control characters escaped."""
    odd = tmp_path / "new\nline.log"
    odd.write_bytes(b"")
    result = CliRunner().invoke(app, ["parse", str(odd), "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 2
    assert f"umlogs: error: {one_line(str(odd))}: not a log: empty file\n" in result.output
    result = CliRunner().invoke(app, ["ingest", str(odd), "-o", str(tmp_path / "ds"), "-q", "--workers", "1"])
    assert result.exit_code == 0 and "skipped new\\nline.log: not a log: empty file" in result.output
