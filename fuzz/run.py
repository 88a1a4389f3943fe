"""Run umlogs' fuzz targets with atheris for a number of minutes each.

    python fuzz/run.py --minutes 10                  # every target, one after the other
    python fuzz/run.py --minutes 10 --jobs 2 archive cef
    python fuzz/run.py --list

Targets are in ``fuzz/targets.py``. Each runs in its own process with its own corpus in
``<workdir>/<target>/corpus`` (seeded from ``samples/`` and small generated archives the first time)
and writes what it finds to ``<workdir>/<target>/crashes``. A crash does not end the target's time: its
signature (exception type and the innermost umlogs frame) is written to ``known.txt``, the fuzzer is
restarted, and inputs that hit a known signature again are not reported twice. At the end a line per
target gives the runs, the coverage and the crashes; ``<workdir>/summary.json`` keeps the same.

Replay a crash without atheris: ``python fuzz/run.py --replay TARGET FILE``.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import json
import lzma
import os
import re
import subprocess
import sys
import tarfile
import time
import traceback
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLES = ROOT / "samples"
TARGET_NAMES = ("windows_update", "update_worker", "portal_exception", "archive", "ecs", "ocsf", "cef", "syslog", "hec")
MAX_LEN = {"archive": 65536}
"""Largest input libFuzzer makes per target (default 16 KiB: enough for many lines)."""
SAMPLE_DIRS = {"windows_update": "windows_update", "update_worker": "update_worker", "portal_exception": "portal_exception"}


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.list:
        print("\n".join(TARGET_NAMES))
        return 0
    if args.replay:
        return _replay(*args.replay)
    if args.child:
        return _child(args.child, args.seconds, Path(args.workdir))
    names = args.targets or list(TARGET_NAMES)
    unknown = sorted(set(names) - set(TARGET_NAMES))
    if unknown:
        print(f"run.py: error: unknown target(s) {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    return _parent(names, args.minutes * 60, args.jobs, Path(args.workdir))


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--minutes", type=float, default=10.0, help="fuzzing time per target (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at the same time (default 1)")
    parser.add_argument("--workdir", default=str(HERE / ".work"), help="corpora, crashes, logs (default fuzz/.work)")
    parser.add_argument("--list", action="store_true", help="print the target names")
    parser.add_argument("--replay", nargs=2, metavar=("TARGET", "FILE"), help="run one input through one target")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=60, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the parent: schedule targets, restart after a crash, summarize --------------------------------


def _parent(names: list[str], seconds: float, jobs: int, workdir: Path) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    queue, running, results = list(names), {}, {}
    while queue or running:
        while queue and len(running) < jobs:
            name = queue.pop(0)
            running[name] = _Run(name, seconds, workdir)
        for name, run in list(running.items()):
            if run.step():
                results[name] = run.summary()
                print(_line(results[name]), flush=True)
                del running[name]
        time.sleep(1)
    (workdir / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any(r["crashes"] for r in results.values()) else 0


class _Run:
    """One target's fuzzing time: a child process, restarted after each crash until time is up."""

    def __init__(self, name: str, seconds: float, workdir: Path) -> None:
        self.name, self.deadline = name, time.monotonic() + seconds
        self.dir = workdir / name
        (self.dir / "crashes").mkdir(parents=True, exist_ok=True)
        self.log = (self.dir / "log.txt").open("a")
        self.crashes: list[str] = []
        self.runs = 0
        self.cov = self.corpus = None
        self.restarts = 0
        self.child: subprocess.Popen | None = None

    def step(self) -> bool:
        """Start or poll the child; True when the target's time is over."""
        if self.child is not None and self.child.poll() is None:
            return False
        if self.child is not None:
            self._collect()
        left = int(self.deadline - time.monotonic())
        if left < 5:
            self.log.close()
            return True
        command = [sys.executable, str(Path(__file__).resolve()), "--child", self.name, "--seconds", str(left),
                   "--workdir", str(self.dir.parent)]  # fmt: skip
        self.out = self.dir / f"child-{self.restarts}.txt"
        self.child = subprocess.Popen(command, stdout=self.out.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)
        self.restarts += 1
        return False

    def _collect(self) -> None:
        text = self.out.read_text(errors="replace")
        self.log.write(text)
        self.log.flush()
        done = re.findall(r"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)\s+cov: (\d+) ft: \d+ corp: (\d+)", text)
        if done:
            runs, self.cov, self.corpus = (int(x) for x in done[-1])
            self.runs += runs
        for artifact in re.findall(r"Test unit written to (\S+)", text):
            if not Path(artifact).name.startswith("slow-unit-"):  # a slow input is logged, not a failure
                self.crashes.append(artifact)
        self.out.unlink()

    def summary(self) -> dict:
        known = self.dir / "known.txt"
        return {"target": self.name, "runs": self.runs, "coverage": self.cov, "corpus": self.corpus,
                "crashes": self.crashes, "signatures": known.read_text().splitlines() if known.exists() else []}  # fmt: skip


