"""What a free-text message carries: HRESULTs, KB numbers, update ids, caller ids, URLs and
operation banners. Every pattern is a terminal of ``grammars/message.lark`` (defined, with examples,
in ``grammars/common.lark``), shared by all formats.

>>> c = carried("* END * Finding updates CallerId = Update;ScanForUpdates, Exit code = 0x8024402C")
>>> c.hresults, c.operation, c.operation_phase, c.exit_code, c.caller_id
(('0x8024402C',), 'finding', 'end', '0x8024402C', 'Update;ScanForUpdates')
>>> carried("+++++++++++  PT: Synchronizing server updates  +++++++++++").operation
'finding'
>>> carried("Flags: 0X80010010 (cV = oE1)").hresults
()
>>> carried("**  END  **  Service: Service exit [Exit code = 0x240001]").success_codes
('0x00240001',)
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from umlogs.parsers.grammar import terminal_regex

_GRAMMAR = "message"

# Operation words in banner text, first match wins: "Finding updates", "COMAPI: Search", "CBS  Install".
_OPERATIONS = (
    ("finding", ("finding", "search", "scan", "detect", "sync")),
    ("downloading", ("download",)),
    ("installing", ("install", "commit")),
    ("uninstalling", ("uninstall",)),
    ("reporting", ("report",)),
    ("service", ("service",)),
)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_FIRST_WORD = re.compile(r"[ \t]*([^ \t]+)")


@dataclass(frozen=True, slots=True)
class Carried:
    """The facts found in one message."""

    hresults: tuple[str, ...] = ()
    success_codes: tuple[str, ...] = ()
    kbs: tuple[str, ...] = ()
    update_ids: tuple[str, ...] = ()
    guids: tuple[str, ...] = ()
    caller_id: str | None = None
    urls: tuple[str, ...] = ()
    operation: str | None = None
    operation_phase: str | None = None
    exit_code: str | None = None


def normalize_code(digits: str) -> str:
    """``0x`` + 8 upper-case hex digits.

    >>> normalize_code("240001")
    '0x00240001'
    """
    return "0x" + digits.upper().rjust(8, "0")


def is_failure(code: str) -> bool:
    """True when the severity bit of a normalized code is set.

    >>> is_failure("0x8024402C"), is_failure("0x00240001")
    (True, False)
    """
    return int(code[2:3], 16) >= 8


def hresult_codes(text: str) -> list[str]:
    """Every HRESULT written in ``text``, normalized, in order, repeats kept.

    >>> hresult_codes("hr = 80072ee2; registry key 0x80000002; PTError: 0x80072EE2")
    ['0x80072EE2', '0x80072EE2']
    """
    codes = []
    for keyed_hex, keyed_bare, context, bare in terminal_regex(_GRAMMAR, "HRESULT").findall(text):
        if keyed_hex or keyed_bare:
            codes.append(normalize_code(keyed_hex or keyed_bare))
        elif not context:
            codes.append(normalize_code(bare))
    return codes


def carried(message: str) -> Carried:
    """Extract everything :class:`Carried` describes from one message."""
    codes = hresult_codes(message)
    update_ids = [f"{g.upper()}.{rev}" for g, rev in terminal_regex(_GRAMMAR, "REVISED_GUID").findall(message)]
    caller = terminal_regex(_GRAMMAR, "CALLER").search(message)
    operation = phase = exit_code = None
    banner = terminal_regex(_GRAMMAR, "BANNER").match(message)
    titled = None if banner else terminal_regex(_GRAMMAR, "TITLE_BANNER").match(message)
    if banner:
        phase = banner.group(2).lower()
        operation = _operation(banner.group(3))
        exit_code = _exit_code(banner.group(3))
    elif titled:
        operation = _operation(titled.group(1))
    return Carried(
        hresults=_unique(c for c in codes if is_failure(c)),
        success_codes=_unique(c for c in codes if not is_failure(c)),
        kbs=_unique("KB" + kb for kb in terminal_regex(_GRAMMAR, "KB").findall(message)),
        update_ids=_unique(update_ids),
        guids=_unique(g.upper() for g in terminal_regex(_GRAMMAR, "ANY_GUID").findall(message)),
        caller_id=(caller.group(1) or None) if caller else None,
        urls=_unique(terminal_regex(_GRAMMAR, "URL").findall(message)),
        operation=operation,
        operation_phase=phase,
        exit_code=exit_code,
    )


def _operation(text: str) -> str | None:
    """The operation a banner names; lower-casing is ASCII only, as in :func:`sql_carried`."""
    lowered = text.translate(_ASCII_LOWER)
    for name, words in _OPERATIONS:
        if any(w in lowered for w in words):
            return name
    first = _FIRST_WORD.match(lowered)
    return (first.group(1).rstrip(":") or None) if first else None


def _exit_code(text: str) -> str | None:
    for m in terminal_regex(_GRAMMAR, "HRESULT").finditer(text):
        if m.group(0)[:4].lower() == "exit":
            return normalize_code(m.group(1) or m.group(2))
    return None


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --- The same extraction as DuckDB SQL, for the fast path --------------------------------------


def sql_carried(msg: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """DuckDB expressions computing each field of :class:`Carried` from the column ``msg``, with the
    same terminals and the same rules as :func:`carried` (tests/parsers/test_fastpath.py proves them
    equal). Three stages, so each regular expression runs once per message and no list is built
    twice: the raw matches (columns ``_m_*`` over ``msg``), the lists made of them (``_l_*``), and
    the fields. The patterns are grammar text, never log text.
    """
    hr = sql_literal(terminal_regex(_GRAMMAR, "HRESULT").pattern)
    banner = sql_literal(terminal_regex(_GRAMMAR, "BANNER").pattern)
    titled = sql_literal(terminal_regex(_GRAMMAR, "TITLE_BANNER").pattern)
    # Each scan runs only where a necessary part of its terminal occurs (a cheap test).
    raw = {
        "_m_hr": _when(f"regexp_matches({msg}, '0[xX]|[0-9A-Fa-f]{{8}}')", f"regexp_extract_all({msg}, {hr}, 0)"),
        "_m_kb": _when(f"contains({msg}, 'KB')", _extract_all("KB", msg, 1)),
        "_m_revised": _when(f"contains({msg}, '-')", _extract_all("REVISED_GUID", msg, 0)),
        "_m_guid": _when(f"contains({msg}, '-')", _extract_all("ANY_GUID", msg, 1)),
        "_m_url": _when(f"contains({msg}, '://')", _extract_all("URL", msg, 0)),
        "_m_caller": f"(CASE WHEN regexp_matches({msg}, 'C(?:all|li)e[rn]t?I[Dd]') THEN regexp_extract({msg}, {sql_literal(terminal_regex(_GRAMMAR, 'CALLER').pattern)}, 1) ELSE '' END)",
        "_m_banner": f"regexp_extract({msg}, {banner}, ['mark', 'phase', 'text'])",
        "_m_is_banner": f"regexp_matches({msg}, {banner})",
        "_m_titled": f"(CASE WHEN contains({msg}, '+++') AND regexp_matches({msg}, {titled}) THEN regexp_extract({msg}, {titled}, 1) END)",
    }
    # A match is one of the HRESULT terminal's alternatives: keyed (the code is its last hex digits),
    # a bare 0x code, or a bare code after a mask or handle word (skipped).
    codes = (
        "list_transform(list_filter(_m_hr, lambda m: NOT regexp_matches(m, '^(?:[Ff]lags|[Kk]ey|[Tt]ype|[Mm]ask|[Hh]andle)')), "
        f"lambda m: {sql_normalize_code(_KEYED_DIGITS)})"
    )
    failure = sql_is_failure("x")
    operation_text = "(CASE WHEN _m_is_banner THEN _m_banner.text ELSE _m_titled END)"
    lists = {
        "_l_codes": f"(CASE WHEN len(_m_hr) = 0 THEN []::VARCHAR[] ELSE {codes} END)",
        "_l_kbs": "list_transform(_m_kb, lambda x: 'KB' || x)",
        # A REVISED_GUID match is an optional brace, 36 characters of GUID, an optional brace, a dot
        # and the revision: the GUID and the revision are read back from those positions.
        "_l_update_ids": "list_transform(_m_revised, lambda m: upper(substr(m, 1 + CAST(starts_with(m, '{') AS INTEGER), 36)) || '.' || regexp_extract(m, '[0-9]+$', 0))",
        "_l_guids": "list_transform(_m_guid, lambda x: upper(x))",
        # The banner's text, lower-cased once for the operation's word tests.
        "_l_operation_text": _sql_ascii_lower(operation_text),
    }
    fields = {
        "hresults": _sql_unique(f"list_filter(_l_codes, lambda x: {failure})"),
        "success_codes": _sql_unique(f"list_filter(_l_codes, lambda x: NOT ({failure}))"),
        "kbs": _sql_unique("_l_kbs"),
        "update_ids": _sql_unique("_l_update_ids"),
        "guids": _sql_unique("_l_guids"),
        "caller_id": "NULLIF(_m_caller, '')",
        "urls": _sql_unique("_m_url"),
        "operation": _sql_operation("_l_operation_text"),
        "operation_phase": f"(CASE WHEN _m_is_banner THEN {_sql_ascii_lower('_m_banner.phase')} END)",
        "exit_code": f"(CASE WHEN _m_is_banner THEN {_sql_exit_code('_m_banner.text')} END)",
    }
    return raw, lists, fields


_KEYED_DIGITS = "right(regexp_extract(m, '[0-9A-Fa-f]+$', 0), 8)"


def _when(condition: str, scan: str) -> str:
    return f"(CASE WHEN {condition} THEN {scan} ELSE [] END)"


def _extract_all(terminal: str, msg: str, group: int) -> str:
    return f"regexp_extract_all({msg}, {sql_literal(terminal_regex(_GRAMMAR, terminal).pattern)}, {group})"


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (for DuckDB).

    >>> sql_literal("it's")
    "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def sql_normalize_code(digits: str) -> str:
    """:func:`normalize_code` in DuckDB, for ``digits`` of at most 8 hex digits (``lpad`` cuts longer ones)."""
    return f"('0x' || upper(lpad({digits}, 8, '0')))"


def sql_is_failure(code: str) -> str:
    """:func:`is_failure` in DuckDB, for a code :func:`sql_normalize_code` made (upper case)."""
    return f"(substr({code}, 3, 1) IN ('8', '9', 'A', 'B', 'C', 'D', 'E', 'F'))"


def _sql_unique(values: str) -> str:
    """Repeats removed, first occurrences kept in order (``list_distinct`` does not keep order).
    ``values`` must be a column: it is read once per element."""
    return f"(CASE WHEN len({values}) < 2 THEN {values} ELSE list_filter({values}, lambda x, i: list_position({values}, x) = i) END)"


def _sql_ascii_lower(text: str) -> str:
    return f"translate({text}, {sql_literal(string.ascii_uppercase)}, {sql_literal(string.ascii_lowercase)})"


def _sql_operation(lowered: str) -> str:
    """:func:`_operation` of a banner text already lower-cased (ASCII only), as :func:`_operation` does."""
    cases = " ".join(
        f"WHEN {' OR '.join(f'contains({lowered}, {sql_literal(w)})' for w in words)} THEN {sql_literal(name)}"
        for name, words in _OPERATIONS
    )
    first = f"rtrim(regexp_extract({lowered}, {sql_literal(_FIRST_WORD.pattern)}, 1), ':')"
    return f"(CASE WHEN {lowered} IS NULL THEN NULL {cases} ELSE NULLIF({first}, '') END)"


def _sql_exit_code(text: str) -> str:
    hr = sql_literal(terminal_regex(_GRAMMAR, "HRESULT").pattern)
    whole, hexa, bare = (f"regexp_extract_all({text}, {hr}, {n})" for n in (0, 1, 2))
    position = f"list_position(list_transform({whole}, lambda m: {_sql_ascii_lower('left(m, 4)')} = 'exit'), true)"
    return f"(CASE WHEN {position} > 0 THEN {sql_normalize_code(f'coalesce({hexa}[{position}], {bare}[{position}])')} END)"
