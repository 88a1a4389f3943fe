"""Fleet answers over a dataset: the rules run once over every event, findings are counted per host,
then per scenario (how many hosts, which, first and last seen); and read-only SQL over the views
``events``, ``issues``, ``files`` and ``findings``.

>>> print(rows_text(["host", "n"], [("web01", 2)], "csv"))
host,n
web01,2
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from umlogs.pipeline import dataset
from umlogs.pipeline.classify import connect, hits_table
from umlogs.pipeline.render import markdown_table
from umlogs.pipeline.rules import SEVERITIES, Rule

FORMATS = ("table", "json", "markdown", "csv")
UNKNOWN_HOST = "(unknown)"
FINDINGS_SCHEMA = pa.schema(
    [
        ("scenario", pa.string()), ("rule_id", pa.string()), ("title", pa.string()), ("severity", pa.string()),
        ("host", pa.string()), ("count", pa.int64()), ("first_seen", pa.timestamp("us")), ("last_seen", pa.timestamp("us")),
    ]
)  # fmt: skip


class QueryError(Exception):
    """SQL that is not one read-only SELECT, or that DuckDB rejects."""


@dataclass(frozen=True, slots=True)
class HostFinding:
    """What one rule found on one host."""

    scenario: str
    rule_id: str
    title: str
    severity: str
    host: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class Scenario:
    """One troubleshooting scenario across the fleet."""

    scenario: str
    severity: str
    rules: tuple[str, ...]
    hosts: tuple[str, ...]
    events: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class Report:
    """Per scenario the hosts; per host its findings (hosts without findings included)."""

    scenarios: list[Scenario]
    hosts: dict[str, list[HostFinding]]

    def to_dict(self) -> dict:
        def plain(obj) -> dict:
            data = asdict(obj)
            for key in ("first_seen", "last_seen"):
                data[key] = data[key].isoformat() if data[key] else None
            return data

        scenarios = [{**plain(s), "host_count": len(s.hosts)} for s in self.scenarios]
        hosts = [{"host": h, "findings": [plain(f) for f in fs]} for h, fs in self.hosts.items()]
        return {"scenarios": scenarios, "hosts": hosts}


def host_findings(con: duckdb.DuckDBPyConnection, rules: Sequence[Rule]) -> list[HostFinding]:
    """Every rule over ``events`` in one query, counted per host (events without a host count as
    ``(unknown)``)."""
    if not rules:
        return []
    with hits_table(con, rules):
        rows = con.execute(f"""
            SELECT h.rule, coalesce(e.host, '{UNKNOWN_HOST}'), h.severity, count(*), min(e.timestamp), max(e.timestamp)
            FROM (SELECT DISTINCT rule, event_id, severity FROM hits) h JOIN events e USING (event_id)
            GROUP BY ALL ORDER BY 1, 2, 3
        """).fetchall()  # fmt: skip
    return [HostFinding(rules[n].scenario, rules[n].id, rules[n].title, sev, host, count, first, last)
            for n, host, sev, count, first, last in rows]  # fmt: skip


def fleet_report(root: Path, rules: Sequence[Rule]) -> Report:
    """The fleet report of the dataset at ``root``."""
    con = open_views(root, rules)
    found = [HostFinding(*row) for row in con.execute("SELECT * FROM findings").fetchall()]
    hosts = {h or UNKNOWN_HOST: [] for (h,) in con.execute(
        "SELECT DISTINCT host FROM files WHERE status <> 'skipped' AND events > 0 ORDER BY host").fetchall()}  # fmt: skip
    for f in sorted(found, key=lambda f: (-SEVERITIES.index(f.severity), f.rule_id)):
        hosts.setdefault(f.host, []).append(f)
    scenarios: dict[str, list[HostFinding]] = {}
    for f in found:
        scenarios.setdefault(f.scenario, []).append(f)
    summary = [
        Scenario(
            scenario=name,
            severity=max((f.severity for f in fs), key=SEVERITIES.index),
            rules=tuple(sorted({f.rule_id for f in fs})),
            hosts=tuple(sorted({f.host for f in fs})),
            events=sum(f.count for f in fs),
            first_seen=min((f.first_seen for f in fs if f.first_seen), default=None),
            last_seen=max((f.last_seen for f in fs if f.last_seen), default=None),
        )
        for name, fs in scenarios.items()
    ]
    summary.sort(key=lambda s: (-SEVERITIES.index(s.severity), -len(s.hosts), s.scenario))
    return Report(summary, dict(sorted(hosts.items())))


def open_views(root: Path, rules: Sequence[Rule]) -> duckdb.DuckDBPyConnection:
    """A locked-down DuckDB connection (no file access) with the views ``events``, ``issues``,
    ``files`` and ``findings`` (one row per rule and host)."""
    con = connect(dataset.events_dataset(root))
    con.register("issues", dataset.issues_dataset(root))
    con.register("files", dataset.read_manifest(root))
    found = host_findings(con, rules)
    table = pa.Table.from_pylist([asdict(f) for f in found], schema=FINDINGS_SCHEMA)
    con.register("findings", table)
    return con


def query(root: Path, sql: str, rules: Sequence[Rule]) -> tuple[list[str], list[tuple]]:
    """Run one read-only SELECT over the dataset's views; column names and rows."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise QueryError(f"SQL does not parse: {str(error).splitlines()[0]}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError("only one read-only SELECT statement is allowed (views: events, issues, files, findings)")
    con = open_views(root, rules)
    try:
        result = con.sql(sql.strip().rstrip(";"))
        return list(result.columns), result.fetchall()
    except duckdb.Error as error:
        raise QueryError(str(error).splitlines()[0]) from None


