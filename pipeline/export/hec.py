"""Splunk HTTP Event Collector: the ``{"time", "host", "source", "sourcetype", "index", "event",
"fields"}`` envelope for ``/services/collector/event``.

``time`` is epoch seconds with millisecond precision. ``index`` is present only when one is given
(Splunk rejects an unknown index; without it the token's default index applies). ``fields`` holds
indexed fields, strings only. A finding's ``event`` carries the field names of Splunk's *Updates*
data model where they apply (``dest``, ``signature``, ``signature_id``, ``status``, ``severity``,
``vendor_product``). Batches are these objects one after another, not a JSON array.

>>> from datetime import datetime, timezone
>>> from umlogs.pipeline.export.record import Record
>>> r = Record("finding", "f1", datetime(2024, 5, 1, 10, tzinfo=timezone.utc), "log", 0,
...     {"rule_id": "UM1001", "title": "No network", "severity": "error", "hosts": ["pc1"],
...      "sources": ["a.log"], "count": 2, "hresult": "0x8024402C"}, None, "1.0")
>>> env = encode(r)
>>> env["time"], env["host"], env["sourcetype"], env["event"]["signature_id"], env["event"]["severity"]
(1714557600.0, 'pc1', 'umlogs:finding', 'UM1001', 'high')
"""

from __future__ import annotations

from umlogs.pipeline.export.record import PRODUCT, Record, epoch_ms, iso_utc, utc_of

# Splunk CIM severities: critical, high, medium, low, informational.
FINDING_SEVERITY = {"info": "informational", "warning": "medium", "error": "high", "critical": "critical"}
LEVEL_SEVERITY = {"debug": "informational", "info": "informational", "warning": "medium", "error": "high", "fatal": "critical"}


def encode(record: Record, *, index: str | None = None) -> dict:
    """The HEC envelope for ``record``."""
    envelope = {
        "time": epoch_ms(record.time) / 1000,
        "host": record.host or PRODUCT,
        "source": record.source or PRODUCT,
        "sourcetype": f"{PRODUCT}:finding" if record.kind == "finding" else f"{PRODUCT}:{record.data.get('format')}",
        "event": _finding(record) if record.kind == "finding" else _event(record),
        "fields": _fields(record),
    }
    if index:
        envelope["index"] = index
    return envelope


def _fields(record: Record) -> dict:
    d = record.data
    fields = {"umlogs_kind": record.kind, "umlogs_id": record.id, "umlogs_time_source": record.time_source}
    if d.get("hresult"):
        fields["hresult"] = d["hresult"]
    if record.kind == "finding":
        fields["rule_id"] = d["rule_id"]
    else:
        fields["level"] = d.get("level") or "info"
    return fields


def _event(record: Record) -> dict:
    d = record.data
    event = {
        "id": record.id,
        "timestamp": iso_utc(record.time),
        "local_time": d.get("timestamp_text"),
        "format": d.get("format"),
        "line_no": d.get("line_no"),
        "level": d.get("level"),
        "severity": LEVEL_SEVERITY.get(d.get("level"), "informational"),
        "message": d.get("message"),
        "raw": d.get("raw"),
        "component": d.get("component"),
        "pid": d.get("pid"),
        "tid": d.get("tid"),
        "hresult": d.get("hresult"),
        "hresult_name": record.hresult_name,
        "hresults": list(d.get("hresults") or ()),
        "kbs": list(d.get("kbs") or ()),
        "update_ids": list(d.get("update_ids") or ()),
        "operation": d.get("operation"),
        "exit_code": d.get("exit_code"),
        "exception_chain": [dict(c) for c in d.get("exception_chain") or ()],
        "attrs": dict(d.get("attrs") or ()),
        "vendor_product": PRODUCT,
    }
    return {k: v for k, v in event.items() if v not in (None, [], {})}


def _finding(record: Record) -> dict:
    d = record.data
    first, last = utc_of(d.get("first_seen"), record), utc_of(d.get("last_seen"), record)
    hosts = list(d.get("hosts") or ())
    event = {
        "id": record.id,
        "dest": hosts[0] if len(hosts) == 1 else hosts or None,
        "signature": d["title"],
        "signature_id": d["rule_id"],
        "status": "failure" if d.get("severity") in ("warning", "error", "critical") else None,
        "severity": FINDING_SEVERITY.get(d.get("severity"), "informational"),
        "vendor_product": PRODUCT,
        "category": d.get("scenario"),
        "hresult": d.get("hresult"),
        "hresult_name": record.hresult_name,
        "count": d.get("count"),
        "first_seen": iso_utc(first) if first else None,
        "last_seen": iso_utc(last) if last else None,
        "cause": d.get("cause"),
        "resolution": d.get("resolution"),
        "reference": d.get("reference"),
        "detail": d.get("detail"),
        "sources": list(d.get("sources") or ()),
        "evidence": [dict(e) if isinstance(e, dict) else dict(zip(("source", "line_no", "text", "host"), e))
                     for e in d.get("evidence") or ()],
    }
    return {k: v for k, v in event.items() if v not in (None, [], {})}
