"""The classify stage: DuckDB runs every rule over the events, and the matches become findings.

Besides ``events`` and ``catalog``, rules may use the table ``failures``: one row per event and failure
HRESULT it carries, with ``outcome`` (the event states an operation's result: an exit code, a call
result, a failed ReportingEvents record, a FATAL line) and ``recovered`` (a later line of the same
source reports an operation that exited with 0x00000000). A rule may return a ``severity`` column to
grade its own matches; findings are then split by severity.

Rules run inside DuckDB over the Arrow/Parquet events, never row by row in Python. The events are
read once, only the columns the rules name (every column but ``raw`` when a rule selects ``*``), and
DuckDB scans them in place. ``events`` and ``failures`` also carry a ``message_id``: the table
``distinct_messages`` holds each distinct message once, and the rules' tests of the message text run
over it instead of over every event (see :mod:`umlogs.pipeline.rewrite`). All rules run as one
query. After loading, external access is switched off and the configuration locked, so a rule cannot
read or write files; log text is data in the ``events`` view, never SQL text.

>>> from umlogs.pipeline.store import EVENT_SCHEMA
>>> classify_table(EVENT_SCHEMA.empty_table(), load_rules())
[]
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from umlogs.parsers.message import sql_literal
from umlogs.pipeline.dataset import read_events
from umlogs.pipeline.hresult import catalog_table
from umlogs.pipeline.rewrite import TABLE, per_message, per_message_reading
from umlogs.pipeline.rules import SEVERITIES, Rule, RuleError, load_rules
from umlogs.pipeline.store import EVENT_SCHEMA

EVIDENCE_LINES = 3
# An event that states how an operation ended: "Exit code = 0x…", "Call error code = 0x…",
# "Install Call Result = 0x…", "resultMapped=…", a failed REPORT EVENT, a FATAL line.
_OUTCOME = r"(?i)(exit code|error code|call result|resultmapped|result) ?[=:] ?(0x)?[0-9a-f]"
_FAILURES = f"""
WITH coded AS (
    SELECT event_id, format, host, source, line_no, timestamp, level, message, message_id, operation,
           unnest(hresults) AS code,
           exit_code IS NOT NULL OR attrs['report_status'] = 'Failure' OR level = 'fatal'
               OR message_id IN (SELECT message_id FROM {TABLE} WHERE regexp_matches(message, '{_OUTCOME}')) AS outcome
    FROM events WHERE len(hresults) > 0
), succeeded AS (
    SELECT host, source, max(line_no) AS last_success FROM events
    WHERE list_contains(success_codes, '0x00000000') AND regexp_matches(message, '(?i)exit code = 0x0{{8}}')
    GROUP BY ALL
)
SELECT coded.*, coalesce(coded.line_no < succeeded.last_success, false) AS recovered
FROM coded LEFT JOIN succeeded
  ON coded.source = succeeded.source AND coded.host IS NOT DISTINCT FROM succeeded.host
