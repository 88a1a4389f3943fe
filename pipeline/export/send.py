"""Transports: syslog over TCP (RFC 6587 octet counting), UDP and TLS, and Splunk HEC over HTTP(S).

Records go in batches. A batch counts as *sent* only when the receiver confirmed it:

* HEC: the collector answered 2xx to the POST.
* TCP and TLS: one connection per batch; after the last frame umlogs half-closes and waits for the
  receiver to close its side (it has then read everything). A reset or a refused connection fails the
  batch. A receiver that keeps the connection open past :data:`CONFIRM_TIMEOUT` is taken as having
  received it (TCP delivered every byte without a reset).
* UDP: there is no confirmation; a datagram counts as sent when the kernel accepted it. A record
  larger than one datagram (:data:`UDP_MAX`) cannot go by UDP and is counted unsent.

A failed batch is retried with exponential backoff (``backoff``, doubled each time, at most
:data:`MAX_DELAY` seconds, ``retries`` times). When a batch still fails, it and, with
``give_up=True``, every later record are counted unsent by id, so nothing is lost silently; a
re-send may duplicate records the receiver had already stored, which the stable ids let a SIEM
de-duplicate. Proxies are not used.

>>> parse_target("syslog+tcp://127.0.0.1:514").scheme, parse_target("https://siem:8088").path
('syslog+tcp', '/services/collector/event')
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from umlogs.pipeline.export import ExportError

SCHEMES = ("syslog+tcp", "syslog+udp", "syslog+tls", "http", "https")
HEC_PATH = "/services/collector/event"
TOKEN_ENV = "UMLOGS_HEC_TOKEN"
UDP_MAX = 65_507
CONFIRM_TIMEOUT = 5.0
IO_TIMEOUT = 10.0
MAX_DELAY = 8.0
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True, slots=True)
class Target:
    """Where records go: ``scheme``, ``host``, ``port`` and, for HEC, the ``path``."""

    scheme: str
    host: str
    port: int
    path: str = ""


@dataclass(slots=True)
class Delivery:
    """What happened to the records handed to a sender."""

    sent: int = 0
    unsent_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retries: int = 0

    @property
    def unsent(self) -> int:
        return len(self.unsent_ids)

    def note(self, error: str) -> None:
        if error not in self.errors:
            self.errors.append(error)


class BatchFailed(Exception):
    """A batch did not get through; ``done`` records at its start did; ``permanent`` means retrying
    cannot help (a 4xx answer, a certificate the CA file does not vouch for)."""

    def __init__(self, reason: str, *, done: int = 0, permanent: bool = False) -> None:
        super().__init__(reason)
        self.done, self.permanent = done, permanent


def parse_target(url: str) -> Target:
    """Check and split a ``--to`` URL."""
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ExportError(f"--to {url!r}: {error}") from None
    if parts.scheme not in SCHEMES:
        raise ExportError(f"--to {url!r}: the scheme must be one of {', '.join(SCHEMES)}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ExportError(f"--to {url!r}: give a host and a port, e.g. {parts.scheme or 'syslog+tcp'}://127.0.0.1:514")
    path = (parts.path or HEC_PATH) if parts.scheme in ("http", "https") else ""
    return Target(parts.scheme, parts.hostname, port, path)


def frame_octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet-counting: ``MSG-LEN SP SYSLOG-MSG``.

    >>> frame_octet_counted("é".encode())
    b'2 \\xc3\\xa9'
    """
    return str(len(message)).encode("ascii") + b" " + message


