"""The hostile-input suite: every input of :mod:`hostile` (and a 100 MB line, a million blank lines,
unreadable files and a symlink loop) through ``parse``, ``classify``, ``ingest`` and ``export`` as a
user runs them: the real ``umlogs`` command in a subprocess, a good sample beside the hostile inputs.

Each run must give one ``umlogs: error: <file>: <reason>`` line per bad input, the documented exit
code, no traceback, bounded time (a generous timeout is only a hang guard) and bounded memory (the
peak RSS of the command), and the good sample's events written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from robustness.hostile import GOOD, HOSTILE, WU_LINE, write_all
from umlogs.pipeline import dataset
from umlogs.pipeline.cli import app, one_line

UMLOGS = Path(sys.executable).with_name("umlogs")
HANG_GUARD = 600.0
"""Seconds after which a command counts as hung (never a speed assertion)."""
MEMORY_BOUND_KB = 1_500_000
"""Peak RSS a command may reach on these inputs (the 100 MB line peaks near 350 MB)."""
ARCHIVES = (".zip", ".gz", ".tar")


def run(args: list[str], cwd: Path) -> tuple[int, str, str, int]:
    """``umlogs args`` in ``cwd``: exit code, stdout, stderr and peak RSS in KiB."""
    out, err = cwd / ".stdout", cwd / ".stderr"
    with out.open("wb") as o, err.open("wb") as e:
        child = subprocess.Popen([str(UMLOGS), *args], cwd=cwd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + HANG_GUARD
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                pytest.fail(f"umlogs {' '.join(args[:2])} still running after {HANG_GUARD} s: a hang")
            time.sleep(0.05)
    child.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
    text = out.read_text(errors="replace"), err.read_text(errors="replace")
    assert "Traceback" not in text[0] + text[1], text[1][-3000:]
    assert usage.ru_maxrss < MEMORY_BOUND_KB, f"peak RSS {usage.ru_maxrss} KiB"
    return child.returncode, *text, usage.ru_maxrss


def error_lines(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.startswith("umlogs: error: ")]
    assert len(lines) == stderr.count("umlogs: error: "), "an error message spans lines"
    return lines


def assert_named(stderr: str, name: str, reason: str) -> None:
    """One error line names ``name`` (escaped as the CLI escapes it) and gives ``reason``."""
    shown = one_line(name)
    matches = [line for line in error_lines(stderr) if shown in line]
    assert matches, f"no error line names {shown!r}:\n{stderr}"
    assert any(reason in line for line in matches), f"{shown}: expected {reason!r} in {matches}"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, dict[str, Path], Path]:
    """The hostile inputs and a good sample (GOOD plus one line, so no archive holds a copy of it)."""
    root = tmp_path_factory.mktemp("hostile")
    paths = write_all(root / "in")
    good = root / "in" / "good.log"
    good.write_bytes(GOOD.read_bytes() + WU_LINE + b"the good sample's own line\n")
    return root, paths, good


def names(paths: dict[str, Path]) -> list[str]:
    return [str(Path("in") / name) for name in paths]


def test_parse(inputs):
    root, paths, good = inputs
    code, stdout, stderr, _ = run(["parse", *names(paths), "in/good.log", "-o", "out.parquet"], root)
    assert code == 2
    for entry in HOSTILE:
        shown = one_line(f"in/{entry.name}")
        if entry.expect == "error":
            assert_named(stderr, f"in/{entry.name}", entry.reason)
        else:
            assert f"{shown}: " in stdout and shown not in stderr.replace("lines no grammar accepts", ""), stderr
    sources = pq.read_table(root / "out.parquet", columns=["source"]).column("source").to_pylist()
    assert sources.count("in/good.log") == 69
    assert {f"in/{e.name}" for e in HOSTILE if e.expect == "parsed"} <= set(sources) | _issue_sources(root)


def _issue_sources(root: Path) -> set[str]:
    return set(pq.read_table(root / "out.issues.parquet", columns=["source"]).column("source").to_pylist())


def test_classify(inputs):
    root, paths, _ = inputs
    code, stdout, stderr, _ = run(["classify", *names(paths), "in/good.log", "-F", "json"], root)
    assert code == 2
    for entry in HOSTILE:
        if entry.expect == "error":
            assert_named(stderr, f"in/{entry.name}", entry.reason)
    findings = json.loads(stdout)
    assert any("in/good.log" in f["sources"] for f in findings)


def test_ingest(inputs):
    root, paths, _ = inputs
    code, stdout, stderr, _ = run(["ingest", *names(paths), "in/good.log", "-o", "ds", "-q", "--workers", "2"], root)
    assert code == 2  # the rejected inputs
    assert stdout.count("(true)") == 2, stdout  # files seen = parsed + skipped + rejected; lines accounted
    rows = {r["path"]: r for r in dataset.read_manifest(root / "ds").to_pylist()}  # ingest names a file by its name
    assert rows["good.log"]["status"] == "parsed" and rows["good.log"]["events"] == 69
    for entry in HOSTILE:
        expect = entry.ingest or ("parsed" if entry.expect == "parsed" else "skipped")
        mine = {p: r for p, r in rows.items() if p == entry.name or p.startswith(f"{entry.name}!/")}
        statuses = {r["status"] for r in mine.values()}
        if expect == "rejected":
            assert "rejected" in statuses, mine
            assert_named(stderr, entry.name, entry.ingest_reason)
        elif expect == "skipped":
            assert statuses == {"skipped"}, mine
            assert one_line(f"skipped {entry.name}") in stdout
        else:
            assert "parsed" in statuses and "rejected" not in statuses, mine
    # Zip slip: member names are names only, nothing is written outside the dataset.
    assert "slip.zip!/tmp/escaped-by-umlogs.log" in rows and "slip.zip!/etc/cron.d/evil.log" in rows
    assert not Path("/tmp/escaped-by-umlogs.log").exists() and not list(root.rglob("escaped-by-umlogs.log"))
    summary = [line for line in stdout.splitlines() if line.startswith("ingested into")][0]
    seen, parsed, skipped, rejected = (int(x) for x in __import__("re").findall(r"\b(\d+)\b", summary)[:4])
    assert seen == parsed + skipped + rejected == len(rows)


def test_export(inputs):
    root, paths, _ = inputs
    code, stdout, stderr, _ = run(["export", *names(paths), "in/good.log", "-F", "ecs", "--tz", "+0100", "-o", "out.ndjson"], root)
    assert code == 2
    for entry in HOSTILE:
        archive = entry.name.endswith(ARCHIVES)
        expect = (entry.ingest or "skipped") if archive else entry.expect
        if expect in ("error", "rejected"):  # bundles go through ingest, which names a file by its name
            assert_named(stderr, entry.name if archive else f"in/{entry.name}", entry.ingest_reason if archive else entry.reason)
    records = [json.loads(line) for line in (root / "out.ndjson").read_text().splitlines()]
    assert sum(1 for r in records if r.get("log", {}).get("file", {}).get("path") == "in/good.log") == 69


@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> Path:
    """A 100 MB single line and a million blank lines, beside the good sample."""
    root = tmp_path_factory.mktemp("huge")
    (root / "in").mkdir()
    with (root / "in" / "long-line.log").open("wb") as f:
        f.write(WU_LINE)
        block = b"x" * (1 << 20)
        for _ in range(100):
            f.write(block)
        f.write(b"\n" + WU_LINE + b"after the long line\n")
    with (root / "in" / "blank.log").open("wb") as f:
        f.write(WU_LINE + b"before the blank lines\n" + b"\n" * 1_000_000 + WU_LINE + b"after them\n")
    (root / "in" / "good.log").write_bytes(GOOD.read_bytes())
    return root


HUGE_ARGS = ["in/long-line.log", "in/blank.log", "in/good.log"]


@pytest.mark.parametrize("command", ["parse", "classify", "ingest", "export"])
def test_huge_inputs(huge, command):
    """The long line is cut to 8 Mi characters and counted, never dropped; blank lines are counted."""
    extra = {"parse": ["-o", "out.parquet"], "classify": ["-F", "json"], "ingest": ["-o", "ds", "-q"],
             "export": ["-F", "cef", "-o", "out.cef"]}[command]  # fmt: skip
    code, stdout, stderr, _ = run([command, *HUGE_ARGS, *extra], huge)
    assert code == 0, stderr
    assert not error_lines(stderr)
    if command == "parse":
        assert "in/long-line.log: windows_update, 2 events, 0 parse issues, 2 lines (0 blank)" in stdout
        assert "1 lines longer than --max-line cut" in stdout
        assert "in/blank.log: windows_update, 2 events, 0 parse issues, 1000002 lines (1000000 blank)" in stdout
        table = pq.read_table(huge / "out.parquet", columns=["source", "raw"]).to_pylist()
        cut = [r["raw"] for r in table if r["source"] == "in/long-line.log"]
        assert len(cut[0]) == 8 << 20 and cut[1].endswith("after the long line")
        assert sum(1 for r in table if r["source"] == "in/good.log") == 68
    elif command == "classify":
        assert "in/long-line.log: 1 lines longer than --max-line 8388608 cut" in stderr
        assert any("in/good.log" in f["sources"] for f in json.loads(stdout))
    elif command == "ingest":
        rows = {r["path"]: r for r in dataset.read_manifest(huge / "ds").to_pylist()}
        assert rows["long-line.log"]["long_lines"] == 1 and rows["long-line.log"]["events"] == 2
        assert rows["blank.log"]["blank"] == 1_000_000 and rows["good.log"]["events"] == 68
        assert "1 lines longer than --max-line cut" in stdout and stdout.count("(true)") == 2
    else:
        assert sum(1 for line in (huge / "out.cef").read_text().splitlines() if "fname=in/good.log" in line) >= 68


def test_symlink_loop_in_a_tree(tmp_path):
    """A folder whose tree links back to itself: walked once, links never followed."""
    tree = tmp_path / "tree" / "web01" / "logs"
    tree.mkdir(parents=True)
    (tree / "WindowsUpdate.log").write_bytes(GOOD.read_bytes())
    (tree / "up").symlink_to(tmp_path / "tree")
    (tree / "self").symlink_to(tree)
    (tree / "dangling.log").symlink_to(tmp_path / "nowhere.log")
    code, stdout, stderr, _ = run(["ingest", "tree", "-o", "ds", "-q"], tmp_path)
    rows = dataset.read_manifest(tmp_path / "ds").to_pylist()
    assert [r["status"] for r in rows if r["path"].endswith("WindowsUpdate.log")] == ["parsed"]
    assert len(rows) <= 2, rows
    assert code in (0, 2) and all("dangling.log" in line for line in error_lines(stderr))
    code, stdout, stderr, _ = run(["export", "tree", "-F", "syslog", "-o", "out.log"], tmp_path)
    assert code in (0, 2) and len((tmp_path / "out.log").read_text().splitlines()) >= 68


def _deny(monkeypatch, secret: Path) -> None:
    """Opening ``secret`` fails with EACCES, as it does for a user without read permission."""
    import builtins
    import io as io_module

    real_open, real_path_open = builtins.open, Path.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file) == secret:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    def guarded_path(self, *args, **kwargs):
        if self == secret:
            raise PermissionError(13, "Permission denied", str(self))
        return real_path_open(self, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io_module, "open", guarded)
    monkeypatch.setattr(Path, "open", guarded_path)


@pytest.mark.parametrize("command", ["parse", "classify", "ingest", "export"])
def test_unreadable_file_injected(tmp_path, monkeypatch, command):
    """Unreadable permissions. The tests run as root, and root reads a mode-000 file, so the denial
    is injected where umlogs opens files; test_unreadable_file_as_a_user checks the real thing when an
    unprivileged user can run the interpreter."""
    secret, good = tmp_path / "secret.log", tmp_path / "good.log"
    secret.write_bytes(GOOD.read_bytes()[:1000])
    good.write_bytes(GOOD.read_bytes())
    _deny(monkeypatch, secret)
    extra = {"parse": ["-o", str(tmp_path / "o.parquet")], "classify": [], "export": ["-F", "hec", "-o", str(tmp_path / "o.json")],
             "ingest": ["-o", str(tmp_path / "ds"), "-q", "--workers", "1"]}[command]  # fmt: skip
    result = CliRunner().invoke(app, [command, str(secret), str(good), *extra])
    assert result.exit_code == 2, result.output
    named = secret.name if command == "ingest" else secret  # ingest names a file given as an argument by its name
    assert f"umlogs: error: {named}: permission denied" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unreadable_file_as_a_user(tmp_path):
    """A mode-000 file read by an unprivileged user: named, exit 2, the good file parsed. As root the
    command runs as uid 65534 (root reads any file); skipped when that user cannot run the interpreter
    (a virtual environment under /root), where test_unreadable_file_injected covers the denial."""
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"umlogs-perm-{os.getpid()}"
    folder.mkdir(mode=0o777, exist_ok=True)
    try:
        folder.chmod(0o777)
        secret, good = folder / "secret.log", folder / "good.log"
        secret.write_bytes(GOOD.read_bytes())
        good.write_bytes(GOOD.read_bytes()[:4000])
        secret.chmod(0o000)
        good.chmod(0o644)
        # As root, run as nobody. subprocess switches user between fork and exec in C: a preexec_fn
        # (Python code in the child of a process with threads) can crash there instead.
        nobody = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else {}
        if nobody:
            try:
                usable = subprocess.run([str(UMLOGS), "--version"], capture_output=True, **nobody).returncode == 0
            except OSError:
                usable = False
            if not usable:
                pytest.skip("running as root, and an unprivileged user cannot run this interpreter: the "
                            "denial is covered by test_unreadable_file_injected")  # fmt: skip
        result = subprocess.run([str(UMLOGS), "parse", str(secret), str(good), "-o", str(folder / "o.parquet")],
                                capture_output=True, text=True, timeout=HANG_GUARD, **nobody)  # fmt: skip
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"umlogs: error: {secret}: permission denied" in result.stderr
        assert f"{good}: windows_update" in result.stdout
    finally:
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


def test_zip_slip_never_writes_outside(tmp_path):
    """Nothing umlogs does with an archive extracts it: a slip member is a name in the manifest only."""
    evil = tmp_path / "evil.zip"
    target = tmp_path / "outside.log"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr(f"../../..{target}", GOOD.read_bytes())
        z.writestr("..\\..\\windows.log", GOOD.read_bytes()[:3000])
    code, stdout, stderr, _ = run(["ingest", "evil.zip", "-o", "ds", "-q"], tmp_path)
    assert code == 0 and not target.exists()
    paths = {r["path"] for r in dataset.read_manifest(tmp_path / "ds").to_pylist()}
    assert all(".." not in p for p in paths) and len(paths) == 2
