"""``umlogs tail -f`` as a subprocess following a file another writer appends to, rotates and
truncates; records compared with ``umlogs export`` of the same lines; SIGTERM and SIGINT stop it
with exit 0 and no traceback. Every wait is bounded."""

from __future__ import annotations

import doctest
import json
import os
import queue
import random
import select
import signal
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from umlogs.pipeline import tail as tailing
from umlogs.pipeline.cli import app

from .conftest import SAMPLES, WAIT

LINES = (SAMPLES / "windows_update" / "windows10.log").read_text(encoding="utf-8").splitlines(keepends=True)


class Tail:
    """A running ``umlogs tail`` and the JSON records it printed."""

    def __init__(self, path, *args: str) -> None:
        command = [sys.executable, "-c", "from umlogs.pipeline.cli import app; app()", "tail", str(path), *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        encoding="utf-8")
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: queue.Queue[str] = queue.Queue()
        self.readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
                        threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True)]
        for reader in self.readers:
            reader.start()
        try:
            started = self.errors.get(timeout=WAIT)
        except queue.Empty:
            self.stop(signal.SIGTERM)
            pytest.fail("tail did not start")
        assert started.startswith("umlogs: following "), started

    @staticmethod
    def _read(stream, into: queue.Queue) -> None:
        for line in stream:
            into.put(line)

    def stderr(self) -> str:
        out = []
        while not self.errors.empty():
            out.append(self.errors.get())
        return "".join(out)

    def take(self, n: int) -> list[dict]:
        out = []
        for _ in range(n):
            try:
                out.append(json.loads(self.lines.get(timeout=WAIT)))
            except queue.Empty:
                self.stop(signal.SIGTERM)
                pytest.fail(f"waited for {n} records, got {len(out)}: {self.stderr()}")
        return out

    def stop(self, sig) -> tuple[int, str]:
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=WAIT)
            pytest.fail("tail did not stop")
        for reader in self.readers:  # the pipes are at their end once the process exited
            reader.join(timeout=WAIT)
        return code, self.stderr()


def append(path, lines) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(lines)
        handle.flush()


def export_ids(path, what: str) -> list[str]:
    result = CliRunner().invoke(app, ["export", str(path), "--format", "ecs", "--what", what])
    assert result.exit_code == 0, result.output
    return [json.loads(line)["event"]["id"] for line in result.stdout.splitlines()]



@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_follows_appends_rotation_and_truncation(tmp_path, sig):
    log = tmp_path / "WindowsUpdate.log"
    append(log, LINES[:10])
    t = Tail(log, "-f", "--format", "ecs", "--what", "events", "--interval", "0.05")
    try:
        append(log, LINES[10:20])
        first = t.take(10)
        assert [r["umlogs"]["line_no"] for r in first] == list(range(11, 21)), "existing lines are skipped"
        assert [r["event"]["id"] for r in first] == export_ids(log, "events")[10:20], "ids as umlogs export gives"

        os.rename(log, tmp_path / "WindowsUpdate.log.1")  # rotation: a new file under the same name
        append(log, LINES[20:25])
        rotated = t.take(5)
        assert [r["umlogs"]["line_no"] for r in rotated] == [1, 2, 3, 4, 5]
        assert [r["message"] for r in rotated] == [r["message"] for r in _export(log)]

        with open(log, "w", encoding="utf-8") as handle:  # truncation: same file, shorter
            handle.writelines(LINES[30:32])
        truncated = t.take(2)
        assert [r["umlogs"]["line_no"] for r in truncated] == [1, 2]
        assert [r["event"]["id"] for r in truncated] == export_ids(log, "events")
    finally:
        code, err = t.stop(sig)
    assert code == 0 and "Traceback" not in err, err
    assert t.lines.empty(), "nothing emitted twice"


