"""A grammar's line rules compiled into one regular expression, for matching whole chunks of lines
at once (in DuckDB, whose RE2 reads the same syntax as Python's ``re`` here).

The regular expression is built from Lark's own rules and terminal definitions, never written by
hand: every expansion of ``start`` that consists of terminals only becomes one branch, with a named
group per kept terminal (named ``<rule>__<TERMINAL>__<n>``). Expansions that need more than a regular
expression (a terminal with a lookahead, which RE2 lacks) are left to the Lark parser: :attr:`guard`
matches the start of such lines, so the fast path never takes a line Lark would read differently.
A differential test (tests/parsers/test_fastpath.py) proves both give the same events.

>>> lr = line_regex("windows_update")
>>> import re
>>> m = re.fullmatch(lr.pattern, "2023/05/22 08:10:31.7433169 2944  3952  Handler         * START *   CBS  Install")
>>> m["etl__COMPONENT__0"], m["etl__MESSAGE__0"], m["classic__PID__0"]
('Handler', '* START *   CBS  Install', None)
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lark import Lark
from lark.grammar import NonTerminal, Terminal

from umlogs.parsers.grammar import parser

_LOOKAROUND = re.compile(r"\(\?(?:=|!|<=|<!)")


@dataclass(frozen=True, slots=True)
class LineRegex:
    """The compiled line rules of a grammar."""

    pattern: str
    """Anchored at both ends; named groups ``<rule>__<TERMINAL>__<n>``."""
    groups: tuple[str, ...]
    """The group names, in order."""
    guard: str | None
    """Matches the start of lines the fast path must leave to Lark, or ``None``."""
    guard_literal: str = ""
    """Text every line the guard matches contains (the literal start of the lookaround terminal), a
    cheap test before the guard's regex."""


@dataclass
class _Node:
    """A trie over the terminal sequences of ``start``: shared prefixes become one regex."""

    children: dict
    ends: bool = False


@functools.cache
def line_regex(grammar: str) -> LineRegex:
    """Compile the flat expansions of ``grammar``'s ``start`` rule."""
    lark = parser(grammar)
    root, guards = _Node({}), []
    for sequence in _expansions(lark, "start", ()):
        if any(_LOOKAROUND.search(lark.get_terminal(name).pattern.to_regexp()) for _, name, _ in sequence):
            guards.append(_guard(lark, sequence))
            continue
        node = root
        for step in sequence:
            node = node.children.setdefault(step, _Node({}))
        node.ends = True
    groups: list[str] = []
    body = _emit(lark, root, groups)
    guard = "^(?:" + "|".join(dict.fromkeys(g for g, _ in guards)) + ")" if guards else None
    literals = {literal for _, literal in guards}
    return LineRegex(pattern=f"^{body}$", groups=tuple(groups), guard=guard, guard_literal=literals.pop() if len(literals) == 1 else "")


def _expansions(lark: Lark, rule: str, seen: tuple[str, ...]) -> list[list[tuple[str, str, int]]]:
    """Every terminal sequence ``rule`` expands to, each terminal tagged (rule, name, occurrence)."""
    if rule in seen:
        raise ValueError(f"rule {rule!r} is recursive: not a flat line rule")
    out: list[list[tuple[str, str, int]]] = []
    for r in (r for r in lark.rules if r.origin.name == rule):
        partial: list[list[tuple[str, str, int]]] = [[]]
        counts: dict[str, int] = {}
        for symbol in r.expansion:
            if isinstance(symbol, Terminal):
                n = counts.get(symbol.name, 0)
                counts[symbol.name] = n + 1
                partial = [p + [(rule, symbol.name, n)] for p in partial]
            elif isinstance(symbol, NonTerminal):
                subs = _expansions(lark, symbol.name, (*seen, rule))
                partial = [p + s for p in partial for s in subs]
        out.extend(partial)
    return out


def _terminal(lark: Lark, name: str) -> str:
    return lark.get_terminal(name).pattern.to_regexp()


def _emit(lark: Lark, node: _Node, groups: list[str]) -> str:
    branches = []
    for (rule, name, n), child in node.children.items():
        regex = _terminal(lark, name)
        if name.startswith("_"):
            piece = f"(?:{regex})"
        else:
            group = f"{rule}__{name}__{n}"
            groups.append(group)
            piece = f"(?P<{group}>{regex})"
        branches.append(piece + _emit(lark, child, groups))
    if not branches:
        return ""
    alternatives = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{alternatives})?" if node.ends else alternatives


def _guard(lark: Lark, sequence: list[tuple[str, str, int]]) -> tuple[str, str]:
    """The prefix of ``sequence`` up to its first lookaround terminal, that terminal consuming what
    its lookahead only peeks at; and the literal text that terminal starts with."""
    parts = []
    for _, name, _ in sequence:
        regex = _terminal(lark, name)
        if lookaround := _LOOKAROUND.search(regex):
            parts.append(re.sub(r"\(\?=", "(?:", regex))
            head = regex[: lookaround.start()]
            return "".join(parts), head if re.escape(head) == head else ""
        parts.append(f"(?:{regex})")
    return "".join(parts), ""
