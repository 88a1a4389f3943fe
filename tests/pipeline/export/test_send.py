"""Delivery over the wire to real receivers on 127.0.0.1: rsyslog over TCP (octet counting) and UDP,
TLS with certificate verification, and receivers that go away mid-stream. What arrived is read back
and compared; whatever did not arrive is reported by id, never lost silently."""

from __future__ import annotations

import doctest
import re

import pytest
from typer.testing import CliRunner

from umlogs.pipeline.cli import app
from umlogs.pipeline.export import ExportError, send, serialize, syslog
from umlogs.pipeline.export.send import Sender, parse_target

from .conftest import SAMPLES, FrameReceiver, hostile_records, sample_records, server_context
from .test_syslog import parse as parse_syslog

SAMPLE = str(SAMPLES / "windows_update" / "classic.log")
ID = re.compile(r'\bid="([0-9a-f]{32}|hostile-[\w-]+)"')


def _ids(lines) -> list[str]:
    return [m.group(1) for line in lines for m in [ID.search(line)] if m]


def test_tcp_to_rsyslog_every_record_arrives_intact(rsyslog):
    records = sample_records() + hostile_records()
    sender = Sender(parse_target(f"syslog+tcp://127.0.0.1:{rsyslog.tcp}"), batch_size=50, retries=2, backoff=0.05)
    expected = {}
    for r in records:
        line = syslog.encode(r)
        expected[r.id] = line
        sender.add(r.id, line)
    delivery = sender.close()
    assert (delivery.sent, delivery.unsent) == (len(records), 0)
    lines = rsyslog.wait_lines(len(records))
    assert len(lines) == len(records)
    for line in lines:
        fields = parse_syslog(line)
        assert line == expected[fields["params"]["id"]], "rsyslog received exactly what was sent"
    assert sorted(_ids(lines)) == sorted(expected)
    big = next(line for line in lines if "hostile-big" in line and "finding" not in line.split(" ")[5])
    assert "x" * 65_536 in big


def test_udp_to_rsyslog(rsyslog):
    records = [r for r in sample_records() if r.kind == "event"][:60]
    sender = Sender(parse_target(f"syslog+udp://127.0.0.1:{rsyslog.udp}"), batch_size=20, retries=1, backoff=0.05)
    for r in records:
        sender.add(r.id, syslog.encode(r))
    delivery = sender.close()
    assert (delivery.sent, delivery.unsent) == (60, 0)
    lines = rsyslog.wait_lines(60)
    assert sorted(_ids(lines)) == sorted(r.id for r in records)
    for line in lines:
        parse_syslog(line)


def test_udp_refuses_a_record_larger_than_a_datagram(rsyslog):
    big = next(r for r in hostile_records() if r.id == "hostile-big")
    sender = Sender(parse_target(f"syslog+udp://127.0.0.1:{rsyslog.udp}"), retries=0)
    sender.add(big.id, syslog.encode(big) + "x" * send.UDP_MAX)
    delivery = sender.close()
    assert delivery.unsent_ids == ["hostile-big"] and "UDP datagram" in delivery.errors[0]


def test_cli_export_to_rsyslog_tcp(rsyslog):
    result = CliRunner().invoke(app, ["export", SAMPLE, "--format", "syslog", "--to", f"syslog+tcp://127.0.0.1:{rsyslog.tcp}"])
    assert result.exit_code == 0, result.output
    assert "sent 87 records" in result.stderr
    assert len(rsyslog.wait_lines(87)) == 87


def test_receiver_down_from_the_start_exits_3_with_the_count(rsyslog):
    port = rsyslog.tcp
    rsyslog.stop()
    result = CliRunner().invoke(app, ["export", SAMPLE, "--format", "syslog", "--to", f"syslog+tcp://127.0.0.1:{port}",
                                      "--retries", "2", "--backoff", "0.01", "--batch-size", "10"])
    assert result.exit_code == 3
    assert "sent 0 records" in result.stderr and "87 records unsent" in result.stderr
    assert "connection refused" in result.stderr and "Traceback" not in result.output


def test_receiver_that_goes_away_mid_stream_loses_nothing_silently():
    records = [r for r in sample_records() if r.kind == "event"][:100]
    receiver = FrameReceiver(accept_connections=3)  # three batches, then nobody listens
    sender = Sender(parse_target(f"syslog+tcp://127.0.0.1:{receiver.port}"), batch_size=20, retries=2, backoff=0.01)
    try:
        for r in records:
            sender.add(r.id, syslog.encode(r))
        delivery = sender.close()
    finally:
        receiver.stop()
    received = _ids(f.decode() for f in receiver.frames)
    assert delivery.sent == 60 and delivery.unsent == 40
    assert set(received) | set(delivery.unsent_ids) == {r.id for r in records}
    assert set(received).isdisjoint(delivery.unsent_ids)
    assert delivery.errors and delivery.retries == 2