def _export(path) -> list[dict]:
    result = CliRunner().invoke(app, ["export", str(path), "--format", "ecs", "--what", "events"])
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_findings_appear_once(tmp_path):
    log = tmp_path / "WindowsUpdate.log"
    log.write_text("")
    t = Tail(log, "-f", "--format", "ecs", "--what", "findings", "--interval", "0.05")
    try:
        append(log, LINES[: len(LINES) // 2])
        append(log, LINES[len(LINES) // 2 :])
        expected = set(export_ids(log, "findings"))  # finding ids name the source file
        assert expected, "the sample raises findings"
        seen = []
        while not expected <= {r["event"]["id"] for r in seen}:
            seen += t.take(1)
    finally:
        code, err = t.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in err
    ids = [r["event"]["id"] for r in seen]
    assert len(ids) == len(set(ids)), "a finding is emitted once"
    assert all(r["event"]["kind"] == "alert" for r in seen)


def test_without_follow_reads_once(tmp_path):
    log = tmp_path / "a.log"
    append(log, LINES[:8])
    result = CliRunner().invoke(app, ["tail", str(log), "--format", "cef", "--from-start", "--what", "events"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 8


def test_missing_file_and_unknown_format_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["tail", str(tmp_path / "none.log"), "--format", "cef"])
    assert result.exit_code == 2 and "no such file" in result.stderr
    junk = tmp_path / "junk.log"
    junk.write_text("hello\n" * 30)
    result = CliRunner().invoke(app, ["tail", str(junk), "--format", "cef", "--from-start"])
    assert result.exit_code == 2 and "not a known log format" in result.stderr


def test_follower_utf16(tmp_path):
    log = tmp_path / "u.log"
    log.write_bytes("\ufeffone\r\ntw".encode("utf-16-le"))
    follower = tailing.Follower(log)
    assert follower.poll() == ["one"]
    with open(log, "ab") as handle:
        handle.write("o\r\n".encode("utf-16-le"))
    assert follower.poll() == ["two"]
    follower.close()


def test_doctests():
    assert doctest.testmod(tailing).failed == 0


def test_tail_to_hec(tmp_path, hec_http, monkeypatch):
    log = tmp_path / "a.log"
    append(log, LINES[:12])
    monkeypatch.setenv("UMLOGS_HEC_TOKEN", "t")
    result = CliRunner().invoke(app, ["tail", str(log), "--format", "hec", "--from-start", "--what", "events",
                                      "--to", hec_http.url])
    assert result.exit_code == 0, result.output
    assert "sent 12 records" in result.stderr
    assert [e["event"]["line_no"] for e in hec_http.events()] == list(range(1, 13))


def test_bad_rules_are_reported_before_reading(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "UM9999_x.toml").write_text(
        'id = "UM9999"\ntitle = "t"\nscenario = "hresult"\nseverity = "info"\ncause = "c"\nresolution = "r"\n'
        'reference = "https://learn.microsoft.com/azure/automation/troubleshoot/update-management#hresult"\n'
        'sql = "SELECT nope FROM events"\n')
    log = tmp_path / "a.log"
    append(log, LINES[:3])
    result = CliRunner().invoke(app, ["tail", str(log), "--format", "cef", "--rules", str(rules)])
    assert result.exit_code == 2 and "sql does not run" in result.stderr and result.stdout == ""


def test_a_signal_during_the_wait_between_polls_stops_it():
    """The stop flag's handler takes no lock: a handler that set a ``threading.Event`` deadlocked
    when the signal landed while the main thread held the event's lock inside ``Event.wait`` (one
    SIGTERM in eight with a 0.2 ms wait; with tail's 50 ms polls rarely, as CI once saw). A child
    waits as tail does, 200 times; each time this process sends it SIGTERM at a random moment."""
    script = """
import sys
from umlogs.pipeline.cli_export import _StopFlag
for _ in range(200):
    flag = _StopFlag()
    with flag.installed():
        print("waiting", flush=True)
        while not flag.is_set():
            flag.wait(0.0002)
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        for n in range(200):
            ready, _, _ = select.select([child.stdout], [], [], WAIT)
            assert ready and child.stdout.readline() == "waiting\n", f"round {n}: the child hung after SIGTERM"
            time.sleep(random.random() / 200)
            child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=WAIT) == 0
    finally:
        child.kill()
        child.wait()
