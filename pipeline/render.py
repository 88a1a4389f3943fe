"""Findings and rules as text: a rich table for a terminal, JSON, NDJSON, Markdown and CSV.

The JSON shape of a finding is documented in docs/findings.md.

>>> print(markdown_table(["a", "b"], [["1", "x|y"]]))
| a | b |
|---|---|
| 1 | x\\|y |
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from umlogs.pipeline.classify import Finding

FORMATS = ("table", "json", "ndjson", "markdown", "csv")
_COLUMNS = ("severity", "rule_id", "title", "hresult", "hresult_name", "count", "hosts", "first_seen", "last_seen")


def findings_text(findings: Sequence[Finding], fmt: str) -> str:
    """``findings`` in one of :data:`FORMATS` other than ``table`` (which needs a console)."""
    if fmt == "json":
        return json.dumps([f.to_dict() for f in findings], indent=2, ensure_ascii=False)
    if fmt == "ndjson":
        return "\n".join(json.dumps(f.to_dict(), ensure_ascii=False) for f in findings)
    rows = [_row(f) for f in findings]
    if fmt == "markdown":
        return markdown_table(list(_COLUMNS) + ["scenario", "resolution"], [r + [f.scenario, f.resolution] for r, f in zip(rows, findings)])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(list(_COLUMNS) + ["scenario", "sources", "cause", "resolution", "reference"])
        for row, f in zip(rows, findings):
            writer.writerow(row + [f.scenario, ";".join(f.sources), f.cause, f.resolution, f.reference])
        return out.getvalue().rstrip("\n")
    raise ValueError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")


def print_findings_table(findings: Sequence[Finding]) -> None:
    """A rich table on standard output, one row per finding, then what to do for each rule."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not findings:
        console.print("No findings.")
        return
    colours = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "cyan"}
    table = Table(show_lines=False, expand=False)
    for name, justify in (("severity", "left"), ("rule", "left"), ("code", "left"), ("count", "right"), ("finding", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for f in findings:
        code = f"{f.hresult} {f.hresult_name or ''}".strip() if f.hresult else ""
        where = ", ".join(f.hosts) or ", ".join(s.replace("\\", "/").rsplit("/", 1)[-1] for s in f.sources)
        first = f.evidence[0] if f.evidence else None
        example = f"\n[dim]{where} line {first.line_no}: {first.text[:120]}[/]" if first else ""
        table.add_row(f"[{colours[f.severity]}]{f.severity}[/]", f.rule_id, code, str(f.count), f.title + example)
    console.print(table)
    console.print()
    shown: set[str] = set()
    for f in findings:
        if f.rule_id not in shown:
            shown.add(f.rule_id)
            console.print(f"[bold]{f.rule_id}[/] {f.title}\n  cause: {f.cause}\n  what to do: {f.resolution}\n  [dim]{f.reference}[/]\n")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; ``|`` and newlines inside cells are escaped."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _row(f: Finding) -> list[str]:
    return [
        f.severity, f.rule_id, f.title, f.hresult or "", f.hresult_name or "", str(f.count), ";".join(f.hosts),
        f.first_seen.isoformat() if f.first_seen else "", f.last_seen.isoformat() if f.last_seen else "",
    ]  # fmt: skip
