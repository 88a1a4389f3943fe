"""The invariant, checked on the real corpus, every sample and every hostile input.

Per file: lines read = lines in events + lines in parse issues + blank lines. This is the definition
of ``FileResult.accounted`` and of ingest's ``Outcome.accounted`` (blank lines are counted by the
decoder and belong to no record). Per bundle: files seen = parsed + skipped + rejected
(``Summary.consistent``), and the manifest holds one row per file seen.

Both parse paths are checked (the fast path and the pure Lark parse), and the parser's own records
are checked one by one (:func:`targets.check_accounting`: each starts on a line that exists, in order,
and owns at least one line).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLES, corpus_files
from robustness.hostile import HOSTILE, write_all
from targets import check_accounting, lines_of
from umlogs import parsers
from umlogs.pipeline import dataset
from umlogs.pipeline.ingest import Options, ingest
from umlogs.pipeline.parse import parse_file

SAMPLE_FILES = sorted(p for d in ("windows_update", "update_worker", "portal_exception")
                      for p in (SAMPLES / d).iterdir() if p.suffix in (".log", ".txt", ".json")
                      and not p.name.endswith(".expected.json"))  # fmt: skip
RULE_FIXTURES = sorted(p for p in (SAMPLES / "rules").rglob("*") if p.is_file() and p.suffix in (".log", ".txt"))


def assert_accounted(path: Path) -> None:
    """Both parse paths account for every line of ``path``: the file's summary (fast path where the
    format has one), and the Lark parser's own records one by one."""
    result = parse_file(path)
    if result.error:
        return
    covered = result.event_lines + sum(i.line_count for i in result.issues)
    assert result.accounted and covered + result.blank == result.lines, (path, result.lines, covered)
    lines, _ = lines_of(path.read_bytes())
    assert len(lines) == result.lines
    parser = parsers.by_name(result.format)
    check_accounting(lines, list(parser.parse(lines, str(path))), f"{path.name} ({parser.NAME})")


def corpus() -> list[Path]:
    return corpus_files("windows_update") + corpus_files("update_worker")


@pytest.mark.parametrize("path", SAMPLE_FILES + RULE_FIXTURES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_samples(path):
    assert_accounted(path)


def test_corpus():
    for path in corpus():
        assert_accounted(path)


@pytest.mark.parametrize("entry", [e for e in HOSTILE if not e.name.endswith((".zip", ".gz", ".tar"))], ids=lambda e: e.name)
def test_hostile_files(tmp_path, entry):
    path = write_all(tmp_path, [entry])[entry.name]
    if entry.name == "fifo.log":
        assert parse_file(path).error == "not a regular file (a FIFO, socket or device)"
        return
    assert_accounted(path)


def test_bundle(tmp_path):
    """Corpus, samples and hostile inputs (archives included) in one ingest: every file seen is in
    the manifest once, parsed + skipped + rejected, and every parsed file accounts for its lines."""
    write_all(tmp_path / "hostile")
    summary = ingest([tmp_path / "hostile", SAMPLES, *corpus()], tmp_path / "ds", Options(workers=2))
    assert summary.consistent and summary.seen == summary.parsed + summary.skipped + summary.rejected
    assert summary.unaccounted == []
    rows = dataset.read_manifest(tmp_path / "ds").to_pylist()
    assert len(rows) == summary.seen
    assert sum(r["status"] == "parsed" for r in rows) == summary.parsed
    assert summary.rejected == 3  # the bomb, the nesting past --max-depth, the truncated gzip
    for r in rows:
        if r["status"] == "parsed":
            assert r["lines"] >= r["blank"] and r["events"] + r["issues"] > 0, r
