"""The fleet dataset on disk (the contract is docs/dataset.md): hive-partitioned Parquet events and
parse issues, the ``files.parquet`` manifest, the ingest lock, and recovery after an interrupted run.

    DATASET/events/format=<format>/host=<host>/part-<sha256 prefix>-<n>.parquet
    DATASET/issues/format=<format>/host=<host>/part-<sha256 prefix>-<n>.parquet
    DATASET/files.parquet

A file's parts are renamed into place before its manifest row is written; a part whose file has no
manifest row is an orphan of an interrupted run and is removed when the next ingest starts.

>>> part_path(Path("ds"), "events", "windows_update", None, "ab" * 32, 0).as_posix()
'ds/events/format=windows_update/host=__HIVE_DEFAULT_PARTITION__/part-abababababababab-00000.parquet'
>>> is_dataset(Path("no/such/dir"))
False
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from umlogs.pipeline.store import EVENT_SCHEMA, ISSUE_SCHEMA, write_parquet

MANIFEST = "files.parquet"
JOURNAL = "_files.journal.jsonl"
LOCK = ".lock"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
SHA_PREFIX = 16
STATUSES = ("parsed", "skipped", "rejected")

FILES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("host", pa.string()),
        pa.field("host_source", pa.string(), nullable=False),
        pa.field("host_evidence", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("format", pa.string()),
        pa.field("encoding", pa.string()),
        pa.field("replaced", pa.int64()),
        pa.field("lines", pa.int64()),
        pa.field("blank", pa.int64()),
        pa.field("long_lines", pa.int64()),
        pa.field("events", pa.int64()),
        pa.field("issues", pa.int64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ],
    metadata={b"umlogs.manifest_version": b"1"},
)
# Text columns with few distinct values, read dictionary-encoded (see read_events).
DICTIONARY_COLUMNS = ("format", "host", "source", "component", "level", "message", "hresult", "caller_id", "operation",
                      "operation_phase", "exit_code")  # fmt: skip
PARTITIONING = pads.partitioning(pa.schema([("format", pa.string()), ("host", pa.string())]), flavor="hive")


class DatasetError(Exception):
    """The dataset cannot be used: not a dataset, locked by another ingest, or unreadable."""


def is_dataset(path: Path) -> bool:
    """True when ``path`` is a dataset folder (it holds ``files.parquet``)."""
    return (path / MANIFEST).is_file()


def part_path(root: Path, kind: str, format: str, host: str | None, sha256: str, n: int) -> Path:
    """Where part ``n`` of a file's events (``kind="events"``) or issues goes."""
    folder = root / kind / f"format={format}" / f"host={host or NULL_PARTITION}"
    return folder / f"part-{sha256[:SHA_PREFIX]}-{n:05d}.parquet"


def events_dataset(root: Path) -> pads.Dataset:
    """The events as a pyarrow dataset (partition values read as strings)."""
    return _dataset(root / "events", EVENT_SCHEMA)


def read_events(data: pa.Table | pads.Dataset, columns: list[str]) -> pa.Table:
    """``columns`` of the events in ``data`` (a table, or a dataset of a dataset folder, a Parquet file,
    or a union of those) as one in-memory table. Low-cardinality text columns stay dictionary-encoded
    as Parquet stores them, so repeated strings are not copied row by row (DuckDB reads them as
    VARCHAR all the same).

    >>> table = read_events(EVENT_SCHEMA.empty_table(), ["event_id", "message"])
    >>> table.column_names, table.num_rows
    (['event_id', 'message'], 0)
    """
    files = parquet_files(data)
    if files is None:
        return data.select(columns) if isinstance(data, pa.Table) else data.to_table(columns=columns)
    encoded = [c for c in columns if c in DICTIONARY_COLUMNS]
    schema = pa.schema([f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in encoded else f for f in EVENT_SCHEMA])
    options = pads.ParquetReadOptions(dictionary_columns=encoded)
    return pads.dataset(files, schema=schema, format=pads.ParquetFileFormat(read_options=options)).to_table(columns=columns)


def parquet_files(data: object) -> list[str] | None:
    """The Parquet files behind a pyarrow dataset (of a dataset folder, a Parquet file, or a union of
    those); None for anything else (an in-memory table or dataset).

    >>> parquet_files(pads.dataset(pa.table({"a": [1]}))) is None
    True
    """
    if isinstance(data, pads.UnionDataset):
        parts = [parquet_files(child) for child in data.children]
        return None if any(p is None for p in parts) else [f for p in parts for f in p]
    if isinstance(data, pads.FileSystemDataset) and isinstance(data.format, pads.ParquetFileFormat) and data.files:
        return list(data.files)
    return None


def issues_dataset(root: Path) -> pads.Dataset:
    """The parse issues as a pyarrow dataset."""
    return _dataset(root / "issues", ISSUE_SCHEMA)


