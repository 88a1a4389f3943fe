"""The ``umlogs`` command: a thin shell over :mod:`umlogs.pipeline.api`. Each command parses its
arguments, calls one library function and renders the result. Heavy modules (pyarrow, duckdb, lark)
are imported inside the commands, so ``umlogs --help`` starts fast.

Exit codes: 0 done; 1 a finding at or above ``--fail-on``; 2 usage error or unreadable input.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

# Arrow's allocator, chosen before pyarrow loads (it reads this once): jemalloc, which pyarrow's Linux
# wheels carry, leaves 45-90 MB less resident than their default mimalloc at the same speed when
# chunks' tables are made and freed by several threads (docs/performance.md). A value already set wins.
if sys.platform == "linux":
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

app = typer.Typer(
    help="Parse and explain Azure Update Management logs: WindowsUpdate.log, Linux update worker logs, "
    "and exception text from the Azure portal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no rich import on `umlogs --help`
)

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2

Paths = Annotated[list[Path], typer.Argument(help="Log files to read.", show_default=False)]
FormatName = Annotated[
    Optional[str], typer.Option("--format", "-f", help="Force a format instead of sniffing (see `umlogs formats`).")
]
Host = Annotated[Optional[str], typer.Option(help="Host name to record on every event.")]
Tz = Annotated[
    Optional[str],
    typer.Option(help="UTC offset of the logs' local time (+0200, -05:00, UTC) where a log does not state its own."),
]
MaxLine = Annotated[
    int,
    typer.Option("--max-line", min=1, help="Longest line kept, in characters; longer lines are cut to it and counted."),
]
MAX_LINE_DEFAULT = 8 << 20


def _cut(r) -> str:
    """The note a file's summary gets when lines were cut to ``--max-line``."""
    return f", {r.long_lines} lines longer than --max-line cut" if r.long_lines else ""


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, so a message naming a file
    stays one line whatever the file is called.

    >>> one_line("a b\\né.log: bad\\r")
    'a b\\\\né.log: bad\\\\r'
    """
    return text.translate(_ESCAPES)


_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029) if c != 0x09}


def _fail(message: str) -> None:
    typer.echo(f"umlogs: error: {one_line(message)}", err=True)


def _version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"umlogs {version('umlogs')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Parse and explain Azure Update Management logs."""


@app.command()
def parse(
    paths: Paths,
    out: Annotated[Path, typer.Option("-o", "--out", help="Parquet file for the events.")],
    format: FormatName = None,
    host: Host = None,
    tz: Tz = None,
    max_line: MaxLine = MAX_LINE_DEFAULT,
) -> None:
    """Parse logs into typed events in Parquet (parse issues go to OUT.issues.parquet).

    Example:
        umlogs parse samples/windows_update/classic.log -o events.parquet
    """
    from umlogs.pipeline import api

    try:
        offset = api.parse_offset(tz) if tz else None
        run = api.parse_paths(paths, out, format=format, host=host, utc_offset=offset, max_line=max_line)
    except (api.UmlogsError, KeyError) as error:
        _fail(str(error).strip("'\""))
        raise typer.Exit(EXIT_INPUT) from None
    for r in run.results:
        if r.error:
            _fail(f"{r.source}: {r.error}")
        else:
            typer.echo(
                f"{one_line(r.source)}: {r.format}, {r.event_count} events, {len(r.issues)} parse issues, "
                f"{r.lines} lines ({r.blank} blank), {r.encoding}"
                + (f", {r.replaced} undecodable characters replaced" if r.replaced else "")
                + _cut(r)
            )
    events = sum(r.event_count for r in run.results)
    issues = sum(len(r.issues) for r in run.results)
    typer.echo(f"wrote {events} events to {run.events_path} and {issues} parse issues to {run.issues_path}")
    if run.failed:
        raise typer.Exit(EXIT_INPUT)


OutputFormat = Annotated[str, typer.Option("--format", "-F", help="table, json, ndjson, markdown or csv.")]
RuleDirs = Annotated[
    Optional[list[Path]], typer.Option("--rules", help="A directory of extra rule files (repeatable).")
]
FailOn = Annotated[
    Optional[str], typer.Option("--fail-on", help="Exit 1 when a finding is at or above this severity: warning or error.")
]