"""
_EVIDENCE_TEXT = 300
# The columns the failures table and the findings read, whatever the rules name.
_ALWAYS_LOADED = {"event_id", "format", "host", "source", "line_no", "timestamp", "level", "message", "operation",
                  "hresults", "success_codes", "exit_code", "attrs"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Evidence:
    """One line that shows a finding."""

    source: str
    line_no: int
    text: str
    host: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found: one per rule and HRESULT (or one per rule, for rules without codes)."""

    rule_id: str
    title: str
    scenario: str
    severity: str
    hresult: str | None
    hresult_name: str | None
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    hosts: tuple[str, ...]
    sources: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    cause: str
    resolution: str
    reference: str
    detail: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON-ready values (times as ISO 8601 text)."""
        data = asdict(self)
        for key in ("first_seen", "last_seen"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def connect(events: pa.Table | object, rules: Sequence[Rule] | None = None) -> duckdb.DuckDBPyConnection:
    """A locked-down DuckDB connection with the tables ``events`` (loaded once from an Arrow table or
    dataset: the columns ``rules`` name, every column but ``raw`` without ``rules``, and
    ``message_id``), ``distinct_messages``, ``failures`` (see the module docstring) and ``catalog``.

    >>> con = connect(EVENT_SCHEMA.empty_table(), load_rules())
    >>> con.execute("SELECT count(*) FROM events JOIN distinct_messages USING (message_id)").fetchall()
    [(0,)]
    """
    con = duckdb.connect(config={"threads": os.cpu_count() or 1, "preserve_insertion_order": False})
    con.execute("SET enable_progress_bar = false")
    _load(con, events, _loaded_columns(rules))
    con.register("_catalog_arrow", catalog_table())
    con.execute("CREATE TABLE catalog AS SELECT * FROM _catalog_arrow")
    con.unregister("_catalog_arrow")
    con.execute(f"CREATE TABLE failures AS {_failures_sql(con)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _loaded_columns(rules: Sequence[Rule] | None) -> list[str]:
    reads = [compiled.reads for compiled in _compile(rules)] if rules is not None else [None]
    named = None if None in reads else set().union(*reads)
    return [f.name for f in EVENT_SCHEMA if f.name != "raw" and (named is None or f.name in named | _ALWAYS_LOADED)]


def _load(con: duckdb.DuckDBPyConnection, events: pa.Table | object, columns: list[str]) -> None:
    """The view ``events`` over Arrow tables DuckDB scans in place, one per format, each naming its
    format as a constant, so that a rule's ``format = '…'`` skips the other formats without reading
    them; and ``distinct_messages``: a message's id is its index among all distinct messages."""
    table = read_events(events, columns)
    messages = table["message"]
    if not pa.types.is_dictionary(messages.type):
        messages = pc.dictionary_encode(messages)
    messages = messages.unify_dictionaries()
    ids = pa.chunked_array([chunk.indices for chunk in messages.chunks], pa.int32())
    texts = messages.chunk(0).dictionary if messages.num_chunks else pa.array([], pa.string())
    table = table.set_column(table.schema.get_field_index("message"), "message", messages)
    table = table.append_column("message_id", ids)
    formats = sorted(set(pc.unique(table["format"]).to_pylist()))
    parts = []
    for n, name in enumerate(formats):
        part = table if len(formats) == 1 else table.filter(pc.equal(table["format"].cast(pa.string()), name))
        con.register(f"_events_{n}", part)
        parts.append(f"SELECT * REPLACE ({sql_literal(name)} AS format) FROM _events_{n}")
    if not parts:
        con.register("_events_0", table)
        parts.append("SELECT * FROM _events_0")
    con.execute("CREATE VIEW events AS " + " UNION ALL ".join(parts))
    con.register("_texts", pa.table({"message_id": pa.array(range(len(texts)), pa.int32()), "message": texts}))
    con.execute(f"""CREATE TABLE {TABLE} AS
        SELECT message_id, format, message FROM (SELECT DISTINCT message_id, format FROM events) JOIN _texts USING (message_id)""")
    con.unregister("_texts")


def check_rules(rules: Sequence[Rule]) -> None:
    """Compile every rule against an empty ``events`` view; raise :class:`RuleError` naming the file
    and the problem for SQL that does not compile or does not return ``event_id``."""
    _compile(rules)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """What classify needs of a rule: its SQL with the message tests per distinct message
    (:func:`per_message`), the columns it returns, and the event columns it reads (None: all)."""

    sql: str
    returns: tuple[str, ...]
    reads: frozenset[str] | None


# Each rule compiled once a process: ``umlogs tail`` classifies again on every poll, and a rule
# takes ~5 ms to compile.
_COMPILED: dict[Rule, _Compiled] = {}


def _compile(rules: Sequence[Rule]) -> list[_Compiled]:
    """``rules`` compiled (:data:`_COMPILED`), those new to this process against one connection of
    empty tables (the views' columns are the same whatever the events), closed when done; raises
    :class:`RuleError` for the first that does not compile."""
    new = [rule for rule in dict.fromkeys(rules) if rule not in _COMPILED]
    if new:
        con = connect(EVENT_SCHEMA.empty_table())
        try:
            for rule in new:
                sql = _statements(rule)
                rewritten, read = per_message_reading(con, sql)
                _COMPILED[rule] = _Compiled(rewritten, tuple(_columns(con, rule, sql)), None if read is None else frozenset(read))
        finally:
            con.close()
    return [_COMPILED[rule] for rule in rules]


# The ``failures`` table's query with its message tests per distinct message, once rewritten.
_failures_rewritten: str | None = None


def _failures_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The ``failures`` query rewritten by :func:`per_message` once a process, on the first
    connection that builds the table: the rewrite does not depend on the connection, and a
    connection of its own cost ~40 ms of every run's start."""
    global _failures_rewritten
    if _failures_rewritten is None:
        _failures_rewritten = per_message(con, _FAILURES)
    return _failures_rewritten


def classify_table(events: pa.Table | object, rules: Sequence[Rule]) -> list[Finding]:
    """Run ``rules`` over ``events``; findings ordered by severity, then count, then rule id."""
    con = connect(events, rules)
    findings = _findings(con, rules) if rules else []
    return sorted(findings, key=lambda f: (-_rank(f.severity), -f.count, f.rule_id, f.hresult or ""))


