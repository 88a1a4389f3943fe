"""The fleet commands, ``ingest``, ``report`` and ``query``, added to the ``umlogs`` app by
:func:`register`. Thin like the rest of the CLI: heavy modules are imported inside the commands.

Exit codes: 0 done; 2 usage error, a locked or unusable dataset, or an input file rejected (each
rejected file is named on one line with its reason; the rest of the batch is still ingested);
130 or 143 stopped by SIGINT or SIGTERM (what was recorded is complete; run again to finish).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

EXIT_INPUT = 2
SKIPPED_SHOWN = 20


def _fail(message: str) -> None:
    from umlogs.pipeline.cli import one_line

    typer.echo(f"umlogs: error: {one_line(message)}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``ingest``, ``report`` and ``query`` to ``app``."""
    app.command()(ingest)
    app.command()(report)
    app.command()(query)


DatasetArg = Annotated[Path, typer.Argument(help="A dataset folder written by `umlogs ingest`.", show_default=False)]
Output = Annotated[str, typer.Option("--format", "-F", help="table, json, markdown or csv.")]
RuleDirs = Annotated[Optional[list[Path]], typer.Option("--rules", help="A directory of extra rule files (repeatable).")]


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders, archives (zip, tar, tar.gz, gz), or - for standard input.", show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="The dataset folder (created if missing).")],
    format: Annotated[Optional[str], typer.Option("--format", "-f", help="Force a format instead of sniffing.")] = None,
    host: Annotated[Optional[str], typer.Option(help="Host of every file (else from the bundle layout or the log).")] = None,
    tz: Annotated[Optional[str], typer.Option(help="UTC offset of the logs' local time (+0200, -05:00, UTC).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Parallel parse processes (default: one per CPU).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, only the summary.")] = False,
    max_total_bytes: Annotated[Optional[int], typer.Option(help="Bytes one input path may expand to (default 100 GiB).")] = None,
    max_ratio: Annotated[Optional[int], typer.Option(help="Largest decompression ratio (default 100).")] = None,
    max_members: Annotated[Optional[int], typer.Option(help="Archive members per input path (default 100000).")] = None,
    max_depth: Annotated[Optional[int], typer.Option(help="Archives nested in archives (default 4).")] = None,
    max_line: Annotated[Optional[int], typer.Option(help="Longest line kept, in characters; longer ones are cut and counted (default 8388608).")] = None,
) -> None:
    """Ingest log bundles (folders, archives, archives in archives) into a Parquet dataset.

    Example:
        umlogs ingest fleet/ web07.zip -o fleet.umlogs
    """
    import dataclasses
    import os

    from umlogs import parsers
    from umlogs.pipeline import api, dataset, discover
    from umlogs.pipeline import ingest as ingesting

    try:
        if format:
            parsers.by_name(format)
        offset = api.parse_offset(tz) if tz else None
        if host and not discover.valid_host(host):
            raise api.UmlogsError(f"--host {host!r}: not a machine name (letters, digits, '-', '_' and '.')")
        overrides = {k: v for k, v in (("max_total_bytes", max_total_bytes), ("max_ratio", max_ratio),
                     ("max_members", max_members), ("max_depth", max_depth)) if v is not None}  # fmt: skip
        if any(v < 1 for v in overrides.values()) or (workers is not None and workers < 1) or (max_line is not None and max_line < 1):
            raise api.UmlogsError("limits (--max-*, --max-line) and --workers must be at least 1")
        missing = [p for p in paths if p != "-" and not os.path.lexists(p)]
        if missing:
            raise api.UmlogsError(f"{missing[0]}: no such file or folder")
        options = ingesting.Options(
            format=format, host=discover.valid_host(host), utc_offset=offset,
            workers=workers or os.cpu_count() or 1, limits=dataclasses.replace(discover.Limits(), **overrides),
            max_line=max_line or ingesting.MAX_LINE_CHARS,
        )  # fmt: skip
        with _progress(quiet) as progress, _Stop() as stop:
            summary = ingesting.ingest(paths, out, options, progress=progress, stop=stop.requested)
    except (api.UmlogsError, dataset.DatasetError, KeyError) as error:
        _fail(str(error).strip("'\""))
        raise typer.Exit(EXIT_INPUT) from None
    except OSError as error:  # the dataset's own files (disk full while recording a file, a read-only folder)
        reason = "no space left on device" if ingesting.no_space(error) else (error.strerror or str(error))
        _fail(f"{out}: {reason}; run the same command again once fixed (what was recorded is kept)")
        raise typer.Exit(EXIT_INPUT) from None
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once; the next ingest removes what was not recorded
        _fail(f"{out}: interrupted; run the same command again to finish (the dataset is consistent)")
        raise typer.Exit(128 + 2) from None
    for o in summary.outcomes:
        if o.status == "rejected":
            _fail(f"{o.path}: {o.reason}")
    typer.echo(summary_text(summary))
    if summary.interrupted:
        _fail(f"{out}: interrupted by {stop.name}: {summary.seen} files recorded; run the same command again to finish")
        raise typer.Exit(128 + stop.signum)
    if summary.rejected:
        raise typer.Exit(EXIT_INPUT)


