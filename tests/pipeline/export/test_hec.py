"""Splunk HEC: the envelope, findings in the Updates data model's field names, and delivery to real
HTTP and HTTPS endpoints on 127.0.0.1 (batched, token from the environment, receivers that refuse or
go away)."""

from __future__ import annotations

import doctest
import json

from typer.testing import CliRunner

from umlogs.pipeline.cli import app
from umlogs.pipeline.export import hec, serialize
from umlogs.pipeline.export.send import Sender, parse_target

from .conftest import SAMPLES, _hec_server, corpus_records, hostile_records, sample_records

SAMPLE = str(SAMPLES / "windows_update" / "classic.log")
ENVELOPE = {"time", "host", "source", "sourcetype", "event", "fields"}
UPDATES_FIELDS = {"dest", "signature", "signature_id", "status", "severity", "vendor_product"}
CIM_SEVERITIES = {"critical", "high", "medium", "low", "informational"}


def check(envelope: dict) -> None:
    assert set(envelope) in (ENVELOPE, ENVELOPE | {"index"})
    assert isinstance(envelope["time"], float) and isinstance(envelope["event"], dict)
    assert all(isinstance(v, str) for v in envelope["fields"].values()), "indexed fields are strings"
    line = serialize(envelope)
    assert len(line.splitlines()) == 1 and json.loads(line) == envelope


def test_envelopes_of_the_samples():
    for record in sample_records():
        envelope = hec.encode(record)
        check(envelope)
        assert envelope["fields"]["umlogs_id"] == record.id
        if record.kind == "finding":
            event = envelope["event"]
            assert {"signature", "signature_id", "severity", "vendor_product"} <= set(event) <= set(event)
            assert event["signature_id"] == record.data["rule_id"] and event["severity"] in CIM_SEVERITIES
            assert envelope["sourcetype"] == "umlogs:finding"
        else:
            assert envelope["event"]["message"] == record.data["message"]
            assert envelope["sourcetype"] == f"umlogs:{record.data['format']}"


def test_index_only_when_given():
    record = sample_records("events")[0]
    assert "index" not in hec.encode(record) and hec.encode(record, index="updates")["index"] == "updates"


def test_finding_with_one_host_has_dest_and_status():
    record = next(r for r in hostile_records() if r.kind == "finding")
    event = hec.encode(record)["event"]
    assert UPDATES_FIELDS <= set(event)
    assert event["dest"] == record.data["hosts"][0] and event["status"] == "failure"


def test_hostile_messages_stay_in_their_field():
    for record in hostile_records():
        envelope = hec.encode(record)
        check(envelope)
        back = json.loads(serialize(envelope))
        if record.kind == "event":
            assert back["event"]["message"] == record.data["message"]


def test_corpus_counts(corpus_loaded):
    loaded, findings = corpus_loaded
    envelopes = [hec.encode(r) for r in corpus_records(corpus_loaded)]
    assert len(envelopes) == loaded.table.num_rows + len(findings)
    assert sum(e["fields"]["umlogs_kind"] == "finding" for e in envelopes) == len(findings)


def test_cli_to_http_endpoint_in_batches(hec_http, monkeypatch):
    monkeypatch.setenv("UMLOGS_HEC_TOKEN", "secret-token")
    result = CliRunner().invoke(app, ["export", SAMPLE, "--format", "hec", "--to", hec_http.url, "--batch-size", "20",
                                      "--index", "updates"])
    assert result.exit_code == 0, result.output
    assert "sent 87 records" in result.stderr and "secret-token" not in result.output
    assert len(hec_http.requests) == 5  # 87 records in batches of 20
    assert {r["path"] for r in hec_http.requests} == {"/services/collector/event"}
    assert {r["auth"] for r in hec_http.requests} == {"Splunk secret-token"}
    received = hec_http.events()
    assert len(received) == 87 and all(e["index"] == "updates" for e in received)
    assert not hec_http.requests[0]["body"].startswith(b"["), "objects one after another, not an array"
    local = CliRunner().invoke(app, ["export", SAMPLE, "--format", "hec", "--index", "updates"])
    assert [json.loads(line) for line in local.stdout.splitlines()] == received


def test_https_endpoint_with_ca_file(hec_https, certificate):
    cert, _ = certificate
    records = sample_records()
    sender = Sender(parse_target(hec_https.url), token="t", ca_file=str(cert), batch_size=100, retries=1, backoff=0.01)
    for r in records:
        sender.add(r.id, serialize(hec.encode(r)))
    delivery = sender.close()
    assert (delivery.sent, delivery.unsent) == (len(records), 0), delivery.errors
    assert [e["fields"]["umlogs_id"] for e in hec_https.events()] == [r.id for r in records]


def test_https_without_the_ca_is_refused(hec_https):
    sender = Sender(parse_target(hec_https.url), token="t", retries=3, backoff=0.01)
    sender.add("a", "{}")
    delivery = sender.close()
    assert delivery.unsent_ids == ["a"] and "certificate not trusted" in delivery.errors[0]
    assert hec_https.requests == []


def test_wrong_token_is_not_retried(hec_http):
    hec_http.status = 403
    sender = Sender(parse_target(hec_http.url), token="bad", retries=3, backoff=0.01)
    sender.add("a", "{}")
    sender.add("b", "{}")
    delivery = sender.close()
    assert delivery.unsent == 2 and delivery.retries == 0 and "HTTP 403" in delivery.errors[0]


def test_receiver_that_goes_away_mid_stream(monkeypatch):
    busy = _hec_server(None, accept_batches=2)  # two batches, then 503 Server is busy
    try:
        monkeypatch.setenv("UMLOGS_HEC_TOKEN", "t")
        result = CliRunner().invoke(app, ["export", SAMPLE, "--format", "hec", "--to", busy.url, "--batch-size", "25",
                                          "--retries", "2", "--backoff", "0.01"])
        received = busy.events()
    finally:
        busy.stop()
    assert result.exit_code == 3
    assert "sent 50 records" in result.stderr and "37 records unsent" in result.stderr
    assert "HTTP 503" in result.stderr and len(received) == 50


def test_receiver_gone_is_retried_then_counted():
    gone = _hec_server(None)
    url = gone.url
    gone.stop()
    sleeps = []
    sender = Sender(parse_target(url), token="t", batch_size=2, retries=3, backoff=0.5, sleep=sleeps.append)
    for i in range(5):
        sender.add(str(i), "{}")
    delivery = sender.close()
    assert delivery.sent == 0 and delivery.unsent_ids == ["0", "1", "2", "3", "4"]
    assert sleeps == [0.5, 1.0, 2.0], "exponential backoff, then the rest is not tried again"


def test_doctests():
    assert doctest.testmod(hec).failed == 0
