"""The command line as a new user meets it: every command through Typer's runner, on the samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import SAMPLES, shared_path
from umlogs.pipeline.cli import app

runner = CliRunner()
CLASSIC = SAMPLES / "windows_update" / "classic.log"
WINDOWS10 = SAMPLES / "windows_update" / "windows10.log"


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_version_and_formats():
    assert invoke("--version").output.startswith("umlogs 0.1.0")
    names = [line.split()[0] for line in invoke("formats").output.splitlines()]
    assert names == ["windows_update", "update_worker", "portal_exception"]


def test_parse_writes_events_and_issues(tmp_path):
    out = tmp_path / "e.parquet"
    result = invoke("parse", CLASSIC, WINDOWS10, "-o", out)
    assert result.exit_code == 0, result.output
    assert "classic.log: windows_update, 68 events, 0 parse issues, 69 lines (1 blank), utf-8" in result.output
    assert pq.read_table(out).num_rows == 68 + 48
    assert pq.read_table(tmp_path / "e.issues.parquet").num_rows == 0


def test_bad_inputs_beside_a_good_one(tmp_path):
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "binary.log").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8)
    (tmp_path / "folder").mkdir()
    (tmp_path / "long.log").write_bytes(b"x" * 10_000_000)
    out = tmp_path / "e.parquet"
    bad = ["empty.log", "binary.log", "folder", "long.log", "missing.log"]
    result = invoke("parse", *(tmp_path / name for name in bad), CLASSIC, "-o", out)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("umlogs: error:")]
    assert len(errors) == len(bad)
    for name, line in zip(bad, errors):
        assert str(tmp_path / name) in line
    assert pq.read_table(out).num_rows == 68


def test_utf16_copy_gives_the_same_events(tmp_path):
    source = shared_path("corpus", "windows_update", "etl-findingsanity.log")
    copy = tmp_path / "utf16.log"
    copy.write_bytes(source.read_bytes().decode("utf-8").encode("utf-16"))
    for path, out in ((source, tmp_path / "a.parquet"), (copy, tmp_path / "b.parquet")):
        assert invoke("parse", path, "-o", out).exit_code == 0
    a, b = (pq.read_table(p).drop_columns(["event_id", "source"]) for p in (tmp_path / "a.parquet", tmp_path / "b.parquet"))
    assert a.equals(b)


def test_classify_formats_and_fail_on():
    table = invoke("classify", CLASSIC)
    assert table.exit_code == 0 and "UM1005" in table.output
    findings = json.loads(invoke("classify", CLASSIC, "--format", "json").output)
    assert {"rule_id", "scenario", "severity", "hresult", "evidence", "resolution", "reference"} <= set(findings[0])
    assert findings == sorted(findings, key=lambda f: (-["info", "warning", "error", "critical"].index(f["severity"]), -f["count"], f["rule_id"], f["hresult"] or ""))
    assert invoke("classify", CLASSIC, "--format", "markdown").output.startswith("| severity |")
    assert invoke("classify", CLASSIC, "--format", "csv").output.startswith("severity,rule_id")
    assert invoke("classify", CLASSIC, "--fail-on", "error").exit_code == 1
    assert invoke("classify", CLASSIC, "--format", "yaml").exit_code == 2


def test_classify_a_clean_run_raises_nothing(tmp_path):
    clean = tmp_path / "clean.log"
    clean.write_text(
        "2024/02/13 10:40:02.1000001 4472  7788  Agent           * START * Finding updates CallerId = Update;ScanForUpdates  Id = 13\n"
        "2024/02/13 10:40:09.2301188 4472  7788  Agent           * END * Finding updates CallerId = Update;ScanForUpdates, Id = 13, Exit code = 0x00000000\n",
        encoding="utf-8",
    )
    result = invoke("classify", clean, "--format", "json", "--fail-on", "warning")
    assert (result.exit_code, json.loads(result.output)) == (0, [])


@pytest.mark.parametrize("code", ["0x8024402C", "8024402c", "-2145107924", "2149859372"])
def test_explain_accepts_every_form(code):
    result = invoke("explain", "--format", "json", "--", code)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["name"] == "WU_E_PT_WINHTTP_NAME_NOT_RESOLVED"


def test_explain_rejects_what_is_not_a_code():
    result = invoke("explain", "0xZZZZ")
    assert result.exit_code == 2 and "is not an HRESULT" in result.output


def test_rules_lists_and_shows_one():
    listed = invoke("rules").output.splitlines()
    assert listed[0].startswith("UM1001") and len(listed) > 40
    shown = invoke("rules", "um1006")
    assert shown.exit_code == 0 and "## UM1006" in shown.output and "```sql" in shown.output
    assert invoke("rules", "UM9999").exit_code == 2


def test_every_command_has_help_with_an_example():
    for command in app.registered_commands:
        doc = command.callback.__doc__ or ""
        assert "Example:" in doc, command.callback.__name__


def test_help_does_not_import_heavy_modules():
    code = "import sys; from umlogs.pipeline.cli import app; print(sorted(m for m in ('pyarrow', 'duckdb', 'lark') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def _arrow_pool(**env: str) -> str:
    """Arrow's default memory pool once the CLI module is loaded, in a fresh interpreter."""
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    code = "import umlogs.pipeline.cli, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(sys.platform != "linux", reason="the CLI picks jemalloc on Linux only")
def test_the_cli_has_arrow_allocate_from_jemalloc_unless_told_otherwise():
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow has no jemalloc")
    assert _arrow_pool() == "jemalloc"
    assert _arrow_pool(ARROW_DEFAULT_MEMORY_POOL="system") == "system"


def _command(*args: str) -> subprocess.CompletedProcess:
    """The console command as installed (``run``), its output piped (so block-buffered)."""
    code = "import sys; sys.argv[0] = 'umlogs'; from umlogs.pipeline.cli import run; run()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)


def test_the_console_command_keeps_its_output_and_exit_codes(tmp_path):
    listed = _command("formats")
    assert listed.returncode == 0 and listed.stdout.split()[0] == "windows_update"
    found = _command("classify", CLASSIC, "--format", "json", "--fail-on", "warning")
    assert found.returncode == 1 and json.loads(found.stdout), "findings at --fail-on, and all of the JSON"
    missing = _command("parse", tmp_path / "missing.log", "-o", tmp_path / "e.parquet")
    assert missing.returncode == 2 and missing.stderr.strip().endswith("missing.log: no such file")
    assert _command("no-such-command").returncode == 2
