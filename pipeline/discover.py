"""The discover stage: walk files, directories and archives (zip, tar, gzip, bzip2, xz, nested in any
order) and yield every file in them as a :class:`Member` with its path in the bundle and the host its
layout names. Archive members are streams read in place: nothing is extracted to disk, member names
are only names, and expansion is bounded by :class:`Limits`.

A member's stream must be read (or left) before the next member is asked for: tar archives are read
in one pass.

>>> bundle_name("fleet/web01.zip", "../../etc/passwd")
'fleet/web01.zip!/etc/passwd'
>>> safe_name("C:\\\\Windows\\\\..\\\\Logs\\\\WindowsUpdate.log")
'Windows/Logs/WindowsUpdate.log'
>>> layout_host(["fleet", "web01.zip", "logs"])
('web01', 'archive web01.zip')
>>> layout_host(["bundle", "web01", "var", "opt", "microsoft", "omsagent", "log"])
('web01', 'folder web01')
>>> rotated_base("worker.log.1.gz"), rotated_base("WindowsUpdate.old"), rotated_base("omsupdatemgmt.log-20240101")
('worker.log', 'WindowsUpdate.log', 'omsupdatemgmt.log')
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import stat
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GiB, MiB = 1 << 30, 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one input path (a file, folder or archive, with everything nested in it) may
    expand to. A member that breaks one is rejected with the reason; the total and the member count
    stop the rest of that input."""

    max_total_bytes: int = 100 * GiB
    """Bytes decompressed from all the archives of one input path."""
    max_ratio: int = 100
    """Decompressed bytes per compressed byte, checked once a stream passed ``ratio_floor`` bytes
    (real logs compress about 10:1; a zip bomb 1000:1)."""
    ratio_floor: int = 4 * MiB
    max_members: int = 100_000
    """Archive members (all archives of one input path together)."""
    max_depth: int = 4
    """Archives inside archives: ``a.zip`` holding ``b.tar.gz`` is depth 2."""
    max_nested_zip_in_memory: int = 256 * MiB
    """A zip inside a stream is read into memory to reach its directory; larger ones are rejected."""


class ExpansionError(Exception):
    """An archive expands past a :class:`Limits` bound (a decompression bomb or an oversized bundle)."""


@dataclass(slots=True)
class Member:
    """One file found in the inputs: a log candidate (``status`` None) or a file already ``skipped``
    or ``rejected`` with its ``reason``. Candidates carry ``disk_path`` (a regular file on disk) or
    ``stream`` (an open archive member, with ``size`` when the archive states it)."""

    path: str
    host: str | None = None
    host_evidence: str | None = None
    disk_path: Path | None = None
    stream: BinaryIO | None = None
    size: int | None = None
    status: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class Budget:
    """What one input path has used of its :class:`Limits`."""

    limits: Limits
    total: int = 0
    members: int = 0
    exhausted: str | None = None

    def spend(self, n: int) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            self.exhausted = f"expands past {self.limits.max_total_bytes} bytes (--max-total-bytes)"
            raise ExpansionError(self.exhausted)


# Names that say where a file sits on a machine, never which machine: skipped when the layout is read.
_GENERIC = frozenset(
    "logs log windowsupdate windows softwaredistribution datastore system32 temp tmp var opt etc microsoft "
    "omsagent omsconfig run automationworker state waagent lib programdata users bundle bundles collected "
    "collection diagnostics diag export exports support supportlogs files data output results panther cbs".split()
)
# A folder whose name is a file-system root: the machine is the folder above it.
_ROOTS = frozenset("var etc opt windows programdata users c c$ root home".split())
HOST = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_ARCHIVE_SUFFIX = re.compile(r"\.(zip|tar|tgz|tbz2?|txz|tar\.gz|tar\.bz2|tar\.xz|gz|bz2|xz)$", re.IGNORECASE)
_ROTATION = re.compile(r"(\.(\d+|bak|gz|bz2|xz|zip)|-\d{8,10})+$", re.IGNORECASE)


def valid_host(name: str | None) -> str | None:
    """``name`` lower-cased when it can be a machine name (and a safe folder name), else ``None``.

    >>> valid_host("WEB01"), valid_host("web01.contoso.com"), valid_host("2024-05-01"), valid_host("../x")
    ('web01', 'web01.contoso.com', None, None)
    """
    if not name:
        return None
    name = name.strip().lower()
    if not HOST.match(name) or len(name) > 253 or not re.search(r"[a-z]", name) and name.count(".") != 3:
        return None
    return name


