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
>>> m["etl__COMPONENT__0"], m["etl__ETL_MESSAGE__0"], m["classic__PID__0"]
('Handler', '* START *   CBS  Install', None)

For DuckDB the same rules also come as :attr:`LineRegex.branches`: one regex per alternative of
``start``, each in passes that capture at most four groups. RE2 extracts groups of such a regex
with its one-pass matcher (no backtracking state) when the grammar's terminals leave no choice at
any character, several times faster than one regex with every group. Every pass but the last
stops after its last group (a prefix, so it reads only the start of the line); the last is
anchored at both ends, and decides whether the line matched.

>>> [[len(p.groups) for p in branch] for branch in lr.branches]
[[4, 3], [4, 3]]

A branch that ends with a terminal taking the rest of the line (a class of characters repeated,
as MESSAGE is) has RE2 stop before it: its last pass captures the line up to there (:data:`HEAD`),
and the rest of the line is the terminal's text when it holds none of the characters the class
leaves out (:class:`Rest`). RE2's one-pass matcher then reads only the start of the line, where it
read all of it to capture the message:

>>> lr.branches[0][-1].groups, lr.branches[0][-1].rest.group, lr.branches[1][-1].rest.first
(('_head', 'classic__COMPONENT__0', 'classic___MSG_SEP__0'), 'classic__MESSAGE__0', ' \\r\\n')

Lines the guard marks all hold the literal text its lookaround terminal starts with, a cheap test
before the guard's regex:

>>> lr.guard_literal
'REPORT EVENT: '
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lark import Lark
from lark.grammar import NonTerminal, Terminal

from umlogs.parsers.grammar import parser

_LOOKAROUND = re.compile(r"\(\?(?:=|!|<=|<!)")
# Text without regex metacharacters: it matches only itself.
_PLAIN = re.compile(r"[^\\.^$*+?{}\[\]|()]*")
# A lookahead group, when it holds no parentheses of its own (REPORT_PREFIX's does not).
_LOOKAHEAD = re.compile(r"\(\?=[^()]*\)")
# A terminal that is a negated class of plain characters, repeated (``[^\r\n]+``), or such a class
# for its first character and another, repeated, for the rest (``[^ \r\n][^\r\n]*``).
_ANY_BUT = re.compile(r"\[\^([^\]\\^-]+)\](?:([+*])|\[\^([^\]\\^-]+)\]\*)")
# The group of a branch's last pass that holds the line up to a :class:`Rest` terminal.
HEAD = "_head"


@dataclass(frozen=True, slots=True)
class Rest:
    """The terminal a branch ends with when it takes the rest of the line: its regex is a negated
    class of characters repeated (``[^\\r\\n]+``), maybe after another for its first character
    (``[^ \\r\\n][^\\r\\n]*``), and in every path of the branch it comes last, right after the
    terminal whose group is ``after``. The branch's last pass stops before it, capturing the line up
    to there as :data:`HEAD`. What follows is the terminal's text when ``after`` took part, it does
    not start with one of ``first`` and holds none of ``excluded`` (and is not empty, when
    ``required``); when ``after`` took no part, the line must end there. Any other line is not the
    branch's.

    That is the full regex's reading, as leftmost-first matching gives it: the pass's match is the
    first of the branch's ways to read the start of the line, and the terminal then takes any rest
    it can hold. A rest it cannot hold rejects the line, though a later way might have read it: the
    line goes to Lark, which reads it as the grammar says."""

    group: str
    after: str
    first: str
    excluded: str
    required: bool


@dataclass(frozen=True, slots=True)
class Pass:
    """A regex anchored at the line's start capturing some of a branch's groups (the other terminals
    uncaptured); a branch's last pass is anchored at its end too, or stops before its :class:`Rest`."""

    pattern: str
    groups: tuple[str, ...]
    rest: Rest | None = None


# RE2 matches with its one-pass engine only when at most this many groups are captured.
ONE_PASS_GROUPS = 4


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
    branches: tuple[tuple[Pass, ...], ...] = ()
    """The non-guarded rules again, a branch per alternative of ``start`` (a line matches at most
    one), each as passes of at most :data:`ONE_PASS_GROUPS` groups; the first group of each pass
    never matches empty, so a non-empty first group means the pass matched. Passes before the last
    are prefixes: only the last (anchored at both ends) tells whether the line is the branch's."""
    guarded: str | None = None
    """The expansions the guard stands for, without groups and with each lookahead dropped: on a
    line the guard matched, the lookahead holds, so a full match here is the grammar's own reading
    (the line's fields come from :attr:`pattern`, whose message terminal takes the same text)."""


@dataclass
class _Node:
    """A trie over the terminal sequences of ``start``: shared prefixes become one regex."""

    children: dict
    ends: bool = False


@functools.cache
def line_regex(grammar: str) -> LineRegex:
    """Compile the flat expansions of ``grammar``'s ``start`` rule."""
    lark = parser(grammar)
    root, guarded, guards, branches = _Node({}), _Node({}), [], []
    for alternative in (r for r in lark.rules if r.origin.name == "start"):
        branch = _Node({})
        for sequence in _expansions(lark, alternative, ()):
            if any(_LOOKAROUND.search(_terminal(lark, name)) for _, name, _ in sequence):
                guards.append(_guard(lark, sequence))
                _insert(guarded, sequence)
            else:
                _insert(root, sequence)
                _insert(branch, sequence)
        if branch.children:
            branches.append(_passes(lark, branch))
    groups: list[str] = []
    body = _emit(lark, root, groups)
    if not guards:
        return LineRegex(pattern=f"^{body}$", groups=tuple(groups), guard=None, branches=tuple(branches))
    literals = {literal for _, literal in guards}
    return LineRegex(
        pattern=f"^{body}$",
        groups=tuple(groups),
        guard="^(?:" + "|".join(dict.fromkeys(g for g, _ in guards)) + ")",
        guard_literal=literals.pop() if len(literals) == 1 else "",
        branches=tuple(branches),
        guarded="^" + _emit(lark, guarded, None) + "$",
    )


