"""The ``umlogs`` command: a thin shell over :mod:`umlogs.pipeline.api`. Each command parses its
arguments, calls one library function and renders the result. Heavy modules (pyarrow, duckdb, lark)
are imported inside the commands, so ``umlogs --help`` starts fast.

Exit codes: 0 done; 1 a finding at or above ``--fail-on``; 2 usage error or unreadable input.
"""

from __future__ import annotations

import sys
from importlib.metadata import version as _version
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="Parse and explain Azure Update Management logs: WindowsUpdate.log, Linux update worker logs, "
    "and exception text from the Azure portal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


def _fail(message: str) -> None:
    typer.echo(f"umlogs: error: {message}", err=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"umlogs {_version('umlogs')}")
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
) -> None:
    """Parse logs into typed events in Parquet (parse issues go to OUT.issues.parquet).

    Example:
        umlogs parse samples/windows_update/classic.log -o events.parquet
    """
    from umlogs.pipeline import api

    try:
        offset = api.parse_offset(tz) if tz else None
        run = api.parse_paths(paths, out, format=format, host=host, utc_offset=offset)
    except (api.UmlogsError, KeyError) as error:
        _fail(str(error).strip("'\""))
        raise typer.Exit(EXIT_INPUT) from None
    for r in run.results:
        if r.error:
            _fail(f"{r.source}: {r.error}")
        else:
            typer.echo(
                f"{r.source}: {r.format}, {len(r.events)} events, {len(r.issues)} parse issues, "
                f"{r.lines} lines ({r.blank} blank), {r.encoding}"
                + (f", {r.replaced} undecodable characters replaced" if r.replaced else "")
            )
    events = sum(len(r.events) for r in run.results)
    issues = sum(len(r.issues) for r in run.results)
    typer.echo(f"wrote {events} events to {run.events_path} and {issues} parse issues to {run.issues_path}")
    if run.failed:
        raise typer.Exit(EXIT_INPUT)


@app.command()
def formats() -> None:
    """List the log formats umlogs reads.

    Example:
        umlogs formats
    """
    from umlogs import parsers

    for p in parsers.PARSERS:
        typer.echo(f"{p.NAME:<18} {p.DESCRIPTION}")


def run() -> None:  # pragma: no cover - console entry point when called as a module
    sys.exit(app())