def archive_stem(name: str) -> str:
    """``web01.tar.gz`` → ``web01``; a name without an archive suffix is returned as is."""
    return _ARCHIVE_SUFFIX.sub("", name)


def rotated_base(name: str) -> str:
    """The log a rotated or compressed copy belongs to: ``worker.log.1`` → ``worker.log``, and
    ``WindowsUpdate.old`` (Windows renames the log on rotation) → ``WindowsUpdate.log``."""
    if name.lower().endswith(".old"):
        return name[: -len(".old")] + ".log"
    return _ROTATION.sub("", name)


def layout_host(containers: Sequence[str]) -> tuple[str | None, str | None]:
    """The host a bundle's layout names, and the evidence: the folder above a file-system root
    (``web01/var/opt/…``, ``web01/Windows/…``), otherwise the innermost folder or archive whose name
    is neither generic (``logs``, ``var``, …) nor a date or number."""
    names = list(containers)
    for i, name in enumerate(names):
        if i and name.lower() in _ROOTS:
            host = valid_host(archive_stem(names[i - 1]))
            if host:
                return host, _evidence(names[i - 1])
    for name in reversed(names):
        stem = archive_stem(name)
        if stem.lower() in _GENERIC:
            continue
        host = valid_host(stem)
        if host:
            return host, _evidence(name)
    return None, None


def _evidence(name: str) -> str:
    return f"archive {name}" if archive_stem(name) != name else f"folder {name}"


