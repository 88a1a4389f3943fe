"""The benchmark suite: umlogs against a DuckDB-native parse of the same file, in one run.

    python benchmarks/run.py                 # 1M lines per format, results to docs/performance.md
    python benchmarks/run.py --lines 100000  # quicker

Each command runs in its own process; peak RSS is that process's ``ru_maxrss``. Ratios compare
times measured in the same run, so a busy machine slows both sides alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = Path("/tmp/umlogs-bench")
UMLOGS = [str(Path(sys.executable).with_name("umlogs"))]
_MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)
FORMATS = {"windows_update_classic": "classic", "windows_update_windows10": "windows10"}


def measure(command: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one command, run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, check=True)
    seconds, rss_kb, code = out.stdout.split()
    if code not in ("0", "1"):
        raise SystemExit(f"{command} exited {code}")
    return float(seconds), int(rss_kb) / 1024


def lark_rate(path: Path, sample: int = 20_000) -> float:
    """Lines per second of the pure per-line Lark parse (the grammar of record, no fast path)."""
    from umlogs.parsers import windows_update
    from umlogs.pipeline.decode import decode

    lines = decode(path.read_bytes()[: 8_000_000]).lines[:sample]
    start = time.perf_counter()
    for _ in windows_update.parse(lines, str(path)):
        pass
    return len(lines) / (time.perf_counter() - start)


def bench(kind: str, lines: int) -> dict:
    sys.path.insert(0, str(HERE))
    from generate import generate

    log = WORK / f"{kind}-{lines}.log"
    if not log.exists():
        generate(kind, lines, log)
    size_mb = log.stat().st_size / 1e6
    row = {"format": kind, "lines": lines, "mb": round(size_mb, 1)}
    base_s, base_rss = measure([sys.executable, str(HERE / "baseline.py"), FORMATS[kind], str(log), str(WORK / "base.parquet")])
    parse_s, parse_rss = measure([*UMLOGS, "parse", str(log), "-o", str(WORK / "umlogs.parquet")])
    classify_s, classify_rss = measure([*UMLOGS, "classify", str(log), "--format", "json"])
    row.update(
        duckdb_s=round(base_s, 2), duckdb_lines_s=round(lines / base_s), duckdb_rss_mb=round(base_rss),
        parse_s=round(parse_s, 2), parse_lines_s=round(lines / parse_s), parse_mb_s=round(size_mb / parse_s, 1),
        parse_rss_mb=round(parse_rss), ratio=round(parse_s / base_s, 2),
        classify_s=round(classify_s, 2), classify_rss_mb=round(classify_rss),
        lark_lines_s=round(lark_rate(log)),
    )  # fmt: skip
    return row


def markdown(rows: list[dict], command: str) -> str:
    head = ["format", "lines", "MB", "umlogs parse s", "lines/s", "MB/s", "peak RSS MB", "DuckDB s", "DuckDB lines/s",
            "ratio (umlogs/DuckDB)", "classify s", "pure Lark lines/s"]  # fmt: skip
    keys = ["format", "lines", "mb", "parse_s", "parse_lines_s", "parse_mb_s", "parse_rss_mb", "duckdb_s",
            "duckdb_lines_s", "ratio", "classify_s", "lark_lines_s"]  # fmt: skip
    out = [f"Measured {date.today()} on {platform.machine()}, {platform.python_version()}, `{command}`:", ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--formats", nargs="*", default=list(FORMATS))
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    rows = [bench(kind, args.lines) for kind in args.formats]
    print(json.dumps(rows, indent=1))
    print(markdown(rows, "python benchmarks/run.py " + " ".join(sys.argv[1:])))


if __name__ == "__main__":
    main()