@app.command()
def classify(
    paths: Paths,
    output: OutputFormat = "table",
    rules: RuleDirs = None,
    fail_on: FailOn = None,
    format: Annotated[Optional[str], typer.Option("--input-format", help="Force an input format (see `umlogs formats`).")] = None,
    host: Host = None,
    tz: Tz = None,
    max_line: MaxLine = MAX_LINE_DEFAULT,
) -> None:
    """Parse logs and classify them: findings with cause, resolution and reference.

    Example:
        umlogs classify samples/windows_update/classic.log --format markdown
    """
    from umlogs.pipeline import api, render
    from umlogs.pipeline.rules import RuleError

    if output not in render.FORMATS:
        _fail(f"--format {output!r}: choose from {', '.join(render.FORMATS)}")
        raise typer.Exit(EXIT_INPUT)
    if fail_on not in (None, "warning", "error"):
        _fail(f"--fail-on {fail_on!r}: choose warning or error")
        raise typer.Exit(EXIT_INPUT)
    try:
        offset = api.parse_offset(tz) if tz else None
        run = api.classify_paths(paths, rule_dirs=rules or (), format=format, host=host, utc_offset=offset,
                                 max_line=max_line)  # fmt: skip
    except (api.UmlogsError, RuleError, KeyError) as error:
        _fail(str(error).strip("'\""))
        raise typer.Exit(EXIT_INPUT) from None
    for r in run.results:
        if r.error:
            _fail(f"{r.source}: {r.error}")
        elif r.issues:
            typer.echo(f"umlogs: {one_line(r.source)}: {len(r.issues)} lines no grammar accepts (see `umlogs parse`)", err=True)
        if r.long_lines:
            typer.echo(f"umlogs: {one_line(r.source)}: {r.long_lines} lines longer than --max-line {max_line} cut", err=True)
    if output == "table":
        render.print_findings_table(run.findings)
    else:
        typer.echo(render.findings_text(run.findings, output))
    if any(r.error for r in run.results):
        raise typer.Exit(EXIT_INPUT)
    if fail_on and api.severity_at_least(run.findings, fail_on):
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def explain(
    what: Annotated[str, typer.Argument(help="An HRESULT (0x8024402C, 8024402c, -2145107924), error text, or - for standard input.")],
    output: Annotated[str, typer.Option("--format", "-F", help="text or json.")] = "text",
) -> None:
    """Decode an HRESULT, or explain an error message copied from the portal or job output.

    Example:
        umlogs explain 0x8024402C
    """
    import json

    from umlogs.pipeline import explain as explaining

    if output not in ("text", "json"):
        _fail(f"--format {output!r}: choose text or json")
        raise typer.Exit(EXIT_INPUT)
    text = sys.stdin.read() if what == "-" else what
    try:
        result = explaining.explain(text)
    except explaining.NotACode as error:
        _fail(str(error))
        raise typer.Exit(EXIT_INPUT) from None
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str) if output == "json" else explaining.as_text(result))


@app.command("rules")
def rules_command(
    rule_id: Annotated[Optional[str], typer.Argument(help="Show this rule in full.")] = None,
    rules: RuleDirs = None,
) -> None:
    """List the classification rules, or show one in full.

    Example:
        umlogs rules UM1001
    """
    from umlogs.pipeline.rules import RuleError, load_rules

    try:
        loaded = load_rules(tuple(rules or ()))
    except RuleError as error:
        _fail(str(error))
        raise typer.Exit(EXIT_INPUT) from None
    if rule_id is None:
        for r in loaded:
            typer.echo(f"{r.id}  {r.severity:<8} {r.scenario:<40} {r.title}")
        return
    match = [r for r in loaded if r.id == rule_id.upper()]
    if not match:
        _fail(f"no rule {rule_id!r} (`umlogs rules` lists them)")
        raise typer.Exit(EXIT_INPUT)
    from umlogs.pipeline.rules import describe

    typer.echo(describe(match[0]))


@app.command()
def formats() -> None:
    """List the log formats umlogs reads.

    Example:
        umlogs formats
    """
    from umlogs import parsers

    for p in parsers.PARSERS:
        typer.echo(f"{p.NAME:<18} {p.DESCRIPTION}")


def run() -> None:
    """The ``umlogs`` console command: :data:`app`, then an exit that skips the interpreter's
    teardown. Freeing every module's objects one by one and the last garbage collections take
    0.15-0.25 s, a fifth of a small file's run (docs/performance.md). By the time a command returns,
    it has closed its files and joined its threads, and every DuckDB database is in memory; the
    output streams are flushed here (a reader that went away is no error of ours)."""
    try:
        app()
        code = EXIT_OK
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # sys.exit("message"): the message, and the usual exit code
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or EXIT_OK)


from umlogs.pipeline.cli_fleet import register as _register_fleet  # noqa: E402
_register_fleet(app)
from umlogs.pipeline.cli_export import register as _register_export  # noqa: E402
_register_export(app)
