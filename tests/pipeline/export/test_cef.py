"""CEF: parsed back by an independent parser written here from the CEF specification; hostile text
stays inside its field and comes back unchanged (except controls CEF cannot carry)."""

from __future__ import annotations

import doctest
import re

from umlogs.pipeline.export import cef

from .conftest import HOSTILE, corpus_records, hostile_records, sample_records

HEADER = re.compile(r"^CEF:0((?:\|(?:[^|\\]|\\[|\\])*){6})\|(.*)$", re.DOTALL)
HEADER_FIELD = re.compile(r"\|((?:[^|\\]|\\[|\\])*)")
KNOWN_KEYS = {"msg", "cat", "dvchost", "dhost", "fname", "dvcpid", "outcome", "cnt", "start", "end", "request",
              "externalId", "rt", "cn1", "cn1Label"} | {f"cs{i}{s}" for i in range(1, 6) for s in ("", "Label")}
EXT_KEY = re.compile(r"(?:^| )([A-Za-z0-9_]+)=")


def unescape_header(text: str) -> str:
    return re.sub(r"\\([|\\])", r"\1", text)


def unescape_value(text: str) -> str:
    table = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
    return re.sub(r"\\([\\=nr])", lambda m: table[m.group(1)], text)


def parse(line: str) -> tuple[list[str], dict[str, str]]:
    """Header fields and extension of one CEF line. A key starts after a space and ends at an
    unescaped ``=``; a value runs to the next key."""
    assert len(line.splitlines()) == 1, "one record, one line"
    m = HEADER.match(line)
    assert m, line[:200]
    header = [unescape_header(f) for f in HEADER_FIELD.findall(m.group(1))]
    ext_text = m.group(2)
    # Positions of unescaped "key=" starts.
    keys = []
    for k in EXT_KEY.finditer(ext_text):
        eq = k.end() - 1
        backslashes = len(ext_text[:eq]) - len(ext_text[:eq].rstrip("\\"))
        if backslashes % 2 == 0 and (k.start() == 0 or _unescaped_space(ext_text, k.start())):
            keys.append(k)
    ext = {}
    for i, k in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(ext_text)
        raw = ext_text[k.end():end]
        assert not re.search(r"(?<!\\)(\\\\)*=", raw.replace("\\\\", "")), f"unescaped = in {raw[:80]!r}"
        ext[k.group(1)] = unescape_value(raw)
    return header, ext


def _unescaped_space(text: str, i: int) -> bool:
    return text[i] == " "


def test_header_and_extension_parse_back():
    for record in sample_records():
        header, ext = parse(cef.encode(record))
        assert header[:3] == ["umlogs", "umlogs", record.version]
        assert 0 <= int(header[5]) <= 10
        assert ext["externalId"] == record.id and int(ext["rt"]) > 0
        if record.kind == "event":
            assert ext["msg"] == record.data["message"]
            assert ext["fname"] == record.data["source"] and int(ext["cn1"]) == record.data["line_no"]
        else:
            assert header[3] == record.data["rule_id"] and header[4] == record.data["title"]
            assert int(ext["cnt"]) == record.data["count"]


def test_hostile_messages_round_trip():
    for record in hostile_records():
        line = cef.encode(record)
        header, ext = parse(line)
        assert len(header) == 6
        text = record.data["message"] if record.kind == "event" else record.data["cause"]
        expected = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]", "\ufffd", text)
        assert ext["msg"] == expected
        if record.kind == "finding":
            assert header[4] == expected.replace("\r", " ").replace("\n", " ")[: cef.NAME_LIMIT]
            assert ext["cs2"] == expected and ext["cs2Label"] == "resolution"
        assert set(ext) <= KNOWN_KEYS, set(ext) - KNOWN_KEYS  # nothing injected a key of its own


def test_forged_record_does_not_start_a_line():
    forged = next(r for r in hostile_records() if r.id == "hostile-forged_cef")
    assert cef.encode(forged).count("\n") == 0 and cef.encode(forged).startswith("CEF:0|umlogs|")
    assert "\\nCEF:0|Evil" in cef.encode(forged)


def test_corpus_counts_and_parse(corpus_loaded):
    loaded, findings = corpus_loaded
    lines = [cef.encode(r) for r in corpus_records(corpus_loaded)]
    assert len(lines) == loaded.table.num_rows + len(findings)
    for line in lines:
        parse(line)


def test_escape_helpers():
    assert cef.escape_header("a|b\\c") == "a\\|b\\\\c"
    assert cef.escape_extension("a=b\\c\nd\re") == "a\\=b\\\\c\\nd\\re"
    assert HOSTILE["big"] in cef.escape_extension(HOSTILE["big"])


def test_doctests():
    assert doctest.testmod(cef).failed == 0
