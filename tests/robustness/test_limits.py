"""Resource limits as options with safe defaults: ``--max-line`` on parse, classify and ingest (longer
lines cut, counted per file and in the summaries, never dropped), and ingest's archive limits
(``--max-total-bytes``, ``--max-ratio``, ``--max-members``, ``--max-depth``)."""

from __future__ import annotations

import io
import os
import zipfile

import pyarrow.parquet as pq
from typer.testing import CliRunner

from conftest import SAMPLES
from umlogs.pipeline import dataset, decode
from umlogs.pipeline.cli import MAX_LINE_DEFAULT, app

WU_LINE = b"2021-07-13\t10:22:03:123\t 936\t 13bc\tAgent\t"
GOOD = SAMPLES / "windows_update" / "classic.log"


def test_max_line_default_is_the_decoder_limit():
    assert MAX_LINE_DEFAULT == decode.MAX_LINE_CHARS == 8 << 20


def test_max_line_option(tmp_path):
    """``--max-line`` sets the cut; the event keeps the start of the line and the file is flagged."""
    log = tmp_path / "wu.log"
    log.write_bytes(WU_LINE + b"y" * 500 + b"\n" + WU_LINE + b"short\n")
    result = CliRunner().invoke(app, ["parse", str(log), "-o", str(tmp_path / "o.parquet"), "--max-line", "100"])
    assert result.exit_code == 0 and "1 lines longer than --max-line cut" in result.output
    raws = pq.read_table(tmp_path / "o.parquet").column("raw").to_pylist()
    assert [len(r) for r in raws] == [100, len(WU_LINE) + 5]
    result = CliRunner().invoke(app, ["ingest", str(log), "-o", str(tmp_path / "ds"), "-q", "--max-line", "100",
                                      "--workers", "1"])  # fmt: skip
    assert result.exit_code == 0 and "1 lines longer than --max-line cut" in result.output
    assert dataset.read_manifest(tmp_path / "ds").column("long_lines").to_pylist() == [1]
    for command in (["parse", str(log), "-o", str(tmp_path / "x.parquet")], ["classify", str(log)],
                    ["ingest", str(log), "-o", str(tmp_path / "ds2")]):  # fmt: skip
        result = CliRunner().invoke(app, [*command, "--max-line", "0"])
        assert result.exit_code == 2 and "--max-line" in result.output


def _nested(levels: int) -> bytes:
    data = GOOD.read_bytes()
    name = "WindowsUpdate.log"
    for n in range(levels):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr(name, data)
        data, name = out.getvalue(), f"level{n}.zip"
    return data


def test_max_depth_option(tmp_path):
    """Archives nested 3 deep: read with the default (4), rejected with ``--max-depth 2``."""
    (tmp_path / "n.zip").write_bytes(_nested(3))
    ok = CliRunner().invoke(app, ["ingest", str(tmp_path / "n.zip"), "-o", str(tmp_path / "a"), "-q", "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    cut = CliRunner().invoke(app, ["ingest", str(tmp_path / "n.zip"), "-o", str(tmp_path / "b"), "-q", "--workers", "1",
                                   "--max-depth", "2"])  # fmt: skip
    assert cut.exit_code == 2 and "archive nested deeper than 2 levels (--max-depth)" in cut.output


def test_expansion_options(tmp_path):
    """``--max-ratio`` and ``--max-total-bytes`` reject a member that expands past them; ``--max-members``
    stops reading an archive with more members."""
    zeros = io.BytesIO()
    with zipfile.ZipFile(zeros, "w", zipfile.ZIP_DEFLATED) as z:
        noise = os.urandom(3 << 20).hex().encode()  # 6 MiB of text that compresses about 2:1
        z.writestr("a/WindowsUpdate.log", GOOD.read_bytes() + b"\n".join(noise[i : i + 100] for i in range(0, len(noise), 100)))
        z.writestr("b/WindowsUpdate.log", GOOD.read_bytes()[:3000])
        z.writestr("c/WindowsUpdate.log", GOOD.read_bytes()[:2000])
    (tmp_path / "z.zip").write_bytes(zeros.getvalue())

    def ingest(name, *options):
        return CliRunner().invoke(app, ["ingest", str(tmp_path / "z.zip"), "-o", str(tmp_path / name), "-q",
                                        "--workers", "1", *options])  # fmt: skip

    assert ingest("plain").exit_code == 0
    ratio = ingest("ratio", "--max-ratio", "1")
    assert ratio.exit_code == 2 and "--max-ratio" in ratio.output and "z.zip!/a/WindowsUpdate.log" in ratio.output
    total = ingest("total", "--max-total-bytes", "100000")
    assert total.exit_code == 2 and "--max-total-bytes" in total.output
    members = ingest("members", "--max-members", "2")
    assert members.exit_code == 2 and "--max-members" in members.output
    statuses = [r["status"] for r in dataset.read_manifest(tmp_path / "members").to_pylist()]
    assert sorted(statuses) == ["parsed", "parsed", "rejected"]
