"""Deterministic large logs for benchmarks, resampled from the real corpus in ../shared/corpus.

WindowsUpdate.log (classic and Windows 10+): consecutive blocks of real lines are drawn with a fixed
seed, so the mix of line kinds, lengths, error markers and banners follows the corpus. The Linux worker
formats have too little real text to resample; their generator repeats the project's own samples.

    python benchmarks/generate.py windows_update_classic 1000000 /tmp/bench/classic.log

>>> lines = list(resample(["a", "b", "c"], 5, block=2, seed=1))
>>> len(lines), set(lines) <= {"a", "b", "c"}
(5, True)
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
SOURCES = {
    "windows_update_classic": sorted((CORPUS / "windows_update").glob("classic-*.log")),
    "windows_update_windows10": sorted((CORPUS / "windows_update").glob("etl-*.log")),
    "update_worker_worker": sorted((ROOT / "samples" / "update_worker").glob("worker*.log")),
    "update_worker_omsupdatemgmt": sorted((ROOT / "samples" / "update_worker").glob("omsupdatemgmt*.log")),
}
BLOCK = 64


def corpus_lines(paths: Sequence[Path]) -> list[str]:
    """Every line of the given files, decoded as umlogs decodes them, blank lines kept."""
    from umlogs.pipeline.decode import decode

    return [line for path in paths for line in decode(path.read_bytes()).lines]


def resample(lines: Sequence[str], count: int, *, block: int = BLOCK, seed: int = 20261128) -> Iterator[str]:
    """``count`` lines made of random consecutive blocks of ``lines``."""
    rng = random.Random(seed)
    written = 0
    while written < count:
        start = rng.randrange(max(1, len(lines) - block))
        for line in lines[start : start + block][: count - written]:
            yield line
            written += 1


def generate(kind: str, count: int, out: Path) -> Path:
    """Write ``count`` lines of ``kind`` (a key of :data:`SOURCES`) to ``out`` with CRLF endings."""
    if not SOURCES[kind]:
        raise SystemExit(f"no source files for {kind}")
    block = BLOCK if kind.startswith("windows_update") else 1_000_000  # worker logs: whole multi-line entries
    lines = corpus_lines(SOURCES[kind])
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        for line in resample(lines, count, block=min(block, len(lines)), seed=len(kind)):
            fh.write(line + "\r\n")
    return out


if __name__ == "__main__":  # pragma: no cover
    generate(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