def test_reset_mid_batch_counts_the_batch_unsent_and_may_duplicate():
    records = [r for r in sample_records() if r.kind == "event"][:30]
    receiver = FrameReceiver(accept_connections=1, reset_after=5)  # reads 5 frames, resets, goes away
    sender = Sender(parse_target(f"syslog+tcp://127.0.0.1:{receiver.port}"), batch_size=30, retries=1, backoff=0.01)
    try:
        for r in records:
            sender.add(r.id, syslog.encode(r))
        delivery = sender.close()
    finally:
        receiver.stop()
    assert delivery.sent == 0 and delivery.unsent == 30, "an unconfirmed batch is not counted as sent"
    assert set(_ids(f.decode() for f in receiver.frames)) <= set(delivery.unsent_ids)


def test_tls_with_verification(certificate):
    cert, _ = certificate
    records = [r for r in sample_records() if r.kind == "event"][:25]
    receiver = FrameReceiver(context=server_context(certificate))
    try:
        sender = Sender(parse_target(f"syslog+tls://127.0.0.1:{receiver.port}"), ca_file=str(cert), batch_size=10,
                        retries=1, backoff=0.01)
        for r in records:
            sender.add(r.id, syslog.encode(r))
        delivery = sender.close()
    finally:
        receiver.stop()
    assert (delivery.sent, delivery.unsent) == (25, 0), delivery.errors
    assert [f.decode() for f in receiver.frames] == [syslog.encode(r) for r in records]


def test_tls_refuses_an_untrusted_certificate(certificate):
    receiver = FrameReceiver(context=server_context(certificate))
    try:
        sender = Sender(parse_target(f"syslog+tls://127.0.0.1:{receiver.port}"), retries=3, backoff=0.01)
        sender.add("one", "<14>1 - - - - - - x")
        delivery = sender.close()
    finally:
        receiver.stop()
    assert delivery.unsent_ids == ["one"] and "certificate not trusted" in delivery.errors[0]
    assert delivery.retries == 0, "a certificate failure is not retried"
    assert receiver.frames == []


def test_octet_counting_frames():
    assert send.frame_octet_counted(b"<14>1 x\nnot a new record") == b"24 <14>1 x\nnot a new record"


@pytest.mark.parametrize("url", ["ftp://x:1", "syslog+tcp://127.0.0.1", "syslog+udp://:514", "http://[::1"])
def test_bad_targets_are_usage_errors(url):
    with pytest.raises(ExportError):
        parse_target(url)


def test_cli_usage_errors_exit_2(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.delenv("UMLOGS_HEC_TOKEN", raising=False)
    cases = [
        ["export", SAMPLE, "--format", "xml"],
        ["export", SAMPLE, "--format", "ecs", "--what", "everything"],
        ["export", SAMPLE, "--format", "ecs", "--to", "syslog+tcp://127.0.0.1:1"],
        ["export", SAMPLE, "--format", "hec", "--to", "http://127.0.0.1:1"],
        ["export", SAMPLE, "--format", "syslog", "--to", "syslog+tls://127.0.0.1:1", "--ca-file", str(tmp_path / "none")],
        ["export", SAMPLE, "--format", "ecs", "--tz", "Mars"],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("umlogs: error: ") and result.stderr.count("\n") == 1, result.stderr
    result = runner.invoke(app, ["export", str(tmp_path / "missing.log"), SAMPLE, "--format", "cef"])
    assert result.exit_code == 2 and "missing.log: no such file" in result.stderr
    assert result.stdout.count("\n") == 87, "the readable input is still exported"


def test_serialized_records_never_contain_a_newline():
    from umlogs.pipeline.export import FORMATS, encoder

    for name in FORMATS:
        for record in hostile_records():
            assert len(serialize(encoder(name)(record)).splitlines()) == 1, name


def test_doctests():
    assert doctest.testmod(send).failed == 0


def test_out_file_holds_what_stdout_shows(tmp_path):
    runner = CliRunner()
    out = tmp_path / "feed.cef"
    to_file = runner.invoke(app, ["export", SAMPLE, "--format", "cef", "-o", str(out)])
    to_stdout = runner.invoke(app, ["export", SAMPLE, "--format", "cef"])
    assert to_file.exit_code == 0 and to_file.stdout == ""
    assert out.read_text(encoding="utf-8") == to_stdout.stdout and to_stdout.stdout.count("\n") == 87
    assert "68 events and 19 findings as cef to" in to_file.stderr
    both = runner.invoke(app, ["export", SAMPLE, "--format", "cef", "-o", str(out), "--to", "syslog+udp://127.0.0.1:9"])
    assert both.exit_code == 2 and "not both" in both.stderr
