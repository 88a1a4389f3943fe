"""Bytes to lines: byte-order marks, UTF-16, a legacy single-byte fallback, and a count of what
did not decode. Never raises on content.

>>> d = decode(b"\\xef\\xbb\\xbfone\\r\\ntwo\\n")
>>> d.encoding, d.lines, d.replaced
('utf-8-sig', ['one', 'two'], 0)
>>> decode("h\\u00e9\\r\\n".encode("utf-16")).lines
['hé']
>>> decode(b"ok \\xe2\\x9c\\x93 then \\xff").replaced
1
>>> d = decode(b"caf\\xe9 \\xff")
>>> d.encoding, d.lines, d.replaced
('cp1252', ['café ÿ'], 0)
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Bytes that never appear in text, but fill a binary file (ELF, PNG, a zip).
_BINARY_CONTROLS = frozenset(range(0, 9)) | frozenset(range(14, 32)) - {27}
_BINARY_SHARE = 0.10


class NotText(ValueError):
    """The content is not text: it is empty, or binary."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text lines (without their ``\\n`` or ``\\r\\n``), the encoding used, and how many characters
    had to be replaced because their bytes did not decode."""

    lines: list[str]
    encoding: str
    replaced: int


def decode(data: bytes) -> Decoded:
    """Decode a whole file. A BOM decides; otherwise UTF-8, then cp1252 for legacy single-byte text;
    bytes that still do not decode become U+FFFD and are counted.

    Lines are split on ``\\n`` only; a trailing ``\\r`` is removed, a lone ``\\r`` stays in its line.
    """
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if encoding:
        body = data[len(codecs.BOM_UTF8 if encoding == "utf-8-sig" else codecs.BOM_UTF16_LE) :]
        codec = "utf-8" if encoding == "utf-8-sig" else encoding
        text = body.decode(codec, errors="replace")
        replaced = _replacements(text, body.decode(codec, errors="ignore"))
    else:
        text, encoding = data.decode("utf-8", errors="replace"), "utf-8"
        replaced = _replacements(text, data.decode("utf-8", errors="ignore"))
        if replaced and not _has_multibyte(text):
            # No valid UTF-8 sequence at all: legacy single-byte text, such as cp1252.
            text, encoding = data.decode("cp1252", errors="replace"), "cp1252"
            replaced = _replacements(text, data.decode("cp1252", errors="ignore"))
    return Decoded(split_lines(text), encoding, replaced)


def check_text(data: bytes) -> None:
    """Raise :class:`NotText` naming the reason when ``data`` is empty or looks binary.

    >>> try:
    ...     check_text(b"\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00")
    ... except NotText as error:
    ...     print(error)
    binary content (67% control bytes in the first 12)
    """
    if not data.strip(b" \t\r\n" + codecs.BOM_UTF8):
        raise NotText("empty file" if not data else "no text (only blank lines or a byte-order mark)")
    if any(data.startswith(bom) for bom, name in _BOMS[1:]):
        return
    head = data[:4096]
    share = sum(byte in _BINARY_CONTROLS for byte in head) / len(head)
    if share > _BINARY_SHARE:
        raise NotText(f"binary content ({share:.0%} control bytes in the first {len(head)})")


def split_lines(text: str) -> list[str]:
    """Split on ``\\n``; drop the ``\\r`` of CRLF and the empty piece after a final newline.

    >>> split_lines("a\\r\\nb\\rc\\n\\nd")
    ['a', 'b\\rc', '', 'd']
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _has_multibyte(text: str) -> bool:
    return any(ord(ch) > 0x7F and ch != "\ufffd" for ch in text)


def _replacements(decoded: str, without: str) -> int:
    return len(decoded) - len(without)
