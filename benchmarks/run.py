"""The benchmark suite: umlogs against a DuckDB-native parse of the same file, in one run.

    python benchmarks/run.py                 # 1M lines per format, results to docs/performance.md
    python benchmarks/run.py --lines 100000  # quicker
    python benchmarks/run.py --repeat 5      # the baseline and the parse in turn five times (default 3)

Each command runs in its own process; peak RSS is that process's ``ru_maxrss``. Ratios compare
times measured in the same run, so a busy machine slows both sides alike. umlogs's modules are
compiled to bytecode first, as ``pip install .`` does: in an editable install with
PYTHONDONTWRITEBYTECODE set, each run would compile them again (0.12 s a run, docs/performance.md).
"""

from __future__ import annotations

import argparse
import compileall
import json
import platform
import statistics
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
# Each generated format: the parser it goes to, and the baseline's layout (benchmarks/baseline.py).
FORMATS = {
    "windows_update_classic": ("windows_update", "classic"),
    "windows_update_windows10": ("windows_update", "windows10"),
    "update_worker_worker": ("update_worker", "worker"),
    "update_worker_omsupdatemgmt": ("update_worker", "omsupdatemgmt"),
}


def compile_umlogs() -> None:
    """Bytecode for every umlogs module, where an installed package has it."""
    import umlogs.parsers
    import umlogs.pipeline

    for package in (umlogs.parsers, umlogs.pipeline):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)


def measure(command: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one command, run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, check=True)
    seconds, rss_kb, code = out.stdout.split()
    if code not in ("0", "1"):
        raise SystemExit(f"{command} exited {code}")
    return float(seconds), int(rss_kb) / 1024


def lark_rate(path: Path, parser: str, sample: int = 20_000) -> float:
    """Lines per second of the pure per-line Lark parse (the grammar of record, no fast path)."""
    from umlogs import parsers
    from umlogs.pipeline.decode import decode

    lines = decode(path.read_bytes()[: 8_000_000]).lines[:sample]
    start = time.perf_counter()
    for _ in parsers.by_name(parser).parse(lines, str(path)):
        pass
    return len(lines) / (time.perf_counter() - start)


def bench(kind: str, lines: int, repeat: int = 3) -> dict:
    """The four measurements of one format. The baseline and ``umlogs parse`` run in turn
    ``repeat`` times: times are medians, the ratio is the median of each pair's ratio (its range
    in ``ratio_range``), peak RSS the largest."""
    sys.path.insert(0, str(HERE))
    from generate import generate

    log = WORK / f"{kind}-{lines}.log"
    if not log.exists():
        generate(kind, lines, log)
    size_mb = log.stat().st_size / 1e6
    row = {"format": kind, "lines": lines, "mb": round(size_mb, 1)}
    parser, layout = FORMATS[kind]
    pairs = [
        (measure([sys.executable, str(HERE / "baseline.py"), layout, str(log), str(WORK / "base.parquet")]),
         measure([*UMLOGS, "parse", str(log), "-o", str(WORK / "umlogs.parquet")]))
        for _ in range(repeat)
    ]  # fmt: skip
    base_s, parse_s = (statistics.median(pair[side][0] for pair in pairs) for side in (0, 1))
    base_rss, parse_rss = (max(pair[side][1] for pair in pairs) for side in (0, 1))
    ratios = [parse[0] / base[0] for base, parse in pairs]
    classify_s, classify_rss = measure([*UMLOGS, "classify", str(log), "--format", "json"])
    row.update(
        duckdb_s=round(base_s, 2), duckdb_lines_s=round(lines / base_s), duckdb_rss_mb=round(base_rss),
        parse_s=round(parse_s, 2), parse_lines_s=round(lines / parse_s), parse_mb_s=round(size_mb / parse_s, 1),
        parse_rss_mb=round(parse_rss), ratio=round(statistics.median(ratios), 2),
        ratio_range=f"{min(ratios):.2f}–{max(ratios):.2f}",
        classify_s=round(classify_s, 2), classify_rss_mb=round(classify_rss),
        lark_lines_s=round(lark_rate(log, parser)),
    )  # fmt: skip
    return row


def scaling(kind: str, sizes: list[int]) -> list[dict]:
    """``umlogs parse`` at growing sizes: seconds per million lines should stay flat (linear cost)."""
    sys.path.insert(0, str(HERE))
    from generate import generate

    rows = []
    for lines in sizes:
        log = WORK / f"{kind}-{lines}.log"
        if not log.exists():
            generate(kind, lines, log)
        seconds, rss = measure([*UMLOGS, "parse", str(log), "-o", str(WORK / "scale.parquet")])
        rows.append({"lines": lines, "s": round(seconds, 2), "s_per_million": round(seconds / lines * 1e6, 2), "rss_mb": round(rss)})
    return rows


