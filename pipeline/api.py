"""The library functions the CLI calls, one per command.

>>> from umlogs.pipeline.api import parse_offset
>>> parse_offset("+0530"), parse_offset("-08:00"), parse_offset("UTC")
(330, -480, 0)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from umlogs.pipeline.decode import MAX_LINE_CHARS
from umlogs.pipeline.parse import FileResult, parse_file
from umlogs.pipeline.store import issues_path, issues_table, parquet_sink, write_parquet

# DuckDB threads that run a file's fast-path line query (UMLOGS_WORKERS overrides one per CPU).
WORKERS = int(os.environ.get("UMLOGS_WORKERS", 0)) or os.cpu_count() or 1

_OFFSET = re.compile(r"^(?:UTC|Z|([+-])(\d\d):?(\d\d))$", re.IGNORECASE)


class UmlogsError(Exception):
    """A problem with the user's request (not with log content), reported as one line, exit 2."""


@dataclass(frozen=True, slots=True)
class ParseRun:
    """The outcome of ``umlogs parse``: one result per input file, and where the tables went."""

    results: list[FileResult]
    events_path: Path
    issues_path: Path

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.error]


def parse_offset(text: str) -> int:
    """Minutes east of UTC from ``+0200``, ``-05:00``, ``UTC`` or ``Z``."""
    m = _OFFSET.match(text.strip())
    if not m:
        raise UmlogsError(f"--tz {text!r}: expected an offset such as +0200, -05:00 or UTC")
    if m.group(1) is None:
        return 0
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return -minutes if m.group(1) == "-" else minutes


def parse_paths(
    paths: Sequence[Path],
    out: Path,
    *,
    format: str | None = None,
    host: str | None = None,
    utc_offset: int | None = None,
    max_line: int = MAX_LINE_CHARS,
) -> ParseRun:
    """Parse every path (a bad one does not stop the others) and stream events and issues to Parquet;
    lines longer than ``max_line`` characters are cut to it and counted per file."""
    results = _parsed(paths, out, format=format, host=host, utc_offset=utc_offset, max_line=max_line)
    write_parquet(issues_table(i for r in results for i in r.issues), issues_path(out))
    return ParseRun(results, out, issues_path(out))


def _parsed(paths: Sequence[Path], out: Path, **options) -> list[FileResult]:
    """Parse every path (a bad one does not stop the others), the events streamed to the Parquet
    file ``out``; ``options`` are :func:`parse_file`'s."""
    with parquet_sink(out) as sink:
        return [parse_file(p, workers=WORKERS, sink=sink, **options) for p in paths]


@dataclass(frozen=True, slots=True)
class ClassifyRun:
    """The outcome of ``umlogs classify``: per-file parse results and the findings over all of them."""

    results: list[FileResult]
    findings: list


def classify_paths(
    paths: Sequence[Path],
    *,
    rule_dirs: Sequence[Path] = (),
    format: str | None = None,
    host: str | None = None,
    utc_offset: int | None = None,
    max_line: int = MAX_LINE_CHARS,
) -> ClassifyRun:
    """Check the rules (before any log is read), parse every path, and classify all events together.
    A path that is a dataset folder (``umlogs ingest``) is read as stored, not parsed."""
    from umlogs.pipeline.classify import check_rules, load_rules
    from umlogs.pipeline.dataset import events_dataset, is_dataset

    rules = load_rules(tuple(rule_dirs))
    check_rules(rules)
    stored = [events_dataset(p) for p in paths if is_dataset(p)]
    files = [p for p in paths if not is_dataset(p)]
    with tempfile.TemporaryDirectory(prefix="umlogs-") as scratch:
        events_file = Path(scratch) / "events.parquet"
        results = _parsed(files, events_file, format=format, host=host, utc_offset=utc_offset, max_line=max_line)
        return _classify(results, stored, events_file, rules)


def _classify(results, stored, events_file: Path, rules) -> ClassifyRun:
    """Classify the parsed events (a Parquet file) together with any stored datasets."""
    import pyarrow.dataset as pads

    from umlogs.pipeline.classify import classify_table

    sources = [*stored, pads.dataset(events_file)] if results else list(stored)
    if not sources:
        sources = [pads.dataset(events_file)]
    return ClassifyRun(results, classify_table(sources[0] if len(sources) == 1 else pads.dataset(sources), rules))


def severity_at_least(findings: Sequence, threshold: str) -> bool:
    """True when a finding is at or above ``threshold`` (``warning`` or ``error``)."""
    from umlogs.pipeline.rules import SEVERITIES

    return any(SEVERITIES.index(f.severity) >= SEVERITIES.index(threshold) for f in findings)
