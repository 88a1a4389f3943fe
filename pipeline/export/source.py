"""Where exported records come from: log files (parsed here), bundles (folders and archives, walked
by ``umlogs ingest`` into a temporary dataset), or an ingested dataset (a folder with
``files.parquet``, whose events are read from ``DATASET/events`` with hive partitioning); then the
findings over all of them, and one :class:`~umlogs.pipeline.export.record.Record` per event and finding.

>>> from umlogs.pipeline.store import EVENT_SCHEMA
>>> loaded = Loaded(EVENT_SCHEMA.empty_table(), [], 0)
>>> list(records(loaded, what="all", findings=[], tz_offset=None))
[]
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from umlogs.pipeline.export.record import Record, event_record, finding_record, product_version
from umlogs.pipeline.store import EVENT_SCHEMA, events_table

WHAT = ("events", "findings", "all")
BATCH_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class Loaded:
    """Events from every readable source, and one ``"path: reason"`` line per source that was not."""

    table: pa.Table
    errors: list[str]
    sources: int


def is_dataset(path: Path) -> bool:
    """A folder written by ``umlogs ingest``: it holds ``files.parquet``."""
    return path.is_dir() and (path / "files.parquet").is_file()


def load(paths: Sequence[Path], *, format: str | None = None, host: str | None = None) -> Loaded:
    """Read every source; a bad one is reported and the others are still read."""
    from umlogs.pipeline.parse import parse_file

    tables, errors = [], []
    for path in paths:
        if is_dataset(path):
            try:
                tables.append(read_dataset(path))
            except (OSError, pa.ArrowException) as error:
                errors.append(f"{path}: not a readable dataset: {str(error).splitlines()[0]}")
            continue
        if is_bundle(path):
            table, problems = read_bundle(path, format=format, host=host)
            tables.append(table)
            errors.extend(problems)
            continue
        result = parse_file(path, format=format, host=host)
        if result.error:
            errors.append(f"{path}: {result.error}")
        else:
            tables.append(events_table(result.events))
    table = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    return Loaded(table, errors, len(paths))


def is_bundle(path: Path) -> bool:
    """A folder (not a dataset) or an archive (zip, tar, gzip, bzip2, xz)."""
    from umlogs.pipeline.discover import archive_kind

    if path.is_dir():
        return not is_dataset(path)
    if not path.is_file():  # a FIFO or device: opening it to peek would block; parse_file names it
        return False
    try:
        with path.open("rb") as handle:
            return archive_kind(handle.read(512)) is not None
    except OSError:
        return False


def read_bundle(path: Path, *, format: str | None = None, host: str | None = None) -> tuple[pa.Table, list[str]]:
    """Events of every log in a bundle, found and parsed by ``umlogs ingest`` into a temporary
    dataset; files it rejected come back as ``"path: reason"`` lines (files that are not logs are
    skipped silently, as ingest does)."""
    import tempfile

    from umlogs.pipeline.ingest import Options, ingest

    with tempfile.TemporaryDirectory(prefix="umlogs-export-") as tmp:
        summary = ingest([path], Path(tmp) / "dataset", Options(format=format, host=host))
        problems = [f"{o.path}: {o.reason}" for o in summary.outcomes if o.status == "rejected"]
        return read_dataset(Path(tmp) / "dataset"), problems


def read_dataset(root: Path) -> pa.Table:
    """The events of a dataset as one table in :data:`EVENT_SCHEMA` (partition columns folded back in)."""
    from umlogs.pipeline.dataset import events_dataset

    # The dataset's own partitioning and schema: inferring them fails when every host is null.
    table = events_dataset(root).to_table()
    columns = []
    for field in EVENT_SCHEMA:
        if field.name in table.column_names:
            column = table[field.name]
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            columns.append(column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def classify(table: pa.Table, rule_dirs: Sequence[Path] = ()) -> list:
    """Findings over ``table`` with the built-in rules and those in ``rule_dirs``."""
    from umlogs.pipeline.classify import check_rules, classify_table, load_rules

    rules = load_rules(tuple(rule_dirs))
    check_rules(rules)
    return classify_table(table, rules)


def source_offsets(table: pa.Table) -> dict[str, set]:
    """The UTC offsets (minutes, or ``None``) each source's events carry."""
    offsets: dict[str, set] = defaultdict(set)
    for source, offset in zip(table["source"].to_pylist(), table["utc_offset"].to_pylist()):
        offsets[source].add(offset)
    return dict(offsets)


def records(
    loaded: Loaded, *, what: str, findings: Sequence, tz_offset: int | None, now: datetime | None = None
) -> Iterator[Record]:
    """Event records (in source order), then finding records."""
    now = now or datetime.now(timezone.utc)
    version = product_version()
    if what in ("events", "all"):
        for batch in loaded.table.to_batches(max_chunksize=BATCH_ROWS):
            for row in batch.to_pylist():
                yield event_record(row, tz_offset=tz_offset, now=now, version=version)
    if what in ("findings", "all") and findings:
        offsets = source_offsets(loaded.table)
        for finding in findings:
            yield finding_record(finding_dict(finding), source_offsets=offsets, tz_offset=tz_offset, now=now,
                                 version=version)


def finding_dict(finding) -> dict:
    """A finding's fields as a dict, times kept as datetimes, evidence as dicts."""
    return dataclasses.asdict(finding)
