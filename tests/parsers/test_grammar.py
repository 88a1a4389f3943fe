"""parsers.grammar: a parser built with a transformer (windows_update and update_worker parse so,
without building a tree per line) reads every line exactly as the plain parser's tree with the
transformer applied after it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import UnexpectedInput

from conftest import SAMPLES, corpus_files
from umlogs.parsers import update_worker, windows_update
from umlogs.parsers.grammar import parser
from umlogs.pipeline.decode import decode

TRANSFORMERS = {windows_update.NAME: windows_update._TO_FIELDS, update_worker.NAME: update_worker._TO_FIELDS}


def _reading(parse, line: str):
    """What ``parse`` makes of ``line``: its value, or where and why the grammar rejected it."""
    try:
        return parse(line)
    except UnexpectedInput as error:
        return type(error).__name__, error.line, error.column


def _both(name: str, line: str) -> tuple:
    transformer = TRANSFORMERS[name]
    after = _reading(lambda text: transformer.transform(parser(name).parse(text)), line)
    inline = _reading(parser(name, transformer).parse, line)
    return after, inline


def _sample_lines(name: str) -> list[str]:
    return [line for path in sorted((SAMPLES / name).glob("*.log")) for line in path.read_text("utf-8").splitlines()]


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_every_sample_line(name):
    lines = _sample_lines(name)
    assert len(lines) > 20
    for line in lines:
        after, inline = _both(name, line)
        assert inline == after, line


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_every_corpus_line(name):
    for path in corpus_files(name):
        for line in decode(path.read_bytes()).lines:
            after, inline = _both(name, line)
            assert inline == after, (path.name, line)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(TRANSFORMERS)), st.data())
def test_edited_sample_lines(name, data):
    """Sample lines with a stretch replaced by other text: valid lines, near misses and garbage."""
    line = data.draw(st.sampled_from(_sample_lines(name)))
    start = data.draw(st.integers(0, len(line)))
    end = data.draw(st.integers(start, len(line)))
    edited = line[:start] + data.draw(st.text(alphabet="0123456789abcdefKB:-/.\t []=()>x{}", max_size=12)) + line[end:]
    after, inline = _both(name, edited)
    assert inline == after
