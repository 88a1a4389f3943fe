"""Hostile inputs, generated into a folder by the tests (never stored as files in the repository).

Each entry of :data:`HOSTILE` writes one input and says what umlogs must make of it when it is given
to ``parse``, ``classify``, ``ingest`` and ``export`` beside a good sample:

* ``error``: the run names it in one ``umlogs: error: <file>: <reason>`` line containing ``reason``
  and exits 2 (the other inputs are still processed);
* ``parsed``: it is read as a log (events and/or parse issues), exit 0 for it;
* ``ingest`` gives the same expectation for ``ingest`` and ``export`` (which reads bundles through
  ingest), where archives are opened rather than refused as binary: ``skipped`` files are listed in
  the summary and do not change the exit code, ``rejected`` ones are errors (exit 2).
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from conftest import SAMPLES

GOOD = SAMPLES / "windows_update" / "classic.log"
"""The good sample put beside every hostile input; its events must be written."""
WU_LINE = b"2021-07-13\t10:22:03:123\t 936\t 13bc\tAgent\t"
"""The start of a classic WindowsUpdate.log line (date, time, pid, tid, component, message)."""


@dataclass(frozen=True)
class Hostile:
    """One hostile input: the file name it gets, how to write it, and what umlogs must say."""

    name: str
    write: object
    """``write(path)`` creates the input at ``path``."""
    expect: str
    """``error`` or ``parsed`` for parse, classify and (plain files) ingest and export."""
    reason: str = ""
    """Text the error line must contain."""
    ingest: str | None = None
    """Expectation for ingest and export when it differs (archives): ``parsed``, ``skipped`` or ``rejected``."""
    ingest_reason: str = ""


def _bytes(data: bytes):
    return lambda path: path.write_bytes(data)


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _nested(levels: int) -> bytes:
    """Zips in zips, ``levels`` deep, the innermost holding a log: the shape of a zip quine."""
    data = _zip({"WindowsUpdate.log": GOOD.read_bytes()})
    for n in range(levels - 1):
        data = _zip({f"level{n}.zip": data}, zipfile.ZIP_STORED)
    return data


def _bomb(path: Path) -> None:
    """A zip whose one member inflates 200 MiB of zeros from about 200 KB (ratio ~1000)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("bomb/WindowsUpdate.log", "w") as member:
        block = b"\0" * (1 << 20)
        for _ in range(200):
            member.write(block)


def _device_tar(path: Path) -> None:
    with tarfile.open(path, "w") as t:
        for name, kind in (("dev/null", tarfile.CHRTYPE), ("dev/sda", tarfile.BLKTYPE), ("dev/fifo", tarfile.FIFOTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.devmajor, info.devminor = kind, 1, 3
            t.addfile(info)
        data = GOOD.read_bytes()
        info = tarfile.TarInfo("web09/WindowsUpdate.log")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))


def _chain(path: Path) -> None:
    """Portal text: one exception wrapping the next, 10,000 levels deep."""
    text = "System.AggregateException: top level" + "".join(
        f" ---> System.Net.WebException (0x80072EE2): level {i}" for i in range(10_000)
    )
    path.write_text(text + "\n")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _utf16_without_bom(path: Path) -> None:
    path.write_bytes((WU_LINE.decode() + "hello\r\n").encode("utf-16-le") * 20)


HOSTILE: tuple[Hostile, ...] = (
    Hostile("empty.log", _bytes(b""), "error", "not a log: empty file", "skipped"),
    Hostile("bom-only.log", _bytes(b"\xef\xbb\xbf"), "error", "not a log: no text", "skipped"),
    Hostile("elf.log", _bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 16), "error", "not a log: binary", "skipped"),
    Hostile("png.log", _bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 16), "error",
            "not a log: binary", "skipped"),  # fmt: skip
    Hostile("nul.log", _bytes(WU_LINE + b"before\x00after\n" + WU_LINE + b"x\x00\x00\x00y\n"), "parsed"),
    Hostile("invalid-utf8.log", _bytes(WU_LINE + b"caf\xc3 \xff\xfe\xc0\xaf\n" + WU_LINE + b"ok\n"), "parsed"),
    Hostile("utf16-no-bom.log", _utf16_without_bom, "error", "not a log: binary", "skipped"),
    Hostile("line-ends.log", _bytes(WU_LINE + b"crlf\r\n" + WU_LINE + b"lf\n" + WU_LINE + b"lone\r" + WU_LINE
                                    + b"cr\r\n\r\r\n"), "parsed"),  # fmt: skip
    Hostile("only-cr.log", _bytes((WU_LINE + b"old mac\r") * 5), "error", "not a known log format", "skipped"),
    Hostile("start-then-stop.log", _bytes(b"2021-07-13\t10:22:03:123\t 93"), "error", "not a known log format",
            "skipped"),  # fmt: skip
    Hostile("stops-midway.log", _bytes(GOOD.read_bytes()[:300] + b"\n2021-07-13\t10:2\n"), "parsed"),
    Hostile("impossible-dates.log", _bytes(b"2021-13-13\t10:22:03:123\t 936\t 13bc\tAgent\tmonth 13\n"
                                           b"2021-02-30\t10:22:03:123\t 936\t 13bc\tAgent\tFeb 30\n"
                                           b"2021-02-28\t25:61:61:999\t 936\t 13bc\tAgent\thour 25\n"
                                           b"9999-12-31\t23:59:59:999\t 936\t 13bc\tAgent\tfar future\n"
                                           b"0001-01-01\t00:00:00:000\t 936\t 13bc\tAgent\tyear one\n"), "parsed"),  # fmt: skip
    Hostile("chain-10000.txt", _chain, "parsed"),
    # 200k "[key=" groups that nothing closes, on one worker.log line and spread over an entry's
    # continuation lines: read in linear time (a regex that rescans from each of them never ends).
    Hostile("open-groups-worker.log", _bytes(b"2019-05-31 10:11:02 (8593)worker : x " + b"[a=" * 200_000 + b"\n"
                                             + b"2019-05-31 10:11:03 (8593)worker : y\n" + b"  [b=\n" * 200_000), "parsed"),  # fmt: skip
    Hostile("name with spaces.log", _bytes(GOOD.read_bytes()[:2000]), "parsed"),
    Hostile("new\nline ü 日本.log", _bytes(GOOD.read_bytes()[:3000]), "parsed"),
    Hostile("fifo.log", _fifo, "error", "not a regular file", "skipped"),
    Hostile("slip.zip", _bytes(_zip({"../../../../tmp/escaped-by-umlogs.log": GOOD.read_bytes()[:2500],
                                     "/etc/cron.d/evil.log": b"* * * * * root true\n"})),
            "error", "not a log: binary", "parsed"),  # fmt: skip
    Hostile("bomb.zip", _bomb, "error", "not a log: binary", "rejected", "decompression bomb"),
    Hostile("nested.zip", _bytes(_nested(8)), "error", "not a log: binary", "rejected", "nested deeper than 4"),
    Hostile("truncated.log.gz", _bytes(gzip.compress(GOOD.read_bytes())[:400]), "error", "not a log: binary",
            "rejected", "truncated or corrupt"),  # fmt: skip
    Hostile("devices.tar", _device_tar, "error", "not a log", "parsed"),
)


def write_all(folder: Path, entries=HOSTILE) -> dict[str, Path]:
    """Write ``entries`` into ``folder``; returns name → path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for entry in entries:
        path = folder / entry.name
        entry.write(path)
        paths[entry.name] = path
    return paths
