"""What a data engineer would write instead of umlogs: DuckDB reads the file one line per row, one
``regexp_extract`` splits the fields, another takes the first HRESULT (or, in the Linux worker's logs,
the first exit or return code), ``COPY`` writes Parquet. A continuation line of a Linux entry is a row
of its own with empty fields: joining it to its entry is more than this baseline does.

    python benchmarks/baseline.py classic /tmp/bench/classic.log /tmp/bench/out.parquet
"""

from __future__ import annotations

import sys

import duckdb

LINE = {
    "classic": r"^([0-9]{4}-[0-9]{2}-[0-9]{2})\t([0-9:]{12})\t *([0-9]+)\t *([0-9A-Fa-f]+)\t([^\t]*)\t(.*)$",
    "windows10": r"^([0-9]{4}[-/][0-9]{2}[-/][0-9]{2}) ([0-9:.]{16}) ([0-9]+) +([0-9]+) +([^ ]+) +(.*)$",
    "worker": r"^([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9:]{8}) \(([0-9]+)\)([^ ]*) : (\[[A-Z]+\])? *(.*)$",
    "omsupdatemgmt": r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9:]{8})Z?> (\[[A-Z]+\])? *(.*)$",
}
NAMES = {
    "classic": ["date", "time", "pid", "tid", "component", "message"],
    "windows10": ["date", "time", "pid", "tid", "component", "message"],
    "worker": ["date", "time", "pid", "component", "tag", "message"],
    "omsupdatemgmt": ["date", "time", "tag", "message"],
}
HRESULT = r"(?:hr|error|exit code|\*FAILED\*) *[=:\[]? *(?:0x)?([0-9a-fA-F]{8})"
EXIT_CODE = r"(?:exit code|return code)[^0-9]{0,20}([0-9]+)"


def run(layout: str, path: str, out: str) -> None:
    duckdb.sql(
        f"""COPY (
            SELECT regexp_extract(line, '{LINE[layout]}', {NAMES[layout]}) AS f,
                   regexp_extract(line, '(?i){EXIT_CODE if layout in ("worker", "omsupdatemgmt") else HRESULT}', 1) AS code
            FROM read_csv('{path}', columns = {{'line': 'VARCHAR'}}, header = false, delim = '\\x1f',
                          quote = '', escape = '', auto_detect = false, strict_mode = false)
        ) TO '{out}' (FORMAT parquet)"""
    )


if __name__ == "__main__":  # pragma: no cover
    run(sys.argv[1], sys.argv[2], sys.argv[3])
