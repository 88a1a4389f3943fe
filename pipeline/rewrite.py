"""Rule SQL, rewritten so that tests of the message text run once per distinct message, not per event.

Messages repeat heavily (the same line on every host, every day), so the classify stage keeps a table
``distinct_messages`` (``message_id``, ``format``, ``message``) beside ``events`` and ``failures``,
which carry each row's ``message_id``. :func:`per_message` finds, in a rule's ``WHERE`` clauses, every
condition that reads nothing but the ``message`` of ``events`` or ``failures`` and replaces it with a
lookup of the message ids for which it holds. A ``format`` the same ``WHERE`` requires narrows that
lookup to the messages of that format::

    WHERE format = 'windows_update' AND regexp_matches(message, '(?i)reboot')
    WHERE format = 'windows_update' AND events.message_id = ANY
        (SELECT message_id FROM distinct_messages WHERE format IN ('windows_update') AND regexp_matches(message, '(?i)reboot'))

Only conditions whose truth decides the ``WHERE`` directly (the clause itself and the terms of its
``AND``/``OR``) are replaced, where a ``NULL`` and ``false`` filter alike; a ``NOT`` is moved inside
with its operand. Whatever the rewrite cannot prove reads the same column is left as written.

The SQL goes through DuckDB's own parser (``json_serialize_sql``) and printer (``json_deserialize_sql``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

TABLE = "distinct_messages"
MESSAGE_TABLES = ("events", "failures")
_VOLATILE = {"random", "uuid", "gen_random_uuid", "uuidv4", "uuidv7", "nextval", "currval", "setseed"}
_UNSAFE_CLASSES = {"SUBQUERY", "LAMBDA", "STAR", "WINDOW", "PARAMETER", "LAMBDA_REF"}


def per_message(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` with its message conditions evaluated once per distinct message (see the module
    docstring); ``sql`` unchanged when it has none.

    >>> con = duckdb.connect()
    >>> print(per_message(con, "SELECT event_id FROM events e WHERE e.format = 'a' AND e.message ILIKE '%x%'"))
    SELECT event_id FROM events AS e WHERE ((e.format = 'a') AND (e.message_id = ANY(SELECT message_id FROM distinct_messages WHERE ((format IN ('a')) AND (message ~~* '%x%')))))
    >>> per_message(con, "SELECT event_id FROM events WHERE lower(message) = host")  # host is not the message
    'SELECT event_id FROM events WHERE lower(message) = host'
    """
    return _per_message(con, sql, _parse(con, sql))


def per_message_reading(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, set[str] | None]:
    """:func:`per_message` of ``sql`` and the columns it reads (:func:`columns_read`), from one
    parse: DuckDB's parser takes 1-3 ms a rule, and classify compiles some sixty.

    >>> rewritten, read = per_message_reading(duckdb.connect(), "SELECT event_id FROM events WHERE host = 'a'")
    >>> rewritten == "SELECT event_id FROM events WHERE host = 'a'", sorted(read)
    (True, ['event_id', 'host'])
    """
    tree = _parse(con, sql)
    read = _read(tree)  # before the rewrite, which changes the tree
    return _per_message(con, sql, tree), read


def _per_message(con: duckdb.DuckDBPyConnection, sql: str, tree: dict | None) -> str:
    if tree is None or not any(_visit(statement["node"], {}) for statement in tree["statements"]):
        return sql
    return con.execute("SELECT json_deserialize_sql(?)", [json.dumps(tree)]).fetchall()[0][0]


def columns_read(con: duckdb.DuckDBPyConnection, sqls: Iterable[str]) -> set[str] | None:
    """Every column name the queries mention, or None when one selects ``*`` or ``COLUMNS(...)``.

    >>> sorted(columns_read(duckdb.connect(), ["SELECT event_id FROM events WHERE kbs[1] = 'KB1'"]))
    ['event_id', 'kbs']
    """
    names: set[str] = set()
    for sql in sqls:
        read = _read(_parse(con, sql))
        if read is None:
            return None
        names |= read
    return names


def _read(tree: dict | None) -> set[str] | None:
    """The column names a parsed query mentions; None when it did not parse or selects ``*``."""
    if tree is None:
        return None
    names: set[str] = set()
    for node in _nodes(tree):
        if node.get("class") == "STAR":
            return None
        if node.get("class") == "COLUMN_REF":
            names.update(name.lower() for name in node["column_names"])
    return names


