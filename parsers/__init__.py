"""The format registry: one module per format, each with ``NAME``, ``DESCRIPTION``, ``sniff(head)``
and ``parse(lines, source, ...)``.

>>> detect(["2021/07/13 10:22:58.9553434 3696  8172  Shared          InitializeSus"]).NAME
'windows_update'
>>> detect(["hello"]) is None
True
"""

from __future__ import annotations

from types import ModuleType

from umlogs.parsers import portal_exception, update_worker, windows_update

PARSERS: tuple[ModuleType, ...] = (windows_update, update_worker, portal_exception)

# How many leading lines sniffing looks at.
HEAD_LINES = 20


def detect(head: list[str]) -> ModuleType | None:
    """The first parser whose ``sniff`` accepts the first lines of a file, or ``None``."""
    return next((p for p in PARSERS if p.sniff(head[:HEAD_LINES])), None)


def by_name(name: str) -> ModuleType:
    """The parser module called ``name``; ``KeyError`` lists the known names."""
    for p in PARSERS:
        if p.NAME == name:
            return p
    raise KeyError(f"unknown format {name!r} (known: {', '.join(p.NAME for p in PARSERS)})")
