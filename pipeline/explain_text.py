"""``umlogs explain "<text>"`` for error text: what the ``portal_exception`` parser understood (the
exception chain, the HRESULTs with their catalog meaning, the Azure ids, the JSON and PowerShell
fields) and what the rules make of it.

>>> r = explain_text("Error details: Unable to register Automation Resource Provider for subscriptions:")
>>> [f["rule_id"] for f in r["findings"]], r["findings"][0]["scenario"]
(['UM3001'], 'rp-register')
>>> r = explain_text("System.Exception: boom (Exception from HRESULT: 0x80070422)")
>>> r["events"][0]["chain"], r["events"][0]["codes"][0]["name"]
([{'type': 'System.Exception', 'message': 'boom (Exception from HRESULT: 0x80070422)'}], 'ERROR_SERVICE_DISABLED')
>>> explain_text("   ")["events"]
[]
"""

from __future__ import annotations

from umlogs.parsers import portal_exception
from umlogs.parsers.event import Event

# Attribute names that are ids or hosts, shown together under "ids".
_ID_KEYS = ("subscription_id", "linked_subscription_id", "tenant_id", "resource_group", "automation_account",
            "automation_account_id", "runbook", "hybrid_worker_group", "workspace_id", "workspace", "action",
            "scope", "resource_id", "resource_type", "update_deployment", "vm", "hosts")  # fmt: skip
_PS_KEYS = ("cmdlet", "position", "category_info", "fully_qualified_error_id")


def explain_text(text: str) -> dict:
    """Parse ``text`` (one or more error strings) and classify it: ``{"events": [...], "findings": [...]}``.
    Each event lists its chain, codes, ids, JSON fields and PowerShell fields; findings are the
    rule matches, most severe first."""
    events = [e for e in portal_exception.parse(text.splitlines(), "<text>") if isinstance(e, Event)]
    return {"events": [_describe(e) for e in events], "findings": _findings(events)}


def as_text(result: dict) -> str:
    """The human-readable form of :func:`explain_text`'s result.

    >>> print(as_text(explain_text("Ingestion status = OverQuota")))  # doctest: +ELLIPSIS
    error string 1 (line 1): Ingestion status = OverQuota
    <BLANKLINE>
    UM3011 [error] The workspace stopped collecting data: its daily cap was reached (OverQuota)
      scenario:   nologs (https://...#nologs)
      cause:      ...
      resolution: ...
    """
    lines: list[str] = []
    for n, event in enumerate(result["events"], start=1):
        lines.append(f"error string {n} (line {event['line_no']}): {_cut(event['message'], 160)}")
        for depth, link in enumerate(event["chain"]):
            lines.append(f"  {'  ' * min(depth, 8)}{'└ ' if depth else ''}{link['type']}: {_cut(link['message'], 140)}")
        for code in event["codes"]:
            named = f" {code['name']}" if code.get("name") else ""
            meaning = f": {_cut(code['meaning'], 120)}" if code.get("meaning") else ""
            lines.append(f"  code {code['code']}{named}{meaning}")
        for key, value in {**event["ids"], **event["powershell"]}.items():
            lines.append(f"  {key}: {_cut(value, 160)}")
        for key, value in list(event["json"].items())[:20]:
            lines.append(f"  {key}: {_cut(value, 160)}")
    lines.append("")
    if not result["findings"]:
        lines.append("No rule matched; above is what the text was understood to say.")
    for f in result["findings"]:
        code = f" {f['hresult']}" if f.get("hresult") else ""
        lines.append(f"{f['rule_id']} [{f['severity']}]{code} {f['title']}")
        lines.append(f"  scenario:   {f['scenario']} ({f.get('reference_url') or f['reference']})")
        lines.append(f"  cause:      {f['cause']}")
        lines.append(f"  resolution: {f['resolution']}")
    return "\n".join(lines).rstrip()


def _describe(event: Event) -> dict:
    attrs = dict(event.attrs)
    names = attrs.get("hresult_name", "")
    return {
        "line_no": event.line_no,
        "line_count": event.line_count,
        "message": event.message,
        "chain": [{"type": t, "message": m} for t, m in event.exception_chain],
        "outer_type": attrs.get("outer_type"),
        "inner_type": attrs.get("inner_type"),
        "codes": [_code(c, names) for c in event.hresults],
        "ids": {k: attrs[k] for k in _ID_KEYS if k in attrs},
        "guids": list(event.guids),
        "json": {k: v for k, v in attrs.items() if k.startswith("json.")},
        "powershell": {k: attrs[k] for k in _PS_KEYS if k in attrs},
        "fields": {k[6:]: v for k, v in attrs.items() if k.startswith("field.")},
        "prefix": attrs.get("prefix"),
        "timestamp": event.timestamp.isoformat() if event.timestamp else None,
    }


def _code(code: str, names_in_text: str) -> dict:
    """A code with its catalog entry, when the HRESULT catalog is installed."""
    try:
        from umlogs.pipeline import hresult
    except ImportError:
        return {"code": code, "name": None, "meaning": None, "in_catalog": False}
    info = hresult.explain(code)
    return {"code": code, "name": info.get("name"), "meaning": info.get("meaning"),
            "component": info.get("component"), "in_catalog": info.get("in_catalog", False),
            "named_in_text": bool(info.get("name")) and info.get("name") in names_in_text.split(",")}  # fmt: skip


def _findings(events: list[Event]) -> list[dict]:
    if not events:
        return []
    from umlogs.pipeline.classify import classify_table, load_rules
    from umlogs.pipeline.store import events_table

    rules = {r.id: r for r in load_rules()}
    found = []
    for finding in classify_table(events_table(events), list(rules.values())):
        data = finding.to_dict()
        data["reference_url"] = rules[finding.rule_id].reference_url
        found.append(data)
    return found


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