def _line(result: dict) -> str:
    found = f"{len(result['crashes'])} crash(es): " + "; ".join(result["signatures"]) if result["crashes"] else "no crash"
    return f"{result['target']}: {result['runs']} runs, cov {result['coverage']}, corpus {result['corpus']}, {found}"


# --- the child: one atheris run ---------------------------------------------------------------------


def _child(name: str, seconds: int, workdir: Path) -> int:
    import atheris

    with atheris.instrument_imports(include=["umlogs", "zipfile", "tarfile", "gzip"] if name == "archive" else ["umlogs"]):
        sys.path.insert(0, str(HERE))
        import targets
    check = targets.TARGETS[name]
    folder = workdir / name
    corpus = folder / "corpus"
    if not corpus.exists() or not any(corpus.iterdir()):
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds(name)):
            (corpus / f"seed-{i:03d}").write_bytes(seed)
    known_file = folder / "known.txt"
    known = set(known_file.read_text().splitlines()) if known_file.exists() else set()

    def one(data: bytes) -> None:
        try:
            check(data)
        except Exception as error:  # every escape is a finding; a known one is not reported twice
            signature = _signature(error)
            if signature in known:
                return
            with known_file.open("a") as f:
                f.write(signature + "\n")
            raise

    args = [sys.argv[0], str(corpus), f"-max_total_time={seconds}", f"-artifact_prefix={folder / 'crashes'}/",
            "-rss_limit_mb=3072", "-timeout=60", f"-max_len={MAX_LEN.get(name, 16384)}", "-print_final_stats=1"]  # fmt: skip
    atheris.Setup(args, one)
    atheris.Fuzz()
    return 0


def _signature(error: BaseException) -> str:
    """Exception type and the innermost frame in umlogs (or fuzz/), e.g. ``OverflowError at record.py:103``."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "umlogs" in f.filename or "/main/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    message = str(error).splitlines()[0][:80] if isinstance(error, AssertionError) and str(error) else ""
    return f"{type(error).__name__} at {where}" + (f" ({message.split(':')[0]})" if message else "")


def _replay(name: str, file: str) -> int:
    sys.path.insert(0, str(HERE))
    import targets

    targets.TARGETS[name](Path(file).read_bytes())
    print(f"{name}: {file}: no failure")
    return 0


# --- seeds ----------------------------------------------------------------------------------------


def seeds(name: str) -> list[bytes]:
    """Starting inputs: sample logs cut into pieces for parsers and encoders, small archives of every
    kind (nested too) for the archive reader."""
    if name == "archive":
        return _archive_seeds()
    pieces: list[tuple[int, bytes]] = []
    for index, folder in enumerate(SAMPLE_DIRS.values()):
        if name in SAMPLE_DIRS and folder != SAMPLE_DIRS[name]:
            continue
        for path in sorted((SAMPLES / folder).iterdir()):
            if path.suffix in (".log", ".txt", ".json") and not path.name.endswith(".expected.json"):
                data = path.read_bytes()
                pieces += [(index, data[start : start + 12_000]) for start in range(0, min(len(data), 48_000), 12_000)]
    corpus = ROOT.parent / "shared" / "corpus" / name
    if name in SAMPLE_DIRS and corpus.is_dir():  # the real logs, where they are beside the checkout
        pieces += [(0, path.read_bytes()[:12_000]) for path in sorted(corpus.iterdir()) if path.is_file()]
    if name in SAMPLE_DIRS:
        return [b"\x00" + piece for _, piece in pieces]
    # encoders: byte 0 = mode (0/1: parse with the parser at index byte//4 % 3; 2/3: synthetic event/finding)
    out = [bytes([index * 4 + n % 2]) + piece[:4000] for n, (index, piece) in enumerate(pieces)]
    return out + [bytes([2]) + bytes(range(256)), bytes([3]) + bytes(range(255, -1, -1))]


def _archive_seeds() -> list[bytes]:
    log = (SAMPLES / "update_worker" / "worker.log").read_bytes()[:2000]
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("host1/var/log/worker.log", log)
        z.writestr("../escape.log", b"x\n")
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as t:
        info = tarfile.TarInfo("host2/worker.log")
        info.size = len(log)
        t.addfile(info, io.BytesIO(log))
        link = tarfile.TarInfo("host2/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
        device = tarfile.TarInfo("host2/dev")
        device.type = tarfile.CHRTYPE
        t.addfile(device)
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as z:
        z.writestr("inner.zip", zipped.getvalue())
        z.writestr("inner.tar.gz", gzip.compress(tarred.getvalue()))
    return [zipped.getvalue(), tarred.getvalue(), gzip.compress(tarred.getvalue()), gzip.compress(log),
            bz2.compress(log), lzma.compress(log), nested.getvalue(), gzip.compress(b"\0" * 100_000)]  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
