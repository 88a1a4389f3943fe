"""``umlogs explain``: one HRESULT decoded, or a pasted error message understood.

A single token is read as an HRESULT (``0x8024402C``, ``8024402c``, ``-2145107924``,
``2149859372``); anything longer is error text for the ``portal_exception`` parser.

>>> r = explain("8024402c")
>>> r["kind"], r["code"], r["name"], "UM1001" in r["rules"]
('hresult', '0x8024402C', 'WU_E_PT_WINHTTP_NAME_NOT_RESOLVED', True)
>>> explain("0xZZZ")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
umlogs.pipeline.explain.NotACode: '0xZZZ' is not an HRESULT (expected a form such as 0x8024402C, 8024402c or -2145107924)
"""

from __future__ import annotations

from umlogs.pipeline import hresult


class NotACode(ValueError):
    """A single token that is not an HRESULT."""


def explain(text: str) -> dict:
    """A dict describing ``text``: ``kind`` is ``hresult`` or ``text``."""
    stripped = text.strip()
    if stripped and len(stripped.split()) == 1 and len(stripped) <= 24:
        try:
            code = hresult.normalize(stripped)
        except hresult.HResultError as error:
            raise NotACode(
                f"{stripped!r} is not an HRESULT (expected a form such as 0x8024402C, 8024402c or -2145107924)"
            ) from error
        return {"kind": "hresult", **hresult.explain(code), "rules": _rules_naming(code)}
    from umlogs.pipeline.explain_text import explain_text

    return {"kind": "text", **explain_text(stripped)}


def as_text(result: dict) -> str:
    """The human-readable form of :func:`explain`'s result."""
    if result["kind"] != "hresult":
        from umlogs.pipeline.explain_text import as_text as text_as_text

        return text_as_text(result)
    lines = [f"{result['code']}  {result['name'] or '(no symbolic name known)'}"]
    lines.append(f"  component: {result['component'] or 'unknown'}")
    lines.append(f"  meaning:   {result['meaning']}")
    decoding = f"{result['severity']}, facility {result['facility']} ({result['facility_name'] or 'unknown'}), code {result['code_value']}"
    if result.get("win32") is not None:
        decoding += f", Win32 error {result['win32']} {result['win32_name'] or ''}".rstrip()
    if result.get("http_status") is not None:
        decoding += f", HTTP status {result['http_status']}"
    lines.append(f"  decoding:  {decoding}")
    for title, key in (("likely causes", "causes"), ("what to do", "actions")):
        if result.get(key):
            lines.append(f"  {title}:")
            lines += [f"    - {item}" for item in result[key]]
    if result.get("scenarios"):
        lines.append(f"  scenarios: {', '.join(result['scenarios'])}")
    if result.get("rules"):
        lines.append(f"  rules:     {', '.join(result['rules'])}")
    return "\n".join(lines)


def _rules_naming(code: str) -> list[str]:
    from umlogs.pipeline.rules import load_rules

    return [r.id for r in load_rules() if f"'{code}'" in r.sql]