def _dataset(folder: Path, schema: pa.Schema) -> pads.Dataset:
    if not folder.is_dir():
        return pads.dataset(schema.empty_table())
    return pads.dataset(folder, format="parquet", partitioning=PARTITIONING, schema=schema)


def read_manifest(root: Path) -> pa.Table:
    """Every manifest row: ``files.parquet`` plus rows an interrupted ingest left in the journal."""
    tables = [pq.read_table(root / MANIFEST, schema=FILES_SCHEMA)] if is_dataset(root) else []
    journal = _journal_rows(root)
    if journal:
        tables.append(rows_table(journal))
    return _unique(pa.concat_tables(tables)) if tables else FILES_SCHEMA.empty_table()


def rows_table(rows: list[dict]) -> pa.Table:
    """Manifest rows (dicts keyed by :data:`FILES_SCHEMA` names) as a table."""
    columns = {}
    for f in FILES_SCHEMA:
        values = [row.get(f.name) for row in rows]
        if f.name == "ingested_at":
            values = [datetime.fromisoformat(v) if isinstance(v, str) else v for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    return pa.table(columns, schema=FILES_SCHEMA)


def _unique(table: pa.Table) -> pa.Table:
    """One row per (path, sha256), the latest; a row identical to an earlier one but for its time
    keeps the earlier time."""
    rows = table.to_pylist()
    keep: dict[tuple, dict] = {}
    for row in rows:
        key = (row["path"], row["sha256"])
        old = keep.get(key)
        same = old and all(old[k] == row[k] for k in ("status", "reason", "host", "events"))
        if not same:
            keep[key] = row
    return rows_table(list(keep.values()))


def _journal_rows(root: Path) -> list[dict]:
    path = root / JOURNAL
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write: that file's parts are orphans and are redone
    return rows


class Writer:
    """An open dataset during an ingest: the lock is held, the manifest grows one journal line per
    file, and :meth:`close` folds the journal into ``files.parquet``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._journal = None
        self._lock = None

    @classmethod
    @contextmanager
    def open(cls, root: Path) -> Iterator[Writer]:
        """Create or open ``root``, take the lock, recover from an interrupted run; on exit, compact."""
        if root.exists() and not root.is_dir():
            raise DatasetError(f"{root}: exists and is not a folder")
        if root.is_dir() and not is_dataset(root) and any(p.name != LOCK for p in root.iterdir()):
            raise DatasetError(f"{root}: not an umlogs dataset (no {MANIFEST}) and not empty; choose a new folder")
        root.mkdir(parents=True, exist_ok=True)
        writer = cls(root)
        writer._take_lock()
        try:
            writer.recover()
            writer._journal = open(root / JOURNAL, "a", encoding="utf-8")
            yield writer
            writer._journal.close()
            writer._journal = None
            writer.compact()
        finally:
            if writer._journal:
                writer._journal.close()
            writer._lock.close()

    def _take_lock(self) -> None:
        self._lock = open(self.root / LOCK, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise DatasetError(f"{self.root}: another ingest is writing to this dataset (lock {self.root / LOCK}); "
                               "wait for it to finish") from None  # fmt: skip

    def recover(self) -> int:
        """Fold a left-over journal into the manifest and remove orphans; the number removed."""
        self.compact()
        known = {sha[:SHA_PREFIX] for sha in self.manifest().column("sha256").to_pylist() if sha}
        removed = 0
        for kind in ("events", "issues"):
            for path in sorted((self.root / kind).rglob("*")) if (self.root / kind).is_dir() else ():
                if not path.is_file():
                    continue
                orphan = path.name.startswith((".", "_")) or (
                    path.name.startswith("part-") and path.name[5 : 5 + SHA_PREFIX] not in known
                )
                if orphan:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def manifest(self) -> pa.Table:
        return read_manifest(self.root)

    def record(self, row: dict) -> None:
        """Append one manifest row (after the file's parts are in place)."""
        row = {**row, "ingested_at": datetime.now(timezone.utc).isoformat()}
        self._journal.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._journal.flush()

    def compact(self) -> None:
        """Rewrite ``files.parquet`` with the journal's rows, then drop the journal."""
        journal = self.root / JOURNAL
        if is_dataset(self.root) and not (journal.exists() and journal.stat().st_size):
            journal.unlink(missing_ok=True)
            return
        write_parquet(read_manifest(self.root), self.root / MANIFEST)
        journal.unlink(missing_ok=True)
        if self._journal:
            self._journal.close()
            self._journal = open(journal, "a", encoding="utf-8")


def temp_part(root: Path, kind: str, format: str, host: str | None, token: str, n: int) -> Path:
    """A hidden name for a part being written, before its file's sha256 is known (readers skip names
    starting with ``.``; an interrupted run's temporary parts are removed by :meth:`Writer.recover`)."""
    return part_path(root, kind, format, host, "0" * SHA_PREFIX, n).with_name(f".{token}-{n:05d}.inprogress")


def place(temp: Path, final: Path) -> None:
    """Move a finished part into its final name."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, final)