def small_files(count: int, lines: int = 48) -> dict:
    """Ingest of many small files, each a different ``lines``-line Windows 10+ log (copies of one
    file would be skipped as duplicates): the per-file overhead."""
    import itertools
    import shutil

    sys.path.insert(0, str(HERE))
    from generate import generate

    folder = WORK / f"small-{count}x{lines}"
    if not folder.exists():
        log = generate("windows_update_windows10", count * lines, WORK / f"small-{count}x{lines}.log")
        with log.open(encoding="utf-8", newline="") as lines_in:
            for n in range(count):
                (folder / f"host{n:05d}").mkdir(parents=True)
                text = "".join(itertools.islice(lines_in, lines))
                (folder / f"host{n:05d}" / "WindowsUpdate.log").write_text(text, encoding="utf-8", newline="")
    shutil.rmtree(WORK / "small-ds", ignore_errors=True)
    seconds, rss = measure([*UMLOGS, "ingest", str(folder), "-o", str(WORK / "small-ds"), "--quiet"])
    return {"files": count, "lines": lines, "s": round(seconds, 2), "ms_per_file": round(seconds / count * 1000, 1), "rss_mb": round(rss)}


def classify_dataset(kind: str, copies: int, lines: int) -> dict:
    """``umlogs classify DATASET`` over ``copies`` hosts of a ``lines``-line log, already ingested."""
    import shutil

    sys.path.insert(0, str(HERE))
    from generate import generate

    log = WORK / f"{kind}-{lines}.log"
    if not log.exists():
        generate(kind, lines, log)
    folder, dataset = WORK / f"fleet-{copies}", WORK / f"fleet-{copies}-ds"
    if not dataset.exists():
        for n in range(copies):
            (folder / f"web{n:02d}").mkdir(parents=True, exist_ok=True)
            target = folder / f"web{n:02d}" / "WindowsUpdate.log"
            if not target.exists():
                with log.open("rb") as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                    dst.write(f"2025/01/01 00:00:00.0000000 1 1 Misc copy {n}\r\n".encode())
        measure([*UMLOGS, "ingest", str(folder), "-o", str(dataset), "--quiet"])
    seconds, rss = measure([*UMLOGS, "classify", str(dataset), "--format", "json"])
    import pyarrow.dataset as pads

    events = pads.dataset(dataset / "events", partitioning="hive").count_rows()
    return {"events": events, "s": round(seconds, 2), "rss_mb": round(rss)}


def markdown(rows: list[dict], command: str) -> str:
    head = ["format", "lines", "MB", "umlogs parse s", "lines/s", "MB/s", "peak RSS MB", "DuckDB s", "DuckDB lines/s",
            "ratio (umlogs/DuckDB)", "ratio range", "classify s", "pure Lark lines/s"]  # fmt: skip
    keys = ["format", "lines", "mb", "parse_s", "parse_lines_s", "parse_mb_s", "parse_rss_mb", "duckdb_s",
            "duckdb_lines_s", "ratio", "ratio_range", "classify_s", "lark_lines_s"]  # fmt: skip
    out = [f"Measured {date.today()} on {platform.machine()}, {platform.python_version()}, `{command}`:", ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--formats", nargs="*", default=list(FORMATS), choices=list(FORMATS))
    ap.add_argument("--scaling", nargs="*", type=int, help="parse at these sizes (e.g. 10000 100000 1000000 10000000)")
    ap.add_argument("--small-files", type=int, help="ingest this many small files")
    ap.add_argument("--fleet", type=int, help="classify a dataset of this many 1M-line hosts")
    ap.add_argument("--repeat", type=int, default=3, help="run the baseline and umlogs parse in turn this many times")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    compile_umlogs()
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    if args.scaling:
        print(json.dumps(scaling("windows_update_windows10", args.scaling), indent=1))
    elif args.small_files:
        print(json.dumps(small_files(args.small_files), indent=1))
    elif args.fleet:
        print(json.dumps(classify_dataset("windows_update_windows10", args.fleet, 1_000_000), indent=1))
    else:
        rows = [bench(kind, args.lines, args.repeat) for kind in args.formats]
        print(json.dumps(rows, indent=1))
        print(markdown(rows, command))


if __name__ == "__main__":
    main()