class Sender:
    """Buffers records into batches and delivers them to one target; :meth:`close` gives the counts."""

    def __init__(
        self,
        target: Target,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        batch_size: int = 500,
        retries: int = 5,
        backoff: float = 0.5,
        give_up: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if target.scheme in ("http", "https") and not token:
            raise ExportError(f"Splunk HEC needs its token in the environment variable {TOKEN_ENV}")
        self.target, self.token, self.batch_size = target, token, max(1, batch_size)
        self.retries, self.backoff, self.give_up, self.sleep = max(0, retries), max(0.0, backoff), give_up, sleep
        self.context = _tls_context(ca_file) if target.scheme in ("syslog+tls", "https") else None
        self.delivery = Delivery()
        self._batch: list[tuple[str, bytes]] = []
        self._down = False

    def add(self, record_id: str, payload: str) -> None:
        """Queue one encoded record (already serialized to one line of text)."""
        data = payload.encode("utf-8")
        if self.target.scheme == "syslog+udp" and len(data) > UDP_MAX:
            self.delivery.unsent_ids.append(record_id)
            self.delivery.note(f"a record of {len(data)} bytes does not fit in one UDP datagram ({UDP_MAX})")
            return
        self._batch.append((record_id, data))
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Deliver what is queued (with retries)."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self._down:
            self.delivery.unsent_ids.extend(rid for rid, _ in batch)
            return
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self._send(batch)
            except BatchFailed as failure:
                self.delivery.sent += failure.done
                batch = batch[failure.done :]
                self.delivery.note(str(failure))
                if failure.permanent or attempt == self.retries:
                    break
                self.delivery.retries += 1
                self.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
            else:
                self.delivery.sent += len(batch)
                return
        self.delivery.unsent_ids.extend(rid for rid, _ in batch)
        self._down = self.give_up

    def close(self) -> Delivery:
        """Deliver the rest and return the counts."""
        self.flush()
        return self.delivery

    def _send(self, batch: list[tuple[str, bytes]]) -> None:
        scheme = self.target.scheme
        if scheme == "syslog+udp":
            _send_udp(self.target, [data for _, data in batch])
        elif scheme in ("syslog+tcp", "syslog+tls"):
            _send_stream(self.target, [data for _, data in batch], self.context)
        else:
            _send_hec(self.target, [data for _, data in batch], self.token or "", self.context)


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise ExportError(f"--ca-file {ca_file}: {getattr(error, 'strerror', None) or error}") from None


def _send_udp(target: Target, payloads: list[bytes]) -> None:
    done = 0
    try:
        with socket.socket(_family(target), socket.SOCK_DGRAM) as sock:
            sock.settimeout(IO_TIMEOUT)
            sock.connect((target.host, target.port))
            for data in payloads:
                sock.send(data)
                done += 1
    except OSError as error:
        raise BatchFailed(f"udp {target.host}:{target.port}: {_reason(error)}", done=done) from None


def _family(target: Target) -> int:
    info = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
    return info[0][0]


def _send_stream(target: Target, payloads: list[bytes], context: ssl.SSLContext | None) -> None:
    where = f"{target.scheme.split('+')[1]} {target.host}:{target.port}"
    try:
        raw = socket.create_connection((target.host, target.port), timeout=IO_TIMEOUT)
    except OSError as error:
        raise BatchFailed(f"{where}: {_reason(error)}") from None
    try:
        sock = context.wrap_socket(raw, server_hostname=target.host) if context else raw
    except ssl.SSLCertVerificationError as error:
        raw.close()
        raise BatchFailed(f"{where}: certificate not trusted: {error.verify_message}", permanent=True) from None
    except (OSError, ssl.SSLError) as error:
        raw.close()
        raise BatchFailed(f"{where}: {_reason(error)}") from None
    with sock:
        try:
            sock.sendall(b"".join(frame_octet_counted(p) for p in payloads))
            _confirm(sock)
        except OSError as error:
            raise BatchFailed(f"{where}: {_reason(error)}") from None


def _confirm(sock: socket.socket) -> None:
    """Half-close and wait for the receiver to close: it has then read every byte."""
    if isinstance(sock, ssl.SSLSocket):
        # TLS: send close_notify; the receiver answers with its own, or closes the connection.
        try:
            sock = sock.unwrap()
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(CONFIRM_TIMEOUT)
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if not sock.recv(4096):
                return
    except TimeoutError:
        return


def _send_hec(target: Target, payloads: list[bytes], token: str, context: ssl.SSLContext | None) -> None:
    where = f"{target.scheme}://{target.host}:{target.port}{target.path}"
    if context:
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=IO_TIMEOUT, context=context)
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=IO_TIMEOUT)
    headers = {"Authorization": f"Splunk {token}", "Content-Type": "application/json"}
    try:
        conn.request("POST", target.path, body=b"\n".join(payloads), headers=headers)
        response = conn.getresponse()
        body = response.read(2048).decode("utf-8", "replace")
    except ssl.SSLCertVerificationError as error:
        raise BatchFailed(f"{where}: certificate not trusted: {error.verify_message}", permanent=True) from None
    except (OSError, http.client.HTTPException) as error:
        raise BatchFailed(f"{where}: {_reason(error)}") from None
    finally:
        conn.close()
    if not 200 <= response.status < 300:
        detail = " ".join(body.split())[:200]
        raise BatchFailed(f"{where}: HTTP {response.status} {detail}".rstrip(),
                          permanent=response.status not in _RETRY_STATUS)


def _reason(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the receiver"
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
