"""Elastic Common Schema (ECS 8.x/9.x): one JSON document per record.

Standard fields are set where ECS defines one (``docs/export.md`` lists the mapping); everything
umlogs-specific sits under the custom namespace ``umlogs``. Documents are nested objects; empty values
are left out, so every field present carries a value.

>>> from datetime import datetime, timezone
>>> from umlogs.pipeline.export.record import Record
>>> doc = encode(Record("event", "e1", datetime(2024, 5, 1, 10, tzinfo=timezone.utc), "log", 120,
...     {"format": "windows_update", "source": "a.log", "line_no": 3, "line_count": 1, "level": "error",
...      "message": "failed 0x8024402C", "raw": "raw line", "hresult": "0x8024402C", "pid": 4}, "WU_E_X", "1.0"))
>>> doc["@timestamp"], doc["event"]["kind"], doc["event"]["outcome"], doc["error"]["code"]
('2024-05-01T10:00:00.000000Z', 'event', 'failure', '0x8024402C')
>>> doc["event"]["timezone"], doc["process"]["pid"], doc["umlogs"]["line_no"]
('+02:00', 4, 3)
"""

from __future__ import annotations

from collections.abc import Mapping

from umlogs.pipeline.export.record import PRODUCT, VENDOR, Record, iso_utc, utc_of

NAMESPACE = "umlogs"
# Numeric severity: syslog's scale for log levels; a 0-100 risk-like scale for findings.
LEVEL_SEVERITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "fatal": 2}
FINDING_SEVERITY = {"info": 21, "warning": 47, "error": 73, "critical": 99}
_FAILED_LEVELS = ("error", "fatal")


def encode(record: Record) -> dict:
    """The ECS document for ``record`` (nested objects; serialize with sorted keys)."""
    flat = _event_fields(record) if record.kind == "event" else _finding_fields(record)
    flat.update(_common(record))
    return nest({k: v for k, v in flat.items() if _present(v)})


def nest(flat: Mapping[str, object]) -> dict:
    """Dotted names to nested objects.

    >>> nest({"a.b": 1, "a.c": 2, "d": 3})
    {'a': {'b': 1, 'c': 2}, 'd': 3}
    """
    out: dict = {}
    for name in sorted(flat):
        *parents, leaf = name.split(".") if not name.startswith("@") else [name]
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = flat[name]
    return out


def timezone_text(offset: int) -> str:
    """``+02:00`` for 120 minutes east of UTC.

    >>> timezone_text(120), timezone_text(-330), timezone_text(0)
    ('+02:00', '-05:30', '+00:00')
    """
    sign = "-" if offset < 0 else "+"
    return f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


def _common(record: Record) -> dict:
    flat = {
        "@timestamp": iso_utc(record.time),
        "event.id": record.id,
        "event.module": PRODUCT,
        "host.name": record.host,
        "observer.product": PRODUCT,
        "observer.vendor": VENDOR,
        "observer.version": record.version,
        "observer.type": "log-analyzer",
        "ecs.version": "8.11.0",
        f"{NAMESPACE}.record_kind": record.kind,
        f"{NAMESPACE}.time_source": record.time_source,
    }
    if record.time_source in ("log", "option"):
        flat["event.timezone"] = timezone_text(record.offset)
    return flat


def _event_fields(record: Record) -> dict:
    d = record.data
    failed = bool(d.get("hresult")) or d.get("level") in _FAILED_LEVELS
    succeeded = "0x00000000" in (d.get("success_codes") or ())
    chain = d.get("exception_chain") or []
    ns = NAMESPACE
    return {
        "message": d.get("message"),
        "event.kind": "event",
        "event.category": ["package"],
        "event.type": ["installation"] if d.get("operation") == "installing" else ["info"],
        "event.outcome": "failure" if failed else "success" if succeeded else "unknown",
        "event.original": d.get("raw"),
        "event.dataset": f"{ns}.{d.get('format')}",
        "event.severity": LEVEL_SEVERITY.get(d.get("level"), 6),
        "log.logger": d.get("component"),
        "log.file.path": d.get("source"),
        "log.level": d.get("level"),
        "process.pid": d.get("pid"),
        "process.thread.id": d.get("tid"),
        "error.code": d.get("hresult"),
        "error.message": d.get("message") if failed else None,
        "error.type": (chain[0]["type"] if chain else record.hresult_name) if failed else None,
        f"{ns}.format": d.get("format"),
        f"{ns}.line_no": d.get("line_no"),
        f"{ns}.line_count": d.get("line_count"),
        f"{ns}.local_time": d.get("timestamp_text"),
        f"{ns}.hresults": list(d.get("hresults") or ()),
        f"{ns}.success_codes": list(d.get("success_codes") or ()),
        f"{ns}.kbs": list(d.get("kbs") or ()),
        f"{ns}.update_ids": list(d.get("update_ids") or ()),
        f"{ns}.guids": list(d.get("guids") or ()),
        f"{ns}.caller_id": d.get("caller_id"),
        f"{ns}.urls": list(d.get("urls") or ()),
        f"{ns}.operation": d.get("operation"),
        f"{ns}.operation_phase": d.get("operation_phase"),
        f"{ns}.exit_code": d.get("exit_code"),
        f"{ns}.exception_chain": [dict(c) for c in chain],
        f"{ns}.attrs": dict(d.get("attrs") or ()),
    }


def _finding_fields(record: Record) -> dict:
    d = record.data
    first = utc_of(d.get("first_seen"), record)
    last = utc_of(d.get("last_seen"), record)
    sources = list(d.get("sources") or ())
    ns = NAMESPACE
    failed = bool(d.get("hresult")) or d.get("severity") in ("error", "critical")
    return {
        "message": d["title"] + (f": {d['detail']}" if d.get("detail") else ""),
        "event.kind": "alert",
        "event.category": ["package"],
        "event.type": ["info"],
        "event.outcome": "failure" if failed else "unknown",
        "event.dataset": f"{ns}.finding",
        "event.severity": FINDING_SEVERITY.get(d.get("severity"), 21),
        "event.start": iso_utc(first) if first else None,
        "event.end": iso_utc(last) if last else None,
        "event.reason": d.get("cause"),
        "event.reference": d.get("reference"),
        "log.file.path": sources[0] if len(sources) == 1 else None,
        "rule.id": d["rule_id"],
        "rule.name": d["title"],
        "rule.ruleset": PRODUCT,
        "rule.category": d.get("scenario"),
        "rule.reference": d.get("reference"),
        "rule.description": d.get("cause"),
        "error.code": d.get("hresult"),
        "error.type": record.hresult_name,
        f"{ns}.finding.count": d.get("count"),
        f"{ns}.finding.severity": d.get("severity"),
        f"{ns}.finding.scenario": d.get("scenario"),
        f"{ns}.finding.resolution": d.get("resolution"),
        f"{ns}.finding.detail": d.get("detail"),
        f"{ns}.finding.hosts": list(d.get("hosts") or ()),
        f"{ns}.finding.sources": sources,
        f"{ns}.finding.evidence": [_evidence(e) for e in d.get("evidence") or ()],
    }


def _evidence(item) -> dict:
    values = dict(item) if isinstance(item, Mapping) else {"source": item[0], "line_no": item[1], "text": item[2], "host": item[3]}
    return {k: v for k, v in values.items() if v is not None}


def _present(value: object) -> bool:
    return value is not None and value != [] and value != {} and value != ""
