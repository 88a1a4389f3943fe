"""Fleet answers: the report names, per scenario, the hosts a direct classify of each file names."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import shared_path
from umlogs.pipeline import report as reporting
from umlogs.pipeline.api import classify_paths
from umlogs.pipeline.cli import app
from umlogs.pipeline.ingest import Options, ingest
from umlogs.pipeline.rules import load_rules

HOSTS = {"web01": "etl-findingsanity.log", "web02": "etl-reeceketley.log", "web03": "classic-rkudache31.log"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    for host, name in HOSTS.items():
        (root / "fleet" / host).mkdir(parents=True)
        (root / "fleet" / host / "WindowsUpdate.log").write_bytes(shared_path("corpus", "windows_update", name).read_bytes())
    ingest([root / "fleet"], root / "ds", Options(workers=2))
    return root


def test_doctests():
    assert doctest.testmod(reporting).failed == 0


def test_report_names_the_right_hosts_per_scenario(fleet: Path):
    expected: dict[str, set[str]] = {}
    for host in HOSTS:
        for f in classify_paths([fleet / "fleet" / host / "WindowsUpdate.log"]).findings:
            expected.setdefault(f.scenario, set()).add(host)
    report = reporting.fleet_report(fleet / "ds", load_rules())
    assert {s.scenario: set(s.hosts) for s in report.scenarios} == expected
    assert set(report.hosts) == set(HOSTS)
    assert all(s.first_seen <= s.last_seen for s in report.scenarios if s.first_seen)


def test_classify_dataset_equals_classify_files(fleet: Path):
    files = classify_paths([fleet / "fleet" / h / "WindowsUpdate.log" for h in HOSTS]).findings
    stored = classify_paths([fleet / "ds"]).findings
    assert [(f.rule_id, f.hresult, f.count) for f in stored] == [(f.rule_id, f.hresult, f.count) for f in files]


@pytest.mark.parametrize("fmt", ["json", "markdown", "csv", "table"])
def test_report_cli_formats(fleet: Path, fmt):
    result = CliRunner().invoke(app, ["report", str(fleet / "ds"), "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        data = json.loads(result.output)
        assert {h["host"] for h in data["hosts"]} == set(HOSTS)
        assert all(s["host_count"] == len(s["hosts"]) for s in data["scenarios"])


def test_query_views_and_read_only(fleet: Path):
    runner = CliRunner()
    ok = runner.invoke(app, ["query", str(fleet / "ds"), "SELECT host, count(*) AS n FROM events GROUP BY host ORDER BY host",
                             "-F", "csv"])  # fmt: skip
    assert ok.exit_code == 0 and ok.output.splitlines()[0] == "host,n" and len(ok.output.splitlines()) == 4
    for sql in ("SELECT count(*) FROM files", "SELECT count(*) FROM issues", "SELECT count(*) FROM findings"):
        assert runner.invoke(app, ["query", str(fleet / "ds"), sql, "-F", "json"]).exit_code == 0
    for sql in ("COPY (SELECT 1) TO 'x.csv'", "SELECT * FROM read_csv('/etc/passwd')", "SELECT 1; SELECT 2"):
        bad = runner.invoke(app, ["query", str(fleet / "ds"), sql])
        assert bad.exit_code == 2 and bad.output.startswith("umlogs: error:") and "Traceback" not in bad.output
    assert not Path("x.csv").exists()


def test_not_a_dataset(tmp_path: Path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not an umlogs dataset" in result.output