def rows_text(columns: Sequence[str], rows: Sequence[Sequence], fmt: str) -> str:
    """Query rows as ``json`` (a list of objects), ``markdown`` or ``csv``."""
    if fmt == "json":
        return json.dumps([dict(zip(columns, row)) for row in rows], indent=2, ensure_ascii=False, default=_plain)
    if fmt == "markdown":
        return markdown_table(list(columns), [[_cell(v) for v in row] for row in rows])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        return out.getvalue().rstrip("\n")
    raise ValueError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")


def report_text(report: Report, fmt: str) -> str:
    """The report as ``json``, ``markdown`` (two tables) or ``csv`` (one row per host and rule)."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
    columns, rows = scenario_rows(report)
    if fmt == "markdown":
        hosts_cols, hosts_rows = host_rows(report)
        return "## Scenarios\n\n" + rows_text(columns, rows, fmt) + "\n\n## Hosts\n\n" + rows_text(hosts_cols, hosts_rows, fmt)
    if fmt == "csv":
        return rows_text(*host_rows(report), fmt)
    raise ValueError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")


def scenario_rows(report: Report) -> tuple[list[str], list[list]]:
    columns = ["scenario", "severity", "host_count", "hosts", "rules", "events", "first_seen", "last_seen"]
    rows = [[s.scenario, s.severity, len(s.hosts), ", ".join(s.hosts), ", ".join(s.rules), s.events, s.first_seen, s.last_seen]
            for s in report.scenarios]  # fmt: skip
    return columns, rows


def host_rows(report: Report) -> tuple[list[str], list[list]]:
    columns = ["host", "severity", "rule_id", "title", "scenario", "count", "first_seen", "last_seen"]
    rows = []
    for host, found in report.hosts.items():
        rows += [[host, f.severity, f.rule_id, f.title, f.scenario, f.count, f.first_seen, f.last_seen] for f in found]
        if not found:
            rows.append([host, "", "", "no findings", "", 0, None, None])
    return columns, rows


def print_rows(columns: Sequence[str], rows: Sequence[Sequence], title: str | None = None) -> None:
    """A rich table on standard output."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(str(name), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    Console().print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ";".join(map(str, value))
    return str(value)


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else str(value)
