"""discover: files, folders and archives walked as streams; hostile members named, bounded, skipped."""

from __future__ import annotations

import doctest
import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from umlogs.pipeline import discover as discovering
from umlogs.pipeline.discover import Limits, discover, layout_host, rotated_base, safe_name

LINE = b"2021/07/13 10:22:58.9553434 3696  8172  Shared          InitializeSus\r\n"


def members(paths, limits=Limits()):
    """(path, status, reason, host, content) for every member, reading each stream as it comes."""
    out = []
    for m in discover([str(p) for p in paths], limits):
        content = None
        if m.stream is not None:
            try:
                content = m.stream.read()
            except discovering.ExpansionError as error:
                content = f"expansion: {error}"
            except (OSError, EOFError) as error:
                content = f"read error: {error}"
        elif m.disk_path is not None:
            content = m.disk_path.read_bytes()
        out.append((m.path, m.status, m.reason, m.host, content))
    return out


def test_doctests():
    assert doctest.testmod(discovering).failed == 0


def test_folders_archives_and_nesting(tmp_path: Path):
    fleet = tmp_path / "fleet"
    (fleet / "web01").mkdir(parents=True)
    (fleet / "web01" / "WindowsUpdate.log").write_bytes(LINE)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("WindowsUpdate.log", LINE)
    with zipfile.ZipFile(fleet / "all.zip", "w") as z:
        z.writestr("web02.zip", inner.getvalue())
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        info = tarfile.TarInfo("var/opt/microsoft/omsagent/run/automationworker/worker.log")
        info.size = len(LINE)
        t.addfile(info, io.BytesIO(LINE))
    (fleet / "lnx03.tar.gz").write_bytes(tgz.getvalue())
    (fleet / "web04").mkdir()
    (fleet / "web04" / "worker.log.1.gz").write_bytes(gzip.compress(LINE))
    found = {m[0]: m for m in members([fleet])}
    assert set(found) == {
        "fleet/all.zip!/web02.zip!/WindowsUpdate.log",
        "fleet/lnx03.tar.gz!/var/opt/microsoft/omsagent/run/automationworker/worker.log",
        "fleet/web01/WindowsUpdate.log",
        "fleet/web04/worker.log.1.gz",
    }
    assert {path: m[3] for path, m in found.items()} == {
        "fleet/all.zip!/web02.zip!/WindowsUpdate.log": "web02",
        "fleet/lnx03.tar.gz!/var/opt/microsoft/omsagent/run/automationworker/worker.log": "lnx03",
        "fleet/web01/WindowsUpdate.log": "web01",
        "fleet/web04/worker.log.1.gz": "web04",
    }
    assert all(m[4] == LINE and m[1] is None for m in found.values())


def test_hostile_zip_names_are_names_only(tmp_path: Path):
    bundle = tmp_path / "in" / "evil.zip"
    bundle.parent.mkdir()
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr("../../escaped.log", LINE)
        z.writestr("/etc/cron.d/evil.log", LINE)
        z.writestr("C:\\Windows\\Temp\\x.log", LINE)
    before = sorted(p for p in tmp_path.rglob("*"))
    paths = [m[0] for m in members([bundle])]
    assert paths == ["evil.zip!/escaped.log", "evil.zip!/etc/cron.d/evil.log", "evil.zip!/Windows/Temp/x.log"]
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "escaped.log").exists()


def test_zip_bomb_rejected_by_declared_ratio(tmp_path: Path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("WindowsUpdate.log", b"\0" * (50 << 20))
    [(path, status, reason, _, content)] = members([bomb])
    assert status == "rejected" and "decompression bomb" in reason and content is None


def test_gzip_bomb_stopped_while_reading(tmp_path: Path):
    bomb = tmp_path / "x.log.gz"
    bomb.write_bytes(gzip.compress(b"A" * (20 << 20)))
    [(path, status, reason, _, content)] = members([bomb], Limits(ratio_floor=1 << 20))
    assert status is None and content.startswith("expansion: expands")


def test_total_bytes_and_member_count_bounded(tmp_path: Path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(5):
            z.writestr(f"f{i}.log", LINE)
    found = members([archive], Limits(max_members=3))
    assert [m[1] for m in found] == [None, None, None, "rejected"]
    assert "--max-members" in found[-1][2]
    found = members([archive], Limits(max_total_bytes=len(LINE) * 2 - 1))
    assert found[0][4] == LINE and any("--max-total-bytes" in (m[2] or str(m[4])) for m in found[1:])


def test_depth_bounded(tmp_path: Path):
    data = LINE
    name = "WindowsUpdate.log"
    for level in range(4):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr(name, data)
        data, name = buffer.getvalue(), f"level{level}.zip"
    (tmp_path / "deep.zip").write_bytes(data)
    assert [m[1] for m in members([tmp_path / "deep.zip"], Limits(max_depth=4))] == [None]
    [(path, status, reason, _, _)] = members([tmp_path / "deep.zip"], Limits(max_depth=3))
    assert status == "rejected" and "--max-depth" in reason


def test_tar_links_and_devices_skipped(tmp_path: Path):
    archive = tmp_path / "web05.tar"
    with tarfile.open(archive, "w") as t:
        for kind, name in ((tarfile.SYMTYPE, "link.log"), (tarfile.LNKTYPE, "hard.log"), (tarfile.CHRTYPE, "dev.log"),
                           (tarfile.FIFOTYPE, "fifo.log")):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/shadow"
            t.addfile(info)
        info = tarfile.TarInfo("WindowsUpdate.log")
        info.size = len(LINE)
        t.addfile(info, io.BytesIO(LINE))
    found = members([archive])
    assert [(m[0].split("!/")[1], m[1]) for m in found] == [
        ("link.log", "skipped"), ("hard.log", "skipped"), ("dev.log", "skipped"), ("fifo.log", "skipped"),
        ("WindowsUpdate.log", None),
    ]  # fmt: skip
    assert "symbolic link" in found[0][2] and "hard link" in found[1][2] and "device" in found[2][2]


def test_truncated_and_corrupt_archives(tmp_path: Path):
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        for i in range(3):
            payload = LINE * 2000
            info = tarfile.TarInfo(f"f{i}.log")
            info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
    (tmp_path / "cut.tar.gz").write_bytes(tgz.getvalue()[: len(tgz.getvalue()) // 2])
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    found = members([tmp_path / "cut.tar.gz", tmp_path / "bad.zip"])
    assert found[0][1] is None and found[0][4] == LINE * 2000  # what precedes the cut is read
    assert any(isinstance(m[4], str) and m[4].startswith("read error") or m[1] == "rejected" for m in found[1:-1])
    assert found[-1][:2] == ("bad.zip", "rejected") and "corrupt" in found[-1][2]


def test_unreadable_file_recorded(tmp_path: Path):
    found = members([tmp_path / "missing.log"])
    assert found == [("missing.log", "rejected", "no such file", None, None)]


@pytest.mark.parametrize(
    ("containers", "host"),
    [
        (["fleet", "web01"], "web01"),
        (["fleet", "WEB01", "logs"], "web01"),
        (["bundle", "2024-05-01", "web09.contoso.com.tar.gz"], "web09.contoso.com"),
        (["fleet"], "fleet"),
        (["logs"], None),
        ([], None),
        (["x", "..", "var"], "x"),
    ],
)
def test_layout_host(containers, host):
    assert layout_host(containers)[0] == host


def test_names():
    assert safe_name("../../../etc/passwd") == "etc/passwd"
    assert safe_name("..") == "(unnamed)"
    assert rotated_base("worker.log.3") == "worker.log"
