"""OCSF 1.7.0: findings as Detection Finding (2004), error lines as Application Error (6008), other
lines as Base Event (0).

OCSF has no class for an application's informational log line (Application Lifecycle covers an app
being installed, started or stopped; Event Log Activity covers the log itself), so lines that carry
no failure use the schema's catch-all Base Event, ``class_uid`` 0. ``type_uid`` is always
``class_uid * 100 + activity_id``. Fields OCSF does not define go under ``unmapped``.

>>> from datetime import datetime, timezone
>>> from umlogs.pipeline.export.record import Record
>>> t = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
>>> e = encode(Record("event", "e1", t, "log", 0, {"format": "windows_update", "source": "a.log",
...     "line_no": 1, "level": "error", "message": "boom", "raw": "boom", "hresult": "0x80240022"}, None, "1.0"))
>>> e["class_uid"], e["type_uid"], e["severity_id"], e["time"]
(6008, 600801, 4, 1714557600000)
>>> encode(Record("event", "e2", t, "log", 0, {"level": "info", "message": "ok", "raw": "ok"}, None, "1.0"))["type_uid"]
99
"""

from __future__ import annotations

from collections.abc import Mapping

from umlogs.pipeline.export.record import PRODUCT, VENDOR, Record, epoch_ms, utc_of

SCHEMA_VERSION = "1.7.0"
APPLICATION_ERROR = (6008, 6, 1)  # class_uid, category_uid, activity_id (General Error)
BASE_EVENT = (0, 0, 99)  # activity Other
DETECTION_FINDING = (2004, 2, 1)  # activity Create
# severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal.
LEVEL_SEVERITY = {"debug": 1, "info": 1, "warning": 3, "error": 4, "fatal": 6}
FINDING_SEVERITY = {"info": 1, "warning": 3, "error": 4, "critical": 5}
_FAILED_LEVELS = ("error", "fatal")


def encode(record: Record) -> dict:
    """The OCSF event for ``record`` (a plain dict; serialize with sorted keys)."""
    doc = _event(record) if record.kind == "event" else _finding(record)
    return _prune(doc)


def type_uid(class_uid: int, activity_id: int) -> int:
    """OCSF's ``type_uid``.

    >>> type_uid(2004, 1)
    200401
    """
    return class_uid * 100 + activity_id


def _base(record: Record, classes: tuple[int, int, int], severity_id: int) -> dict:
    class_uid, category_uid, activity_id = classes
    return {
        "class_uid": class_uid,
        "category_uid": category_uid,
        "activity_id": activity_id,
        "type_uid": type_uid(class_uid, activity_id),
        "severity_id": severity_id,
        "time": epoch_ms(record.time),
        "timezone_offset": record.offset if record.time_source in ("log", "option") else None,
        "metadata": {
            "product": {"name": PRODUCT, "vendor_name": VENDOR, "version": record.version},
            "version": SCHEMA_VERSION,
            "uid": record.id,
        },
    }


def _event(record: Record) -> dict:
    d = record.data
    failed = bool(d.get("hresult")) or d.get("level") in _FAILED_LEVELS
    doc = _base(record, APPLICATION_ERROR if failed else BASE_EVENT, LEVEL_SEVERITY.get(d.get("level"), 1))
    doc["metadata"].update(
        {
            "log_name": d.get("format"),
            "log_provider": d.get("component"),
            "log_source": d.get("source"),
            "original_time": d.get("timestamp_text"),
            "log_level": d.get("level"),
        }
    )
    doc.update(
        {
            "message": d.get("message"),
            "raw_data": d.get("raw"),
            "status_id": 2 if failed else None,  # Failure
            "status_code": d.get("hresult"),
            "status_detail": record.hresult_name,
            "unmapped": {
                "umlogs": {
                    "host": d.get("host"),
                    "line_no": d.get("line_no"),
                    "pid": d.get("pid"),
                    "tid": d.get("tid"),
                    "hresults": list(d.get("hresults") or ()),
                    "kbs": list(d.get("kbs") or ()),
                    "update_ids": list(d.get("update_ids") or ()),
                    "operation": d.get("operation"),
                    "operation_phase": d.get("operation_phase"),
                    "exit_code": d.get("exit_code"),
                    "exception_chain": [dict(c) for c in d.get("exception_chain") or ()],
                    "attrs": dict(d.get("attrs") or ()),
                    "time_source": record.time_source,
                }
            },
        }
    )
    return doc


def _finding(record: Record) -> dict:
    d = record.data
    doc = _base(record, DETECTION_FINDING, FINDING_SEVERITY.get(d.get("severity"), 1))
    first, last = utc_of(d.get("first_seen"), record), utc_of(d.get("last_seen"), record)
    hosts = list(d.get("hosts") or ())
    doc.update(
        {
            "message": d["title"] + (f": {d['detail']}" if d.get("detail") else ""),
            "status_id": 1,  # New
            "count": d.get("count"),
            "status_code": d.get("hresult"),
            "status_detail": record.hresult_name,
            "is_alert": d.get("severity") in ("error", "critical"),
            "finding_info": {
                "uid": record.id,
                "title": d["title"],
                "desc": d.get("cause"),
                "types": [d["scenario"]] if d.get("scenario") else None,
                "src_url": d.get("reference"),
                "first_seen_time": epoch_ms(first) if first else None,
                "last_seen_time": epoch_ms(last) if last else None,
                "analytic": {"uid": d["rule_id"], "name": d["title"], "type_id": 1, "category": d.get("scenario")},
            },
            "remediation": {"desc": d.get("resolution"), "references": [d["reference"]] if d.get("reference") else None},
            "device": {"hostname": hosts[0], "type_id": 0} if len(hosts) == 1 else None,
            "unmapped": {
                "umlogs": {
                    "hosts": hosts,
                    "sources": list(d.get("sources") or ()),
                    "severity": d.get("severity"),
                    "evidence": [_evidence(e) for e in d.get("evidence") or ()],
                    "time_source": record.time_source,
                }
            },
        }
    )
    return doc


def _evidence(item) -> dict:
    values = dict(item) if isinstance(item, Mapping) else dict(zip(("source", "line_no", "text", "host"), item))
    return {k: v for k, v in values.items() if v is not None}


def _prune(value):
    """Drop ``None``, empty lists and empty objects, recursively (OCSF omits absent attributes)."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value
