"""Shared fixtures for the export tests: records of the samples and the real corpus, hostile messages,
and real receivers on 127.0.0.1 (rsyslog, an HTTP and an HTTPS HEC endpoint, receivers that go away).

Every wait is bounded by a deadline; nothing listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import SAMPLES, corpus_files
from umlogs.pipeline.export import source
from umlogs.pipeline.export.record import Record

WAIT = 30.0
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

HOSTILE = {
    "delimiters": 'a|b=c\\d]e"f[g}h{i,j;k<l>m',
    "quotes": "'single' \"double\" `back`",
    "newlines": "line1\nline2\r\nline3\rline4\n\n",
    "forged_syslog": "ok\n<13>1 2024-01-01T00:00:00Z evil app - - - forged",
    "forged_cef": "ok\nCEF:0|Evil|Corp|1|1|forged|10|msg=owned",
    "nul_and_controls": "nul\x00bell\x07esc\x1b[31mdel\x7ftab\there",
    "sd_breakout": '"] [evil@1 x="y"] ',
    "unicode": "Ünïcødé \u2028 \u2029 \x85 ✓ 日本",
    "big": "x" * 65_536,
}


def wait_for(predicate, what: str, timeout: float = WAIT):
    """Poll ``predicate`` until it returns something true, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_records(what: str = "all") -> list[Record]:
    """Records of every sample log (events, then findings)."""
    paths = sorted(p for d in ("windows_update", "update_worker") for p in (SAMPLES / d).glob("*.log"))
    loaded = source.load(paths)
    findings = source.classify(loaded.table) if what != "events" else []
    return list(source.records(loaded, what=what, findings=findings, tz_offset=None, now=NOW))


def hostile_records() -> list[Record]:
    """One event and one finding per hostile message (in the message, the raw line, the component,
    the host and the source path)."""
    out = []
    for name, text in HOSTILE.items():
        event = {
            "event_id": f"hostile-{name}", "format": "windows_update", "source": f"dir/{text[:200]}.log",
            "line_no": 1, "line_count": 1, "level": "error", "message": text, "raw": text,
            "component": text[:100], "host": text[:100], "hresult": "0x80240022",
            "timestamp": datetime(2024, 5, 1, 12, 0), "timestamp_text": text[:50], "utc_offset": None, "pid": 4,
            "tid": 5, "hresults": ["0x80240022"], "exception_chain": [{"type": text[:50], "message": text}],
            "attrs": [("k", text)],
        }
        out.append(Record("event", event["event_id"], NOW, "assumed_utc", 0, event, "WU_E_ALL_UPDATES_FAILED", "1.0"))
        finding = {
            "rule_id": "UM1001", "title": text, "scenario": "hresult", "severity": "error", "hresult": "0x80240022",
            "hresult_name": None, "count": 2, "first_seen": datetime(2024, 5, 1), "last_seen": datetime(2024, 5, 2),
            "hosts": [text[:100]], "sources": [text[:200]], "cause": text, "resolution": text,
            "reference": "https://example.invalid/" + text[:20], "detail": text,
            "evidence": [{"source": "a", "line_no": 1, "text": text, "host": None}],
        }
        out.append(Record("finding", f"hostile-finding-{name}", NOW, "log", 60, finding, None, "1.0"))
    return out


@pytest.fixture(scope="session")
def corpus_loaded():
    """The whole real corpus (both formats), parsed once, with its findings."""
    paths = corpus_files("windows_update") + corpus_files("update_worker")
    loaded = source.load(paths)
    assert loaded.errors == []
    return loaded, source.classify(loaded.table)


def corpus_records(corpus_loaded) -> list[Record]:
    loaded, findings = corpus_loaded
    return list(source.records(loaded, what="all", findings=findings, tz_offset=None, now=NOW))


# --- rsyslog -----------------------------------------------------------------------------------

RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="256k")
module(load="imtcp")
module(load="imudp")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="feed") {{
  action(type="omfile" file="{out}" template="raw" flushOnTXEnd="on" asyncWriting="off")
}}
input(type="imtcp" port="{tcp}" address="127.0.0.1" ruleset="feed")
input(type="imudp" port="{udp}" address="127.0.0.1" ruleset="feed")
"""


@dataclass
class Rsyslog:
    tcp: int
    udp: int
    out: Path
    process: subprocess.Popen
    log: Path

    def lines(self) -> list[str]:
        if not self.out.exists():
            return []
        return self.out.read_bytes().decode("utf-8").split("\n")[:-1]

    def wait_lines(self, n: int) -> list[str]:
        wait_for(lambda: len(self.lines()) >= n, f"{n} lines in rsyslog's output ({len(self.lines())} so far)")
        return self.lines()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=WAIT)


@pytest.fixture
def rsyslog(tmp_path):
    """A real rsyslogd on 127.0.0.1 (TCP and UDP), writing every message it gets, raw, to a file."""
    binary = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("rsyslogd is missing: .ci/run installs it")
        pytest.skip("rsyslogd is not installed (apt-get install rsyslog)")
    work = tmp_path / "rsyslog"
    work.mkdir()
    tcp, udp = free_port(), free_port(socket.SOCK_DGRAM)
    out = work / "received.log"
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, out=out, tcp=tcp, udp=udp))
    log = work / "rsyslogd.stderr"
    with log.open("wb") as err:
        process = subprocess.Popen([binary, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
                                   stdout=err, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Rsyslog(tcp, udp, out, process, log)

    def listening():
        if process.poll() is not None:
            pytest.fail(f"rsyslogd exited: {log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", tcp), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(listening, "rsyslogd to listen")
    # The listening probe opened an empty session; UDP is ready once a probe datagram arrives.
    def udp_ready():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<14>1 - - probe - - - ready", ("127.0.0.1", udp))
        time.sleep(0.1)
        return any("probe" in line for line in server.lines())

    wait_for(udp_ready, "rsyslogd to take UDP")
    out.write_bytes(b"")
    # rsyslog keeps its file open; truncating above is enough to start from an empty file.
    yield server
    server.stop()


# --- HTTP(S) receivers for HEC --------------------------------------------------------------------

@dataclass
class Hec:
    url: str
    requests: list[dict] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None
    status: int = 200

    def events(self) -> list[dict]:
        """Every envelope received, decoded from the concatenated JSON bodies."""
        decoder = json.JSONDecoder()
        out = []
        for request in self.requests:
            body = request["body"].decode("utf-8")
            i = 0
            while i < len(body):
                while i < len(body) and body[i].isspace():
                    i += 1
                if i == len(body):
                    break
                obj, i = decoder.raw_decode(body, i)
                out.append(obj)
        return out

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _hec_server(context: ssl.SSLContext | None, *, accept_batches: int | None = None) -> Hec:
    hec = Hec(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if accept_batches is not None and len(hec.requests) >= accept_batches:
                self.send_response(503)
                self.end_headers()
                self.wfile.write(b'{"text":"Server is busy","code":9}')
                return
            hec.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            self.send_response(hec.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"text":"Success","code":0}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    hec.server = server
    scheme = "https" if context else "http"
    hec.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    return hec


@pytest.fixture
def hec_http():
    hec = _hec_server(None)
    yield hec
    hec.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl binary: ``(cert, key)``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl binary is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=WAIT)
    return cert, key


def server_context(certificate) -> ssl.SSLContext:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def hec_https(certificate):
    hec = _hec_server(server_context(certificate))
    yield hec
    hec.stop()


# --- raw TCP/TLS receivers that can go away -------------------------------------------------------

class FrameReceiver:
    """Accepts RFC 6587 octet-counted frames on 127.0.0.1. After ``accept_connections`` connections
    it stops listening; with ``reset_after`` frames in a connection it resets that connection."""

    def __init__(self, *, context: ssl.SSLContext | None = None, accept_connections: int | None = None,
                 reset_after: int | None = None) -> None:
        self.frames: list[bytes] = []
        self.context, self.accept_connections, self.reset_after = context, accept_connections, reset_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self.accept_connections is not None and self.connections >= self.accept_connections:
                break
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            self.connections += 1
            self._handle(conn)
        self.listener.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(WAIT)
        if self.context is not None:
            try:
                conn = self.context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()
                return
        buffer, count = b"", 0
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except (ssl.SSLError, OSError):
                    break
                if not data:
                    break
                buffer += data
                while b" " in buffer[:12]:
                    length, _, rest = buffer.partition(b" ")
                    n = int(length)
                    if len(rest) < n:
                        break
                    self.frames.append(rest[:n])
                    buffer = rest[n:]
                    count += 1
                    if self.reset_after is not None and count >= self.reset_after:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        return
            if self.context is not None:
                try:
                    conn.unwrap()
                except (ssl.SSLError, OSError):
                    pass

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=WAIT)
