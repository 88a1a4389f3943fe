"""What a data engineer would write instead of umlogs: DuckDB reads the file one line per row, one
``regexp_extract`` splits the fields, another takes the first HRESULT, ``COPY`` writes Parquet.

    python benchmarks/baseline.py classic /tmp/bench/classic.log /tmp/bench/out.parquet
"""

from __future__ import annotations

import sys

import duckdb

LINE = {
    "classic": r"^([0-9]{4}-[0-9]{2}-[0-9]{2})\t([0-9:]{12})\t *([0-9]+)\t *([0-9A-Fa-f]+)\t([^\t]*)\t(.*)$",
    "windows10": r"^([0-9]{4}[-/][0-9]{2}[-/][0-9]{2}) ([0-9:.]{16}) ([0-9]+) +([0-9]+) +([^ ]+) +(.*)$",
}
HRESULT = r"(?:hr|error|exit code|\*FAILED\*) *[=:\[]? *(?:0x)?([0-9a-fA-F]{8})"


def run(layout: str, path: str, out: str) -> None:
    names = "['date', 'time', 'pid', 'tid', 'component', 'message']"
    duckdb.sql(
        f"""COPY (
            SELECT regexp_extract(line, '{LINE[layout]}', {names}) AS f,
                   regexp_extract(line, '(?i){HRESULT}', 1) AS hresult
            FROM read_csv('{path}', columns = {{'line': 'VARCHAR'}}, header = false, delim = '\\x1f',
                          quote = '', escape = '', auto_detect = false, strict_mode = false)
        ) TO '{out}' (FORMAT parquet)"""
    )


if __name__ == "__main__":  # pragma: no cover
    run(sys.argv[1], sys.argv[2], sys.argv[3])