@contextlib.contextmanager
def hits_table(con: duckdb.DuckDBPyConnection, rules: Sequence[Rule]):
    """The temporary table ``hits`` for the duration of a block: a row per rule (its index in
    ``rules``) and distinct match, with ``event_id``, ``hresult``, ``detail`` and ``severity`` (the
    rule's own where its SQL returns none). One query lets DuckDB run the rules side by side;
    materialized, DuckDB knows how few the matches are when it joins them with ``events``."""
    hits = "\nUNION ALL\n".join(_hits(n, rule, compiled) for n, (rule, compiled) in enumerate(zip(rules, _compile(rules))))
    con.execute(f"CREATE OR REPLACE TEMP TABLE hits AS {hits}")
    yield
    con.execute("DROP TABLE hits")


def _hits(n: int, rule: Rule, compiled: _Compiled) -> str:
    columns = compiled.returns
    hresult = "CAST(hresult AS VARCHAR)" if "hresult" in columns else "CAST(NULL AS VARCHAR)"
    detail = "CAST(detail AS VARCHAR)" if "detail" in columns else "CAST(NULL AS VARCHAR)"
    severity = "CAST(severity AS VARCHAR)" if "severity" in columns else f"'{rule.severity}'"
    return f"""(SELECT DISTINCT {n} AS rule, CAST(event_id AS VARCHAR) AS event_id, {hresult} AS hresult,
                {detail} AS detail, {severity} AS severity
         FROM ({compiled.sql}))"""


def _columns(con: duckdb.DuckDBPyConnection, rule: Rule, sql: str) -> list[str]:
    """The columns ``rule``'s ``sql`` (its one statement, :func:`_statements`) returns on ``con``."""
    try:
        columns = con.sql(sql).columns
    except duckdb.Error as error:
        raise RuleError(f"{rule.path}: sql does not run: {str(error).splitlines()[0]}") from None
    if "event_id" not in columns:
        raise RuleError(f"{rule.path}: sql must return an event_id column (it returns {', '.join(columns)})")
    return columns


def _statements(rule: Rule) -> str:
    sql = rule.sql.strip().rstrip(";").strip()
    try:
        parsed = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise RuleError(f"{rule.path}: sql does not parse: {str(error).splitlines()[0]}") from None
    if len(parsed) != 1 or parsed[0].type != duckdb.StatementType.SELECT:
        raise RuleError(f"{rule.path}: sql must be exactly one SELECT statement")
    return sql


def _findings(con: duckdb.DuckDBPyConnection, rules: Sequence[Rule]) -> list[Finding]:
    query = f"""
        SELECT h.rule, h.hresult, h.severity, c.name, arg_min(h.detail, (e.source, e.line_no)), count(*),
               min(e.timestamp), max(e.timestamp),
               list_sort(list(DISTINCT e.host) FILTER (WHERE e.host IS NOT NULL)),
               list_sort(list(DISTINCT e.source)),
               arg_min((e.source, e.line_no, left(e.message, {_EVIDENCE_TEXT}), e.host), (e.source, e.line_no),
                       {EVIDENCE_LINES})
        FROM hits h JOIN events e USING (event_id) LEFT JOIN catalog c ON c.code = h.hresult
        GROUP BY h.rule, h.hresult, h.severity, c.name
    """
    with hits_table(con, rules):
        rows = con.execute(query).fetchall()
    bad = sorted((n, str(severity)) for n, _, severity, *_ in rows if severity not in SEVERITIES)
    if bad:
        rule = rules[bad[0][0]]
        found = sorted({severity for n, severity in bad if n == bad[0][0]})
        raise RuleError(f"{rule.path}: sql returned severity {found}, not one of {', '.join(SEVERITIES)}")
    return [
        Finding(
            rule_id=rules[n].id,
            title=rules[n].title,
            scenario=rules[n].scenario,
            severity=severity,
            hresult=code,
            hresult_name=name,
            count=count,
            first_seen=first,
            last_seen=last,
            hosts=tuple(hosts or ()),
            sources=tuple(sources or ()),
            evidence=tuple(Evidence(*_values(item)) for item in evidence),
            cause=rules[n].cause,
            resolution=rules[n].resolution,
            reference=rules[n].reference_url,
            detail=detail,
        )
        for n, code, severity, name, detail, count, first, last, hosts, sources, evidence in rows
    ]


def _values(item: dict | tuple) -> tuple:
    return tuple(item.values()) if isinstance(item, dict) else tuple(item)


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


__all__ = ["Evidence", "Finding", "check_rules", "classify_table", "connect", "load_rules", "RuleError"]
