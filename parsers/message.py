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
    lowered = text.lower()
    for name, words in _OPERATIONS:
        if any(w in lowered for w in words):
            return name
    words = lowered.split()
    return words[0].rstrip(":") if words else None


def _exit_code(text: str) -> str | None:
    for m in terminal_regex(_GRAMMAR, "HRESULT").finditer(text):
        if m.group(0)[:4].lower() == "exit":
            return normalize_code(m.group(1) or m.group(2))
    return None


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