def _parse(con: duckdb.DuckDBPyConnection, sql: str) -> dict | None:
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    return None if tree.get("error") else tree


def _nodes(tree: object) -> Iterable[dict]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


@dataclass(frozen=True, slots=True)
class _Relation:
    """One item of a FROM clause: its name, whether it is the ``events``/``failures`` table, and its
    columns when they are known (None: unknown)."""

    name: str
    message_table: bool
    columns: frozenset[str] | None


def _visit(tree: object, ctes: dict[str, dict]) -> bool:
    """Rewrite every SELECT in ``tree``; True when something changed. ``ctes`` maps the names of
    the common table expressions in scope to their query nodes."""
    changed = False
    if isinstance(tree, dict):
        if "cte_map" in tree:
            ctes = {**ctes, **{item["key"].lower(): item["value"] for item in tree["cte_map"]["map"]}}
        if tree.get("type") == "SELECT_NODE" and tree.get("where_clause") and TABLE not in ctes:
            relations = list(_relations(tree["from_table"], ctes))
            tree["where_clause"], changed = _condition(tree["where_clause"], relations, {})
        for value in tree.values():
            changed |= _visit(value, ctes)
    elif isinstance(tree, list):
        for value in tree:
            changed |= _visit(value, ctes)
    return changed


def _relations(table: dict, ctes: dict[str, dict]) -> Iterable[_Relation]:
    kind = table["type"]
    if kind == "JOIN":
        yield from _relations(table["left"], ctes)
        yield from _relations(table["right"], ctes)
    elif kind == "BASE_TABLE":
        name = table["table_name"].lower()
        plain = not table["schema_name"] and not table["catalog_name"]
        if plain and name in ctes:
            cte = ctes[name]
            columns = frozenset(a.lower() for a in cte["aliases"]) or _output_columns(cte["query_node"])
            yield _Relation((table["alias"] or name).lower(), False, columns)
        else:  # columns renamed with an alias list (events AS e(a, b, …)) are not the table's
            renamed = bool(table.get("column_name_alias"))
            yield _Relation((table["alias"] or name).lower(), plain and name in MESSAGE_TABLES and not renamed, None)
    elif kind == "SUBQUERY":
        columns = None if table.get("column_name_alias") else _output_columns(table["subquery"]["node"])
        yield _Relation(table["alias"].lower(), False, columns)
    elif kind != "EMPTY":
        yield _Relation(table.get("alias", "").lower(), False, None)


def _output_columns(node: dict) -> frozenset[str] | None:
    while node["type"] == "SET_OPERATION_NODE":
        node = node["children"][0] if node.get("children") else node["left"]
    if node["type"] != "SELECT_NODE":
        return None
    names = set()
    for expr in node["select_list"]:
        if expr["class"] == "STAR":
            return None
        names.add((expr["alias"] or (expr["column_names"][-1] if expr["class"] == "COLUMN_REF" else "")).lower())
    return frozenset(names)


def _resolve(ref: dict, relations: list[_Relation], column: str) -> _Relation | None:
    """The events/failures relation that ``ref`` reads ``column`` of, or None."""
    names = [n.lower() for n in ref["column_names"]]
    if names[-1] != column:
        return None
    if len(names) == 2:
        found = [r for r in relations if r.name == names[0]]
        return found[0] if len(found) == 1 and found[0].message_table else None
    if len(names) == 1:
        tables = [r for r in relations if r.message_table]
        others_lack = all(r.columns is not None and column not in r.columns for r in relations if not r.message_table)
        return tables[0] if len(tables) == 1 and others_lack else None
    return None


def _condition(expr: dict, relations: list[_Relation], formats: dict[str, set[str]]) -> tuple[dict, bool]:
    """``expr`` (a WHERE clause, or a term of its AND/OR) rewritten; ``formats`` holds the formats each
    relation must have for the clause to hold."""
    relation = _message_only(expr, relations)
    if relation is not None:
        return _lookup(expr, relation, formats.get(relation.name)), True
    if expr["class"] != "CONJUNCTION":
        return expr, False
    if expr["type"] == "CONJUNCTION_AND":
        formats = {**formats}
        for child in expr["children"]:
            for name, allowed in _format_terms(child, relations):
                formats[name] = formats[name] & allowed if name in formats else allowed
        expr["children"] = _merge_message_terms(expr["children"], relations)
    changed = False
    for i, child in enumerate(expr["children"]):
        expr["children"][i], child_changed = _condition(child, relations, formats)
        changed |= child_changed
    return expr, changed


