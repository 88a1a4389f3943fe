"""Where grammars live, and how umlogs loads them: the one place that knows the path.

>>> parser("windows_update").options.parser
'lalr'
>>> terminal_regex("message", "KB").pattern
'\\\\bKB ?([0-9]{6,8})\\\\b'
"""

from __future__ import annotations

import functools
import re
from lark import Lark, Transformer


@functools.cache
def parser(name: str, transformer: Transformer | None = None) -> Lark:
    """The LALR parser for ``grammars/<name>.lark`` (compiled once per process, cached on disk).
    With ``transformer``, a parser that applies it as it reduces each rule: the same result as
    ``transformer.transform(parser(name).parse(text))`` without building the tree.

    >>> from lark import Transformer
    >>> class Count(Transformer):
    ...     def start(self, children):
    ...         return len(children)
    >>> line = "2018-10-02\t11:21:58:874\t 408\t1224\tPT\tWARNING: PTError"
    >>> parser("windows_update", Count()).parse(line) == Count().transform(parser("windows_update").parse(line))
    True
    """
    return Lark.open_from_package(
        "umlogs.grammars", f"{name}.lark", ("",), parser="lalr", cache=True, maybe_placeholders=True,
        transformer=transformer,
    )  # fmt: skip


@functools.cache
def terminal_regex(grammar: str, terminal: str) -> re.Pattern[str]:
    """A terminal of a grammar as a compiled regular expression, for searching inside text.

    ``re.ASCII``: ``\\b`` and character classes mean what they mean to DuckDB's RE2, which runs the
    same terminals on the fast path.
    """
    return re.compile(parser(grammar).get_terminal(terminal).pattern.to_regexp(), re.ASCII)

