"""RFC 5424: every message parsed back with a strict parser written here from the RFC's ABNF
(section 6); structured data and MSG come back unchanged, hostile text never forges a record."""

from __future__ import annotations

import doctest
import re
from datetime import datetime

from umlogs.pipeline.export import syslog

from .conftest import HOSTILE, corpus_records, hostile_records, sample_records

PRINTUSASCII = r"[\x21-\x7e]"
SD_NAME = r'[!#-<>-\\^-~]{1,32}'  # PRINTUSASCII except '=', ' ', ']', '"'
PARAM_VALUE = r'(?:[^"\\\]]|\\.)*'
SD_ELEMENT = rf'\[{SD_NAME}(?: {SD_NAME}="{PARAM_VALUE}")*\]'
MESSAGE = re.compile(
    rf"^<(?P<pri>\d{{1,3}})>1 (?P<ts>-|\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{{1,6}})?(?:Z|[+-]\d\d:\d\d)) "
    rf"(?P<host>{PRINTUSASCII}{{1,255}}) (?P<app>{PRINTUSASCII}{{1,48}}) (?P<procid>{PRINTUSASCII}{{1,128}}) "
    rf"(?P<msgid>{PRINTUSASCII}{{1,32}}) (?P<sd>-|(?:{SD_ELEMENT})+)(?: (?P<msg>.*))?$",
    re.DOTALL,
)
PARAM = re.compile(rf' ({SD_NAME})="({PARAM_VALUE})"')


def parse(text: str) -> dict:
    """Fields of one RFC 5424 message; SD params unescaped; MSG with its BOM removed and unescaped."""
    assert len(text.splitlines()) == 1 and "\x00" not in text, "one record, one line"
    m = MESSAGE.match(text)
    assert m, text[:300]
    fields = m.groupdict()
    assert 0 <= int(fields["pri"]) <= 191
    fields["params"] = {k: re.sub(r'\\(["\\\]])', r"\1", v) for k, v in PARAM.findall(fields["sd"])}
    msg = fields["msg"] or ""
    assert msg.startswith("\ufeff"), "UTF-8 MSG starts with the BOM"
    fields["text"] = unescape(msg[1:])
    return fields


def unescape(text: str) -> str:
    named = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
    return re.sub(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[nrt\\])",
                  lambda m: named[m.group(1)] if len(m.group(1)) == 1 else chr(int(m.group(1)[1:], 16)), text)


def test_samples_parse_back():
    for record in sample_records():
        f = parse(syslog.encode(record))
        datetime.fromisoformat(f["ts"].replace("Z", "+00:00"))
        assert f["app"] == "umlogs" and f["params"]["id"] == record.id
        severity = int(f["pri"]) % 8
        assert int(f["pri"]) // 8 == syslog.FACILITY
        if record.kind == "event":
            assert severity == syslog.LEVEL_SEVERITY[record.data["level"]]
            assert f["text"] == record.data["message"] and f["msgid"] == record.data["format"]
            assert f["params"]["line"] == str(record.data["line_no"])
        else:
            assert severity == syslog.FINDING_SEVERITY[record.data["severity"]]
            assert f["msgid"] == "finding" and f["params"]["rule"] == record.data["rule_id"]


def test_hostile_messages_stay_one_record():
    for record in hostile_records():
        line = syslog.encode(record)
        f = parse(line)
        sd_elements = re.findall(SD_ELEMENT, f["sd"])
        assert len(sd_elements) == 1 and sd_elements[0].startswith("[umlogs@32473 ")
        if record.kind == "event":
            assert f["text"] == record.data["message"]
            assert f["params"]["component"] == re.sub("[\x00-\x1f\x7f-\x9f\u2028\u2029]", "\ufffd", record.data["component"])
        else:
            assert f["text"] == record.data["title"] + ": " + record.data["detail"]
        assert re.fullmatch(PRINTUSASCII + "+", f["host"])


def test_sd_escaping_per_rfc():
    assert syslog.escape_param('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert syslog.structured_data("x@1", {"v": '"] [evil@1 a="b"]'}) == '[x@1 v="\\"\\] [evil@1 a=\\"b\\"\\]"]'


def test_message_escaping_round_trips():
    for text in HOSTILE.values():
        escaped = syslog.escape_msg(text)
        assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", escaped)
        assert len(escaped.splitlines()) <= 1
        assert unescape(escaped) == text == syslog.unescape_msg(escaped)


def test_corpus_counts_and_parse(corpus_loaded):
    loaded, findings = corpus_loaded
    messages = [syslog.encode(r) for r in corpus_records(corpus_loaded)]
    assert len(messages) == loaded.table.num_rows + len(findings)
    for message in messages:
        parse(message)


def test_doctests():
    assert doctest.testmod(syslog).failed == 0