def safe_name(name: str) -> str:
    """A member name as a relative name only: no drive, no root, no ``.`` or ``..``."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if parts and re.fullmatch(r"[A-Za-z]:", parts[0]):
        parts = parts[1:]
    cleaned = "/".join("".join(ch if ch.isprintable() else "?" for ch in p) for p in parts)
    return cleaned or "(unnamed)"


def bundle_name(archive: str, member: str) -> str:
    """Path of an archive member in the bundle: ``archive!/member``."""
    return f"{archive}!/{safe_name(member)}"


def discover(paths: Sequence[str | Path], limits: Limits = Limits()) -> Iterator[Member]:
    """Every file in ``paths`` (``-`` is standard input), in a stable order: arguments as given,
    folders sorted by name, archive members in archive order."""
    for given in paths:
        if str(given) == "-":
            yield Member(path="-", stream=sys.stdin.buffer)
            continue
        path = Path(given)
        name = path.name or path.resolve().name or str(path)
        budget = Budget(limits)
        if path.is_dir() and not path.is_symlink():
            yield from _walk(path, name, budget)
        else:
            yield from _file(path, name, [], budget)


def _walk(root: Path, name: str, budget: Budget) -> Iterator[Member]:
    for folder, dirs, files in os.walk(root, onerror=None):
        dirs.sort()
        relative = Path(folder).relative_to(root).parts
        containers = [name, *relative]
        for file in sorted(files):
            yield from _file(Path(folder, file), "/".join([*containers, file]), containers, budget)


def _file(path: Path, bundle: str, containers: list[str], budget: Budget) -> Iterator[Member]:
    host, evidence = layout_host(containers)
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            yield Member(bundle, host, evidence, status="skipped", reason="not a regular file (a FIFO, socket or device)")
            return
        with open(path, "rb") as handle:
            head = handle.read(_PEEK)
    except OSError as error:
        yield Member(bundle, host, evidence, status="rejected", reason=_os_reason(error))
        return
    kind = archive_kind(head)
    if kind is None:
        yield Member(bundle, host, evidence, disk_path=path, size=path.stat().st_size)
        return
    try:
        handle = open(path, "rb")
    except OSError as error:
        yield Member(bundle, host, evidence, status="rejected", reason=_os_reason(error))
        return
    with handle:
        yield from _archive(handle, kind, bundle, containers, 1, budget, seekable=True)


_PEEK = 512


def archive_kind(head: bytes) -> str | None:
    """``zip``, ``gzip``, ``bzip2``, ``xz`` or ``tar`` from a file's first 512 bytes, else ``None``.

    >>> archive_kind(b"PK\\x03\\x04rest"), archive_kind(b"\\x1f\\x8b\\x08"), archive_kind(b"2021/07/13 10:22")
    ('zip', 'gzip', None)
    """
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _archive(stream: BinaryIO, kind: str, bundle: str, containers: list[str], depth: int, budget: Budget,
             *, seekable: bool = False, size: int | None = None) -> Iterator[Member]:  # fmt: skip
    """The members of one archive (``stream`` is positioned at its start)."""
    host, evidence = layout_host([*containers, Path(bundle).name])
    if depth > budget.limits.max_depth:
        yield Member(bundle, host, evidence, status="rejected",
                     reason=f"archive nested deeper than {budget.limits.max_depth} levels (--max-depth)")  # fmt: skip
        return
    inner = [*containers, bundle.rsplit("/", 1)[-1].rsplit("!", 1)[-1]]
    try:
        if kind == "zip":
            yield from _zip(stream, bundle, inner, depth, budget, seekable=seekable, size=size)
        elif kind == "tar":
            yield from _tar(stream, bundle, inner, depth, budget)
        else:
            yield from _compressed(stream, kind, bundle, containers, depth, budget)
    except ExpansionError as error:
        yield Member(bundle, host, evidence, status="rejected", reason=f"decompression bomb or oversized bundle: {error}")
    except (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError, zipfile.BadZipFile, ValueError) as error:
        yield Member(bundle, host, evidence, status="rejected", reason=f"corrupt or truncated {kind} archive: {_text(error)}")
    except NotImplementedError as error:  # zipfile: a directory written by a newer zip version than it reads
        yield Member(bundle, host, evidence, status="rejected", reason=f"unsupported {kind} archive: {_text(error)}")


def _zip(stream: BinaryIO, bundle: str, containers: list[str], depth: int, budget: Budget,
         *, seekable: bool, size: int | None) -> Iterator[Member]:  # fmt: skip
    if not seekable:
        if size is not None and size > budget.limits.max_nested_zip_in_memory:
            raise ExpansionError(f"a zip inside a stream larger than {budget.limits.max_nested_zip_in_memory} bytes")
        data = _read_at_most(stream, budget.limits.max_nested_zip_in_memory)
        stream = io.BytesIO(data)
    with zipfile.ZipFile(stream) as archive:
        for info in archive.infolist():
            if info.filename.endswith("/"):  # a folder (ZipInfo.is_dir() raises IndexError on an empty name)
                continue
            member = bundle_name(bundle, info.filename)
            parts = safe_name(info.filename).split("/")
            host, evidence = layout_host([*containers, *parts[:-1]])
            problem = _count(budget) or _zip_problem(info, budget.limits)
            if problem:
                yield Member(member, host, evidence, status=problem[0], reason=problem[1])
                if budget.exhausted:
                    return
                continue
            try:
                raw = archive.open(info)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, zlib.error) as error:
                yield Member(member, host, evidence, status="rejected", reason=f"unreadable zip member: {_text(error)}")
                continue
            with raw:
                guarded = Guard(raw, budget, lambda info=info: info.compress_size)
                yield from _entry(guarded, member, [*containers, *parts[:-1]], depth, budget, info.file_size, seekable=False)


def _zip_problem(info: zipfile.ZipInfo, limits: Limits) -> tuple[str, str] | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "skipped", "a symbolic link (never followed)"
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return "skipped", "not a regular file (a device, FIFO or socket)"
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_floor and ratio > limits.max_ratio:
        return "rejected", (f"decompression bomb: {info.file_size} bytes from {info.compress_size} "
                            f"(ratio {ratio:.0f}, limit {limits.max_ratio}; --max-ratio)")  # fmt: skip
    return None


def _tar(stream: BinaryIO, bundle: str, containers: list[str], depth: int, budget: Budget) -> Iterator[Member]:
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for info in archive:
            if info.isdir():
                continue
            member = bundle_name(bundle, info.name)
            parts = safe_name(info.name).split("/")
            host, evidence = layout_host([*containers, *parts[:-1]])
            problem = _count(budget) or _tar_problem(info)
            if problem:
                yield Member(member, host, evidence, status=problem[0], reason=problem[1])
                if budget.exhausted:
                    return
                continue
            raw = archive.extractfile(info)
            yield from _entry(raw, member, [*containers, *parts[:-1]], depth, budget, info.size, seekable=False)


def _tar_problem(info: tarfile.TarInfo) -> tuple[str, str] | None:
    if info.issym():
        return "skipped", f"a symbolic link to {safe_name(info.linkname)!r} (never followed)"
    if info.islnk():
        return "skipped", f"a hard link to {safe_name(info.linkname)!r} (never followed)"
    if info.ischr() or info.isblk():
        return "skipped", "a device file"
    if not info.isreg():
        return "skipped", "not a regular file (a FIFO or special entry)"
    return None


def _compressed(stream: BinaryIO, kind: str, bundle: str, containers: list[str], depth: int, budget: Budget) -> Iterator[Member]:
    """A gzip, bzip2 or xz stream: a compressed tar, or one compressed file (``worker.log.1.gz``)."""
    counted = Counting(stream)
    opener = {"gzip": gzip.GzipFile, "bzip2": bz2.BZ2File, "xz": lzma.LZMAFile}[kind]
    raw = opener(fileobj=counted) if kind == "gzip" else opener(counted)
    guarded = Guard(raw, budget, lambda: counted.count)
    yield from _entry(guarded, bundle, containers, depth, budget, None, seekable=False, compressed=True)


def _entry(stream: BinaryIO, bundle: str, containers: list[str], depth: int, budget: Budget, size: int | None,
           *, seekable: bool, compressed: bool = False) -> Iterator[Member]:  # fmt: skip
    """A member stream: recurse when it is itself an archive, else yield it as a log candidate."""
    peeked = Peeked(stream)
    host, evidence = layout_host(containers)
    try:
        head = peeked.peek(_PEEK)
    except ExpansionError:
        raise
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as error:
        yield Member(bundle, host, evidence, status="rejected", reason=f"unreadable: {_text(error)}")
        return
    kind = archive_kind(head)
    if kind is None:
        yield Member(bundle, host, evidence, stream=peeked, size=size)
    elif compressed and kind == "tar":
        yield from _archive(peeked, "tar", bundle, containers, depth, budget)
    else:
        yield from _archive(peeked, kind, bundle, containers, depth + 1, budget, size=size)


def _count(budget: Budget) -> tuple[str, str] | None:
    if budget.exhausted:
        return "rejected", f"not read: {budget.exhausted}"
    budget.members += 1
    if budget.members > budget.limits.max_members:
        budget.exhausted = f"more than {budget.limits.max_members} archive members (--max-members); the rest were not read"
        return "rejected", budget.exhausted
    return None


class Counting(io.RawIOBase):
    """A read-only stream that counts the bytes read through it (the compressed side of a ratio)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner, self.count = inner, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