class _Stop:
    """SIGINT and SIGTERM ask the ingest to stop at the next file; a second one acts at once (the
    default handlers are back)."""

    def __init__(self) -> None:
        self.signum = 0
        self.name = ""
        self._previous: dict = {}

    def __enter__(self):
        import signal

        def handler(signum, _frame):
            self.signum, self.name = signum, signal.Signals(signum).name
            for s, previous in self._previous.items():
                signal.signal(s, previous)

        self._previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for s, previous in self._previous.items():
            signal.signal(s, previous)

    def requested(self) -> bool:
        return bool(self.signum)


def summary_text(s) -> str:
    """The run summary: counts, the invariant, and the first skipped files."""
    from umlogs.pipeline.cli import one_line

    rate = s.events / s.elapsed if s.elapsed else 0.0
    lines = [
        f"ingested into {s.dataset}: files seen {s.seen} = parsed {s.parsed} + skipped {s.skipped} "
        f"+ rejected {s.rejected} ({'true' if s.consistent else 'FALSE'}); {s.duplicates} duplicates",
        f"events {s.events}, parse issues {s.issues}, {s.bytes / 1e6:.1f} MB read, "
        f"elapsed {s.elapsed:.1f} s ({rate:,.0f} events/s)",
        "lines read = event lines + issue lines + blank in every parsed file ("
        + ("true" if not s.unaccounted else f"FALSE for {len(s.unaccounted)}: {s.unaccounted[0]}") + ")"
        + (f"; {s.long_lines} lines longer than --max-line cut" if s.long_lines else ""),
    ]
    skipped = [o for o in s.outcomes if o.status == "skipped"]
    for o in skipped[:SKIPPED_SHOWN]:
        lines.append(one_line(f"skipped {o.path}: {o.reason}"))
    if len(skipped) > SKIPPED_SHOWN:
        lines.append(f"… and {len(skipped) - SKIPPED_SHOWN} more skipped (see files.parquet, or `umlogs query`)")
    return "\n".join(lines)


class _progress:
    """A rich progress line on a terminal (files, bytes, events/s); nothing in a pipe or with --quiet."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        import time

        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True)  # fmt: skip
        self.bar.start()
        task = self.bar.add_task("starting")
        counts = {"files": 0, "bytes": 0, "events": 0, "start": time.monotonic()}

        def update(outcome) -> None:
            counts["files"] += 1
            counts["bytes"] += outcome.size or 0
            counts["events"] += outcome.events
            rate = counts["events"] / max(time.monotonic() - counts["start"], 1e-6)
            self.bar.update(task, description=f"{counts['files']} files · {counts['bytes'] / 1e6:,.1f} MB · "
                                              f"{counts['events']:,} events · {rate:,.0f} events/s")  # fmt: skip

        return update

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.stop()


def report(
    path: DatasetArg,
    output: Output = "table",
    rules: RuleDirs = None,
) -> None:
    """Fleet report: per scenario how many hosts, which, first and last seen; per host its findings.

    Example:
        umlogs report fleet.umlogs --format markdown
    """
    from umlogs.pipeline import dataset
    from umlogs.pipeline import report as reporting
    from umlogs.pipeline.rules import RuleError, load_rules

    _check_format(output, reporting.FORMATS)
    try:
        loaded = _rules_for(path, rules, load_rules)
        result = reporting.fleet_report(path, loaded)
    except (RuleError, dataset.DatasetError) as error:
        _fail(str(error))
        raise typer.Exit(EXIT_INPUT) from None
    if output != "table":
        typer.echo(reporting.report_text(result, output))
        return
    reporting.print_rows(*reporting.scenario_rows(result), title="Scenarios")
    reporting.print_rows(*reporting.host_rows(result), title="Hosts")


def query(
    path: DatasetArg,
    sql: Annotated[str, typer.Argument(help="One SELECT over the views events, issues, files and findings.")],
    output: Output = "table",
    rules: RuleDirs = None,
) -> None:
    """Run one read-only SQL query over a dataset (views: events, issues, files, findings).

    Example:
        umlogs query fleet.umlogs "SELECT host, count(*) FROM events GROUP BY host"
    """
    from umlogs.pipeline import dataset
    from umlogs.pipeline import report as reporting
    from umlogs.pipeline.rules import RuleError, load_rules

    _check_format(output, reporting.FORMATS)
    try:
        loaded = _rules_for(path, rules, load_rules)
        columns, rows = reporting.query(path, sql, loaded)
    except (RuleError, dataset.DatasetError, reporting.QueryError) as error:
        _fail(f"{path}: {error}")
        raise typer.Exit(EXIT_INPUT) from None
    if output == "table":
        reporting.print_rows(columns, rows)
    else:
        typer.echo(reporting.rows_text(columns, rows, output))


def _check_format(output: str, formats: tuple[str, ...]) -> None:
    if output not in formats:
        _fail(f"--format {output!r}: choose from {', '.join(formats)}")
        raise typer.Exit(EXIT_INPUT)


def _rules_for(path: Path, rule_dirs, load_rules):
    from umlogs.pipeline import dataset
    from umlogs.pipeline.classify import check_rules

    if not dataset.is_dataset(path):
        raise dataset.DatasetError(f"{path}: not an umlogs dataset (no {dataset.MANIFEST}; see `umlogs ingest`)")
    loaded = load_rules(tuple(rule_dirs or ()))
    check_rules(loaded)
    return loaded