def _merge_message_terms(terms: list[dict], relations: list[_Relation]) -> list[dict]:
    """The terms of an AND, those that read only one relation's message joined into one AND term, so
    that they become one lookup instead of several."""
    merged: dict[str, list[dict]] = {}
    out = []
    for term in terms:
        relation = _message_only(term, relations)
        if relation is None:
            out.append(term)
        elif relation.name not in merged:
            merged[relation.name] = [term]
            out.append({"class": "CONJUNCTION", "type": "CONJUNCTION_AND", "alias": "", "children": merged[relation.name]})
        else:
            merged[relation.name].append(term)
    return [t["children"][0] if t["class"] == "CONJUNCTION" and len(t["children"]) == 1 else t for t in out]


def _message_only(expr: dict, relations: list[_Relation]) -> _Relation | None:
    """The one relation whose ``message`` is all that ``expr`` reads, or None."""
    found = set()
    for node in _nodes(expr):
        if node.get("class") in _UNSAFE_CLASSES or node.get("function_name", "").lower() in _VOLATILE:
            return None
        if node.get("class") == "FUNCTION" and (node["distinct"] or node["filter"] or node["order_bys"]["orders"]):
            return None
        if node.get("class") == "COLUMN_REF":
            relation = _resolve(node, relations, "message")
            if relation is None:
                return None
            found.add(relation)
    return found.pop() if len(found) == 1 else None


def _format_terms(expr: dict, relations: list[_Relation]) -> Iterable[tuple[str, set[str]]]:
    """``format = 'x'`` or ``format IN ('x', 'y')`` on an events/failures relation."""
    if expr["class"] == "COMPARISON" and expr["type"] == "COMPARE_EQUAL":
        operands = [expr["left"], expr["right"]]
    elif expr["class"] == "OPERATOR" and expr["type"] == "COMPARE_IN":
        operands = expr["children"]
    else:
        return
    refs = [o for o in operands if o["class"] == "COLUMN_REF"]
    constants = [o for o in operands if o["class"] == "CONSTANT" and o["literal"]["kind"] == "STRING"]
    if len(refs) == 1 and len(constants) == len(operands) - 1 and (operands[0] is refs[0] or len(operands) == 2):
        relation = _resolve(refs[0], relations, "format")
        if relation is not None:
            yield relation.name, {c["literal"]["text"] for c in constants}


def _lookup(expr: dict, relation: _Relation, formats: set[str] | None) -> dict:
    """``relation.message_id IN (SELECT message_id FROM distinct_messages WHERE [format IN ...] AND expr)``."""
    for node in _nodes(expr):
        if node.get("class") == "COLUMN_REF":
            node["column_names"] = ["message"]
    where = expr
    if formats is not None:
        where = {"class": "CONJUNCTION", "type": "CONJUNCTION_AND", "alias": "", "children": [
            {"class": "OPERATOR", "type": "COMPARE_IN", "alias": "", "children": [
                _column(["format"]), *({"class": "CONSTANT", "type": "VALUE_CONSTANT", "alias": "",
                                        "literal": {"kind": "STRING", "text": f}} for f in sorted(formats))]},
            expr]}  # fmt: skip
    select = {
        "type": "SELECT_NODE", "modifiers": [], "cte_map": {"map": []}, "select_list": [_column(["message_id"])],
        "from_table": {"type": "BASE_TABLE", "alias": "", "sample": None, "schema_name": "", "table_name": TABLE,
                       "column_name_alias": [], "catalog_name": "", "at_clause": None},
        "where_clause": where, "group_expressions": [], "group_sets": [], "aggregate_handling": "STANDARD_HANDLING",
        "having": None, "sample": None, "qualify": None,
    }  # fmt: skip
    return {
        "class": "SUBQUERY", "type": "SUBQUERY", "alias": "", "subquery_type": "ANY",
        "subquery": {"node": select, "named_param_map": []},
        "child": _column([relation.name, "message_id"]), "comparison_type": "COMPARE_EQUAL",
    }  # fmt: skip


def _column(names: list[str]) -> dict:
    return {"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": "", "column_names": names}