def _passes(lark: Lark, branch: _Node) -> tuple[Pass, ...]:
    names: list[str] = []
    _emit(lark, branch, names)
    rest, trimmed = _rest(lark, branch)
    if rest:  # the terminal before the rest is captured, the rest itself is not: HEAD tells where it starts
        names = [n for n in names if n != rest.group] + [n for n in (rest.after, HEAD) if n not in names]
    passes = []
    for start in range(0, len(names), ONE_PASS_GROUPS):
        kept = names[start : start + ONE_PASS_GROUPS]
        if kept[0] != HEAD and lark.get_terminal(kept[0].split("__")[1]).pattern.min_width == 0:
            raise ValueError(f"{kept[0]} may match empty: it cannot tell whether its pass matched")
        last = start + ONE_PASS_GROUPS >= len(names)
        if last and rest:
            body = _emit(lark, trimmed, [], set(kept) - {HEAD})
            groups = (HEAD, *(g for g in kept if g != HEAD))  # in the order the pattern opens them
            passes.append(Pass(pattern=f"^(?P<{HEAD}>{body})", groups=groups, rest=rest))
            break
        body = _emit(lark, branch, [], set(kept), until=None if last else kept[-1])
        passes.append(Pass(pattern="^" + body + ("$" if last else ""), groups=tuple(kept)))
    return tuple(passes)


def _rest(lark: Lark, branch: _Node) -> tuple[Rest | None, _Node]:
    """The :class:`Rest` that ``branch`` ends with, and the branch without it; ``(None, branch)``
    when the branch is not one path ending with such a terminal after one that cannot match empty."""
    steps, node, parent = [], branch, branch
    while len(node.children) == 1:
        ((step, child),) = node.children.items()
        steps.append(step)
        parent, node = node, child
    if node.children or len(steps) < 2:
        return None, branch
    (rule, name, n), (before_rule, before, k) = steps[-1], steps[-2]
    shape = _ANY_BUT.fullmatch(_terminal(lark, name))
    if not shape or lark.get_terminal(before).pattern.min_width == 0:
        return None, branch
    trimmed = copy = _Node({}, branch.ends)
    node = branch
    for step in steps[:-1]:  # the same path without the rest's terminal
        node = node.children[step]
        copy = copy.children.setdefault(step, _Node({}, node.ends))
    first, excluded = (shape[1], shape[3]) if shape[3] else ("", shape[1])
    rest = Rest(group=f"{rule}__{name}__{n}", after=f"{before_rule}__{before}__{k}", first=first, excluded=excluded,
                required=(shape[2] != "*") and not parent.ends)  # fmt: skip
    return rest, trimmed


def _insert(root: _Node, sequence: list[tuple[str, str, int]]) -> None:
    node = root
    for step in sequence:
        node = node.children.setdefault(step, _Node({}))
    node.ends = True


def _expansions(lark: Lark, rule, seen: tuple[str, ...]) -> list[list[tuple[str, str, int]]]:
    """Every terminal sequence ``rule`` (a rule name, or one alternative) expands to, each terminal
    tagged (rule, name, occurrence)."""
    name = rule if isinstance(rule, str) else rule.origin.name
    if name in seen:
        raise ValueError(f"rule {name!r} is recursive: not a flat line rule")
    out: list[list[tuple[str, str, int]]] = []
    for r in (r for r in lark.rules if r.origin.name == rule) if isinstance(rule, str) else [rule]:
        partial: list[list[tuple[str, str, int]]] = [[]]
        counts: dict[str, int] = {}
        for symbol in r.expansion:
            if isinstance(symbol, Terminal):
                n = counts.get(symbol.name, 0)
                counts[symbol.name] = n + 1
                partial = [p + [(name, symbol.name, n)] for p in partial]
            elif isinstance(symbol, NonTerminal):
                subs = _expansions(lark, symbol.name, (*seen, name))
                partial = [p + s for p in partial for s in subs]
        out.extend(partial)
    return out


def _terminal(lark: Lark, name: str) -> str:
    return lark.get_terminal(name).pattern.to_regexp()


def _emit(lark: Lark, node: _Node, groups: list[str] | None, capture: set[str] | None = None, until: str | None = None) -> str:
    """The trie below ``node`` as a regex with a named group per kept terminal (only those in
    ``capture``, when given), listed in ``groups``; with no groups at all, and lookaheads dropped,
    when ``groups`` is None; ending right after the group ``until``, when given (a prefix)."""
    branches = []
    for (rule, name, n), child in node.children.items():
        regex = _terminal(lark, name)
        group = f"{rule}__{name}__{n}"
        if groups is None:
            piece = "(?:" + _LOOKAHEAD.sub("", regex) + ")"
        elif name.startswith("_") and group not in (capture or ()):
            piece = f"(?:{regex})"
        else:
            groups.append(group)
            piece = f"(?P<{group}>{regex})" if capture is None or group in capture else f"(?:{regex})"
        branches.append(piece + ("" if group == until else _emit(lark, child, groups, capture, until)))
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
            return "".join(parts), head if _PLAIN.fullmatch(head) else ""
        parts.append(f"(?:{regex})")
    return "".join(parts), ""
