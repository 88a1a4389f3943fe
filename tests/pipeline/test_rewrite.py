"""Rule SQL rewritten to test each distinct message once finds exactly what the SQL as written finds,
and leaves alone every message test it cannot prove reads the events' or failures' own message."""

from __future__ import annotations

import doctest

import pytest

from umlogs.parsers.event import Event
from umlogs.pipeline import rewrite
from umlogs.pipeline.classify import connect
from umlogs.pipeline.store import events_table


def event(n: int, format: str, message: str, **fields) -> Event:
    return Event(format=format, source=f"{format}.log", line_no=n, raw=message, message=message, **fields)


EVENTS = [
    event(1, "windows_update", "Download failed, n=3", level="error", hresults=("0x80240022",)),
    event(2, "windows_update", "Download failed, n=3", host="web01"),
    event(3, "windows_update", "Install ok, n=1", level="info"),
    event(4, "windows_update", "no number here", hresults=("0x80070005",)),
    event(5, "update_worker", "Download failed, n=3", attrs=(("kind", "worker"),)),
    event(6, "update_worker", "same text in two formats"),
    event(7, "windows_update", "same text in two formats", level="warning"),
    event(8, "portal_exception", "Access is DENIED"),
]


@pytest.fixture(scope="module")
def con():
    return connect(events_table(EVENTS))


def rows(con, sql: str) -> list:
    return sorted(con.execute(sql).fetchall())


REWRITTEN = [
    "SELECT event_id FROM events WHERE regexp_matches(message, 'fail')",
    "SELECT event_id FROM events WHERE NOT regexp_matches(message, 'fail')",
    # NULL for messages without a number: NOT keeps it NULL, so neither version selects them.
    "SELECT event_id FROM events WHERE NOT (TRY_CAST(regexp_extract(message, 'n=([0-9]+)', 1) AS INTEGER) > 2)",
    "SELECT event_id FROM events WHERE level = 'error' OR message ILIKE '%install%'",
    "SELECT event_id FROM events WHERE format = 'windows_update' AND (message ILIKE '%n=%' OR line_no = 4)",
    "SELECT event_id FROM events WHERE format IN ('update_worker') AND message = 'same text in two formats'",
    "SELECT e.event_id FROM events AS e WHERE e.format = 'windows_update' AND lower(e.message) LIKE '%failed%'",
    "SELECT f.event_id, f.code AS hresult FROM failures f WHERE regexp_matches(f.message, '(?i)download')",
    "SELECT event_id FROM events JOIN (SELECT event_id, code FROM failures) USING (event_id) WHERE message ILIKE '%num%'",
    "WITH hits AS (SELECT event_id FROM events WHERE message LIKE 'Download%') SELECT event_id FROM hits",
    "SELECT event_id FROM events WHERE message ILIKE '%n=%' UNION ALL SELECT event_id FROM failures WHERE message ILIKE '%n=%'",
]

UNCHANGED = [
    # the CTE's message is upper-cased text, not the events' message
    "WITH failures AS (SELECT event_id, upper(message) AS message FROM events) "
    "SELECT event_id FROM failures WHERE message LIKE '%FAIL%'",
    # the message is compared with another column
    "SELECT event_id FROM events WHERE contains(lower(message), lower(level))",
    # inside the subquery, an unqualified message could belong to catalog (its columns are not known)
    "SELECT event_id FROM events WHERE EXISTS (SELECT 1 FROM catalog WHERE message ILIKE '%denied%')",
    # a lambda parameter named message is not the column
    "SELECT event_id FROM events WHERE len(list_filter([format], lambda message: message = 'x')) = 0",
    # random() must stay per event
    "SELECT event_id FROM events WHERE length(message) + random() > 0",
    # renamed columns: this "message" is the event's level
    "SELECT event_id FROM events AS e(event_id, format, host, source, line_no, line_count, timestamp, "
    "timestamp_text, utc_offset, timestamp_utc, pid, tid, component, message) WHERE e.message = 'error'",
    "SELECT event_id FROM events JOIN (SELECT event_id, level FROM failures) AS f(event_id, message) USING (event_id) "
    "WHERE f.message = 'error'",
    # only WHERE clauses are rewritten
    "SELECT event_id, regexp_matches(message, 'fail') AS failed FROM events",
]


@pytest.mark.parametrize("sql", REWRITTEN)
def test_rewritten_sql_finds_the_same_events(con, sql):
    fast = rewrite.per_message(con, sql)
    assert fast != sql and rewrite.TABLE in fast
    assert rows(con, fast) == rows(con, sql)
    assert rows(con, sql), "every case should find something, or it proves little"


@pytest.mark.parametrize("sql", UNCHANGED)
def test_sql_the_rewrite_cannot_prove_is_left_alone(con, sql):
    assert rewrite.per_message(con, sql) == sql


def test_a_required_format_narrows_the_lookup(con):
    sql = "SELECT event_id FROM events WHERE format = 'update_worker' AND message = 'same text in two formats'"
    assert "format IN ('update_worker')" in rewrite.per_message(con, sql)
    assert len(rows(con, rewrite.per_message(con, sql))) == 1


def test_distinct_messages_holds_each_message_once_per_format(con):
    counts = con.execute(f"SELECT message, count(*) FROM {rewrite.TABLE} GROUP BY ALL ORDER BY 1").fetchall()
    assert counts == [("Access is DENIED", 1), ("Download failed, n=3", 2), ("Install ok, n=1", 1),
                      ("no number here", 1), ("same text in two formats", 2)]  # fmt: skip
    joined = con.execute(f"SELECT count(*) FROM events e JOIN {rewrite.TABLE} d USING (message_id, format) "
                         "WHERE d.message = e.message").fetchall()  # fmt: skip
    assert joined == [(len(EVENTS),)]


def test_columns_read():
    con = connect(events_table([]))
    assert rewrite.columns_read(con, ["SELECT e.event_id FROM events e WHERE e.attrs['k'] = 'v'"]) >= {"event_id", "attrs"}
    assert rewrite.columns_read(con, ["SELECT event_id FROM events", "SELECT * FROM failures"]) is None
    assert rewrite.columns_read(con, ["SELECT COLUMNS('^k') FROM events"]) is None


def test_doctests():
    assert doctest.testmod(rewrite).failed == 0
