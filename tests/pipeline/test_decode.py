"""The streaming splitter (Arrow compute) against the whole-file decoder's rules."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from umlogs.pipeline import decode

# Text rich in what a splitter can get wrong: CR, LF, every kind of whitespace, multi-byte characters.
_TEXT = st.text(st.sampled_from(list("ab é\r\n\t\x0b\x0c\x1c\x1f\x85\xa0\u2000\u2028\u3000€")), max_size=60)


def test_blank_means_what_str_strip_means():
    assert set(decode.PY_WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


@given(text=_TEXT, chunk=st.integers(1, 16), max_line=st.integers(1, 20))
def test_stream_lines_match_the_whole_file_decoder(text, chunk, max_line):
    data = text.encode("utf-8")
    lines, stats = decode.iter_lines(io.BytesIO(data), chunk_bytes=chunk, max_line=max_line)
    lines = list(lines)
    whole = decode.split_lines(text)
    assert lines == [line[:max_line] for line in whole]
    assert stats.lines == len(whole)
    assert stats.blank == sum(1 for line in lines if not line.strip())
    # Long by the text with a CRLF's CR: "a\r\n" is two characters long.
    pieces = text.split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()
    assert stats.long_lines == sum(1 for p in pieces if len(p) > max_line)
