"""The ``export`` and ``tail`` commands (SIEM feed), added to the ``umlogs`` app by :func:`register`.

Heavy modules are imported inside the commands, so ``umlogs --help`` stays fast.

Exit codes: 0 done; 2 usage error or unreadable input; 3 delivery failed: records stayed unsent
after every retry (the count is printed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

EXIT_OK, EXIT_INPUT, EXIT_UNSENT = 0, 2, 3

Format = Annotated[str, typer.Option("--format", "-F", help="ecs, ocsf, cef, syslog or hec.", show_default=False)]
What = Annotated[str, typer.Option("--what", help="events, findings or all.")]
To = Annotated[
    Optional[str],
    typer.Option(
        "--to",
        help="Send instead of printing: syslog+tcp://HOST:PORT (RFC 6587 octet counting), syslog+udp://HOST:PORT, "
        "syslog+tls://HOST:PORT (syslog or cef), or http(s)://HOST:PORT for Splunk HEC (hec; token from "
        "UMLOGS_HEC_TOKEN).",
    ),
]
CaFile = Annotated[Optional[Path], typer.Option("--ca-file", help="CA certificates (PEM) to verify the receiver with.")]
Tz = Annotated[
    Optional[str],
    typer.Option(help="UTC offset of the logs' local time (+0200, -05:00, UTC) where a log does not state its own; "
                 "without it such times are taken as UTC and marked so."),
]
Host = Annotated[Optional[str], typer.Option(help="Host name to record on every event.")]
InputFormat = Annotated[Optional[str], typer.Option("--input-format", help="Force an input format (see `umlogs formats`).")]
RuleDirs = Annotated[Optional[list[Path]], typer.Option("--rules", help="A directory of extra rule files (repeatable).")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Records per batch (one HEC request, one TCP connection).")]
Retries = Annotated[int, typer.Option("--retries", help="Retries of a failed batch before its records count as unsent.")]
Backoff = Annotated[float, typer.Option("--backoff", help="Seconds before the first retry; doubled each time (at most 8).")]
Index = Annotated[Optional[str], typer.Option("--index", help="Splunk index for HEC (default: the token's).")]


def _fail(message: str) -> None:
    from umlogs.pipeline.cli import one_line

    typer.echo(f"umlogs: error: {one_line(message)}", err=True)


def _request(format, what, to, ca_file, tz, host, input_format, rules, batch_size, retries, backoff, index):
    from umlogs.pipeline import api
    from umlogs.pipeline.export.run import Request

    offset = api.parse_offset(tz) if tz else None
    request = Request(format=format, what=what, to=to, ca_file=str(ca_file) if ca_file else None, tz_offset=offset,
                      host=host, input_format=input_format, rule_dirs=tuple(rules or ()), batch_size=batch_size,
                      retries=retries, backoff=backoff, index=index)
    request.check()
    if input_format:
        from umlogs import parsers

        parsers.by_name(input_format)
    return request


def _report_delivery(delivery, to: str) -> int:
    typer.echo(f"umlogs: sent {delivery.sent} records to {to}"
               + (f", {delivery.unsent} unsent" if delivery.unsent else ""), err=True)
    if delivery.unsent:
        _fail(f"{delivery.unsent} records unsent: {'; '.join(delivery.errors[-3:])}")
        return EXIT_UNSENT
    return EXIT_OK


def export(
    sources: Annotated[list[Path], typer.Argument(help="Log files, or a dataset written by `umlogs ingest`.", show_default=False)],
    format: Format,
    what: What = "all",
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="Write the records to this file.")] = None,
    to: To = None,
    ca_file: CaFile = None,
    tz: Tz = None,
    host: Host = None,
    input_format: InputFormat = None,
    rules: RuleDirs = None,
    batch_size: BatchSize = 500,
    retries: Retries = 5,
    backoff: Backoff = 0.5,
    index: Index = None,
) -> None:
    """Export events and findings for a SIEM: ECS, OCSF, CEF, RFC 5424 syslog or Splunk HEC.

    One record per line (JSON formats as NDJSON) to standard output, to -o FILE, or sent with --to.
    SOURCE may be log files, bundles (folders, archives) or a dataset from `umlogs ingest`.

    Exit codes: 0 done; 2 usage error or unreadable input; 3 records stayed unsent after the retries (their count is printed).

    Example:
        umlogs export samples/windows_update/classic.log --format ecs --what findings
    """
    from umlogs.pipeline.api import UmlogsError
    from umlogs.pipeline.export import ExportError
    from umlogs.pipeline.export.run import export as run_export
    from umlogs.pipeline.rules import RuleError

    if out is not None and to is not None:
        _fail("give either -o/--out or --to, not both")
        raise typer.Exit(EXIT_INPUT)
    try:
        request = _request(format, what, to, ca_file, tz, host, input_format, rules, batch_size, retries, backoff, index)
        run = run_export(sources, request, out=out, stream=sys.stdout)
    except (UmlogsError, ExportError, RuleError, KeyError) as error:
        _fail(str(error).strip("'\""))
        raise typer.Exit(EXIT_INPUT) from None
    except BrokenPipeError:
        _quiet_stdout()
        raise typer.Exit(EXIT_OK) from None
    except OSError as error:
        _fail(f"{out or error.filename or 'output'}: {error.strerror or error}")
        raise typer.Exit(EXIT_INPUT) from None
    for line in run.errors:
        _fail(line)
    typer.echo(f"umlogs: {run.events} events and {run.findings} findings as {format}"
               + (f" to {out}" if out else ""), err=True)
    code = _report_delivery(run.delivery, to) if run.delivery is not None else EXIT_OK
    if code:
        raise typer.Exit(code)
    if run.errors:
        raise typer.Exit(EXIT_INPUT)


def tail(
    path: Annotated[Path, typer.Argument(help="The log file to follow.", show_default=False)],
    format: Format,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep following the file (across rotation and truncation) until Ctrl-C or SIGTERM.")] = False,
    from_start: Annotated[bool, typer.Option("--from-start", help="Also export what the file already holds (default: only what is added).")] = False,
    what: What = "all",
    to: To = None,
    ca_file: CaFile = None,
    tz: Tz = None,
    host: Host = None,
    input_format: InputFormat = None,
    rules: RuleDirs = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls of the file.")] = 0.5,
    batch_size: BatchSize = 500,
    retries: Retries = 5,
    backoff: Backoff = 0.5,
    index: Index = None,
) -> None:
    """Follow a growing log and export each new event, and each new finding, as it appears.

    Without -f the file is read once. Ctrl-C or SIGTERM stops it cleanly (exit 0; 3 when records
    stayed unsent).

    Example:
        umlogs tail -f /var/log/WindowsUpdate.log --format syslog --to syslog+tcp://127.0.0.1:6514
    """
    from umlogs.pipeline.api import UmlogsError
    from umlogs.pipeline.export import ExportError, serialize
    from umlogs.pipeline.rules import RuleError
    from umlogs.pipeline.tail import Tail, TailError

    try:
        request = _request(format, what, to, ca_file, tz, host, input_format, rules, batch_size, retries, backoff, index)
        encode = request.encode_function()
        sender = request.sender(give_up=False) if to else None
    except (UmlogsError, ExportError, RuleError, KeyError) as error:
        _fail(str(error).strip("'\""))
        raise typer.Exit(EXIT_INPUT) from None
    if not path.is_file():
        _fail(f"{path}: no such file")
        raise typer.Exit(EXIT_INPUT)

    def emit(record) -> None:
        line = serialize(encode(record))
        if sender is not None:
            sender.add(record.id, line)
        else:
            sys.stdout.write(line + "\n")

    stop = _StopFlag()
    try:
        runner = Tail(path, emit, findings=what in ("findings", "all"), events=what in ("events", "all"),
                      format=input_format, host=host, tz_offset=request.tz_offset, rule_dirs=request.rule_dirs)
    except RuleError as error:
        _fail(str(error))
        raise typer.Exit(EXIT_INPUT) from None
    try:
        with stop.installed():
            first = True
            while not stop.is_set():
                runner.step(quiet=first and not from_start)
                if first and follow:
                    typer.echo(f"umlogs: following {path}", err=True)
                first = False
                if sender is not None:
                    sender.flush()
                sys.stdout.flush()
                if not follow:
                    break
                stop.wait(interval)
    except TailError as error:
        _fail(str(error))
        raise typer.Exit(EXIT_INPUT) from None
    except BrokenPipeError:
        _quiet_stdout()
        raise typer.Exit(EXIT_OK) from None
    finally:
        runner.close()
    if sender is not None:
        code = _report_delivery(sender.close(), to)
        if code:
            raise typer.Exit(code)


def _quiet_stdout() -> None:
    """The reader of standard output went away (``| head``): stop writing, without a traceback at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class _StopFlag:
    """Set by SIGINT or SIGTERM; the loop checks it between polls, so a stop never cuts a record.
    The handler only sets an attribute. It must take no lock: ``threading.Event.set`` in a handler
    deadlocks when the signal lands while the main thread holds the event's lock inside
    ``Event.wait`` (a process looping on ``Event.wait(0.0002)`` hung in 25 of 200 SIGTERMs).

    >>> flag = _StopFlag()
    >>> flag.wait(0.01); flag.is_set()
    False
    """

    _SLICE = 0.05  # seconds between checks of the flag while waiting

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or until the flag is set."""
        import time

        end = time.monotonic() + seconds
        while not self._set and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, self._SLICE))

    def installed(self):
        import contextlib
        import signal

        @contextlib.contextmanager
        def handlers():
            previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

        return handlers()

    def _handle(self, _signum, _frame) -> None:
        self._set = True


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``tail`` to ``app``."""
    app.command("export")(export)
    app.command("tail")(tail)