class Guard(io.RawIOBase):
    """Reads a decompressing stream, raising :class:`ExpansionError` past the ratio or the budget.

    >>> data = gzip.compress(b"\\0" * (5 * MiB))
    >>> g = Guard(gzip.GzipFile(fileobj=io.BytesIO(data)), Budget(Limits()), lambda: len(data))
    >>> try:
    ...     g.read()
    ... except ExpansionError as error:
    ...     print(int(str(error).split()[1]) > 100)
    True
    """

    def __init__(self, inner: BinaryIO, budget: Budget, compressed) -> None:
        self.inner, self.budget, self.compressed, self.out = inner, budget, compressed, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(min(len(buffer), MiB))
        n = len(data)
        buffer[:n] = data
        self.out += n
        self.budget.spend(n)
        limits = self.budget.limits
        if self.out > limits.ratio_floor and self.out > limits.max_ratio * max(self.compressed(), 1):
            ratio = self.out // max(self.compressed(), 1)
            raise ExpansionError(f"expands {ratio} times or more (limit {limits.max_ratio}; --max-ratio)")
        return n


class Peeked(io.RawIOBase):
    """A stream whose first bytes can be looked at without losing them."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner, self.buffer = inner, b""

    def peek(self, n: int) -> bytes:
        while len(self.buffer) < n:
            more = self.inner.read(n - len(self.buffer))
            if not more:
                break
            self.buffer += more
        return self.buffer[:n]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.buffer:
            n = min(len(buffer), len(self.buffer))
            buffer[:n], self.buffer = self.buffer[:n], self.buffer[n:]
            return n
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_fully(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of the stream (``read`` may return short)."""
    parts, size = [], 0
    while size < n:
        data = stream.read(min(n - size, 4 * MiB))
        if not data:
            break
        parts.append(data)
        size += len(data)
    return b"".join(parts)


def _read_at_most(stream: BinaryIO, limit: int) -> bytes:
    data = read_fully(stream, limit + 1)
    if len(data) > limit:
        raise ExpansionError(f"a zip inside a stream larger than {limit} bytes")
    return data


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error)


def _text(error: BaseException) -> str:
    return (str(error) or type(error).__name__).splitlines()[0][:200]
