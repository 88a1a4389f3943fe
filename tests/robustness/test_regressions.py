"""Regression tests for what the hostile-input suite and the fuzzers found, one per bug, with the
smallest input that showed it (inline). docs/robustness.md lists them."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from conftest import SAMPLES
from umlogs.pipeline.cli import app, one_line
from umlogs.pipeline.discover import discover
from umlogs.pipeline.export import source
from umlogs.pipeline.parse import FileResult, parse_bytes

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


def _zip_with(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo(name), data)
    return out.getvalue()


def _needs_version_9_1(archive: bytes) -> bytes:
    """The archive with its central directory saying 'version 9.1 needed to extract'."""
    at = archive.index(b"PK\x01\x02") + 6
    return archive[:at] + bytes([91, 0]) + archive[at + 2 :]


def test_zip_member_with_an_empty_name(tmp_path):
    """Fuzzer (archive target): ZipInfo.is_dir() raises IndexError on a member whose name is empty,
    so discover raised out of ingest. The member is now read as ``(unnamed)``."""
    (tmp_path / "e.zip").write_bytes(_zip_with("", GOOD.read_bytes()))
    members = list(discover([tmp_path / "e.zip"]))
    assert [m.path for m in members] == ["e.zip!/(unnamed)"]
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "e.zip"), str(GOOD), "-o", str(tmp_path / "ds"), "-q",
                                      "--workers", "1"])  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "files seen 2" in result.output


def test_zip_of_an_unsupported_version(tmp_path):
    """Fuzzer (archive target): zipfile raises NotImplementedError ('zip file version 9.1') for a
    directory entry from a newer zip version; discover let it out. The archive is now rejected with
    the reason and the other inputs are still read."""
    (tmp_path / "v.zip").write_bytes(_needs_version_9_1(_zip_with("WindowsUpdate.log", GOOD.read_bytes())))
    (member,) = discover([tmp_path / "v.zip"])
    assert member.status == "rejected" and member.reason == "unsupported zip archive: zip file version 9.1"
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "v.zip"), str(GOOD), "-o", str(tmp_path / "ds"), "-q",
                                      "--workers", "1"])  # fmt: skip
    assert result.exit_code == 2 and "umlogs: error: v.zip: unsupported zip archive" in result.output
    assert "parsed 1" in result.output


def test_export_of_times_at_the_ends_of_the_calendar(tmp_path):
    """Bug: a log line dated 0001-01-01 exported with a positive offset (or 9999-12-31 with a negative
    one) raised OverflowError out of export (a traceback). The UTC time is now clamped to years 1-9999."""
    log = tmp_path / "WindowsUpdate.log"
    log.write_bytes(b"0001-01-01\t00:00:00:000\t 936\t 13bc\tAgent\tyear one\n"
                    b"9999-12-31\t23:59:59:999\t 936\t 13bc\tAgent\tthe last second\n")  # fmt: skip
    for tz in ("+0100", "-0100"):
        for fmt in ("ecs", "ocsf", "cef", "syslog", "hec"):
            out = tmp_path / f"{fmt}{tz}.out"
            result = CliRunner().invoke(app, ["export", str(log), "-F", fmt, "--tz", tz, "-o", str(out)])
            assert result.exit_code == 0, (fmt, tz, result.output, result.exception)
            assert len(out.read_text().splitlines()) == 2


def test_json_escapes_of_lone_surrogates(tmp_path):
    """Bug: a ``"\\ud800"`` escape in a troubleshooter JSON report or in JSON inside portal error text
    decoded to a lone surrogate, which Arrow cannot store: parse and export ended in a traceback
    (UnicodeEncodeError). Such characters are now U+FFFD."""
    report = tmp_path / "troubleshooter.json"
    report.write_text('[{"RuleId": "OperatingSystemCheck", "CheckResult": "Failed", "CheckResultMessage": "bad \\ud800 x"}]\n')
    portal = tmp_path / "error.txt"
    portal.write_text('The operation failed. {"error": {"code": "Bad\\ud800Request", "message": "x \\udc00 y"}}\n')
    result = CliRunner().invoke(app, ["parse", str(report), str(portal), "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 0, (result.output, result.exception)
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert rows[0]["message"] == "bad \ufffd x"
    assert ("json.error.code", "Bad\ufffdRequest") in [tuple(a.values()) if isinstance(a, dict) else tuple(a)
                                                        for a in rows[1]["attrs"]]  # fmt: skip
    result = CliRunner().invoke(app, ["export", str(report), str(portal), "-F", "cef", "-o", str(tmp_path / "o.cef")])
    assert result.exit_code == 0, (result.output, result.exception)


def test_json_nested_past_the_recursion_limit(tmp_path):
    """Bug: a troubleshooter report with objects nested 100,000 deep made the JSON decoder raise
    RecursionError out of the update_worker parser (a traceback). It is now a parse issue."""
    deep = tmp_path / "troubleshooter.json"
    deep.write_text("[" + '{"a":' * 100_000 + "1" + "}" * 100_000 + "]\n")
    result = CliRunner().invoke(app, ["parse", str(deep), "-f", "update_worker", "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "0 events, 1 parse issues, 1 lines" in result.output


def test_several_json_values_on_one_line_keep_the_count():
    """Fuzzer (update_worker, second run): ``[024-0`` holds three JSON values on one line (0, 24, -0).
    The first owns the line and the others own 0 lines, so the count invariant holds; the harness's
    per-record check had wrongly required one line each (fuzz/targets.py:check_accounting)."""
    from targets import TARGETS

    TARGETS["update_worker"](b"\x00[024-0\nI\x00")
    result = parse_bytes(b"[024-0\nI\n", FileResult(source="t.json"), format="update_worker")
    assert result.accounted and [i.line_count for i in result.issues] == [1, 0, 0, 1]
