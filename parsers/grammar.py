"""Where grammars live, and how umlogs loads them: the one place that knows the path.

>>> parser("windows_update").options.parser
'lalr'
>>> terminal_regex("message", "KB").pattern
'\\\\bKB ?([0-9]{6,8})\\\\b'
"""

from __future__ import annotations

import functools
import re
from lark import Lark


@functools.cache
def parser(name: str) -> Lark:
    """The LALR parser for ``grammars/<name>.lark`` (compiled once per process, cached on disk)."""
    return Lark.open_from_package(
        "umlogs.grammars", f"{name}.lark", ("",), parser="lalr", cache=True, maybe_placeholders=True
    )


@functools.cache
def terminal_regex(grammar: str, terminal: str) -> re.Pattern[str]:
    """A terminal of a grammar as a compiled regular expression, for searching inside text.

    ``re.ASCII``: ``\\b`` and character classes mean what they mean to DuckDB's RE2, which runs the
    same terminals on the fast path.
    """
    return re.compile(parser(grammar).get_terminal(terminal).pattern.to_regexp(), re.ASCII)

