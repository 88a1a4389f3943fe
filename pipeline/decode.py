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
import itertools
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

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
        replaced = _replacements(text, lambda: body.decode(codec, errors="ignore"))
    else:
        text, encoding = data.decode("utf-8", errors="replace"), "utf-8"
        replaced = _replacements(text, lambda: data.decode("utf-8", errors="ignore"))
        if replaced and not _has_multibyte(text):
            # No valid UTF-8 sequence at all: legacy single-byte text, such as cp1252.
            text, encoding = data.decode("cp1252", errors="replace"), "cp1252"
            replaced = _replacements(text, lambda: data.decode("cp1252", errors="ignore"))
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
    >>> split_lines("a\\r\\r\\n"), split_lines("a\\r")
    (['a\\r'], ['a'])
    """
    # Removing the \r of every \r\n, then splitting on \n, drops exactly one \r before each \n.
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines and lines[-1].endswith("\r"):  # a last line without its \n
        lines[-1] = lines[-1][:-1]
    return lines


def _has_multibyte(text: str) -> bool:
    """True when ``text`` holds a character beyond ASCII other than U+FFFD."""
    return not text.isascii() and not text.replace("\ufffd", "").isascii()


def _replacements(decoded: str, without) -> int:
    """How many U+FFFD the decoder put in: the length difference with the text decoded while
    ignoring bad bytes (computed only when a U+FFFD is present at all)."""
    return len(decoded) - len(without()) if "\ufffd" in decoded else 0


# --- Streaming -------------------------------------------------------------------------------------

CHUNK_BYTES = 1 << 20
MAX_LINE_CHARS = 8 << 20
_COUNTED = "umlogs-replace-counted"
_ERRORS = [0]


def _count_and_replace(error: UnicodeError) -> tuple[str, int]:
    """The ``replace`` error handler, counting each replacement (one U+FFFD per invalid run)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    _ERRORS[0] += 1
    return "\ufffd", error.end


codecs.register_error(_COUNTED, _count_and_replace)


@dataclass(slots=True)
class StreamStats:
    """What :func:`iter_lines` found; final once its iterator is exhausted.

    ``encoding`` may change once, from ``utf-8`` to ``cp1252``, at the first undecodable byte.
    ``long_lines`` counts lines cut to :data:`MAX_LINE_CHARS` characters (the rest is dropped).
    """

    encoding: str = "utf-8"
    decided: bool = False
    """True once the encoding is known (from a BOM, or at the first byte that is not UTF-8)."""
    replaced: int = 0
    lines: int = 0
    blank: int = 0
    bytes: int = 0
    long_lines: int = 0


def iter_lines(stream, *, chunk_bytes: int = CHUNK_BYTES, max_line: int = MAX_LINE_CHARS):
    """Decode a binary stream lazily into lines; returns ``(lines_iterator, stats)``.

    Only one chunk and one line are held at a time, so memory does not grow with the file. The rules
    are those of :func:`decode`: a BOM decides; otherwise UTF-8, and cp1252 for legacy single-byte
    text; lines split as :func:`split_lines` does. The one difference: :func:`decode` sees the whole
    file before choosing cp1252, the stream chooses at the first chunk holding an undecodable byte
    (cp1252 when no valid multi-byte UTF-8 character came before or in that chunk). Files whose
    first undecodable byte and first valid multi-byte character are in different megabytes are the
    only ones decoded differently.

    >>> import io
    >>> lines, stats = iter_lines(io.BytesIO(b"\\xef\\xbb\\xbfone\\r\\ntwo\\rthree\\n\\n"))
    >>> list(lines), stats.encoding, stats.lines, stats.blank
    (['one', 'two\\rthree', ''], 'utf-8-sig', 3, 1)
    >>> lines, stats = iter_lines(io.BytesIO(b"caf\\xe9 \\x81\\n"), chunk_bytes=2)
    >>> list(lines), stats.encoding, stats.replaced
    (['café \\ufffd'], 'cp1252', 1)
    """
    blocks, stats = iter_blocks(stream, chunk_bytes=chunk_bytes, max_line=max_line)
    return itertools.chain.from_iterable(blocks), stats


def _text_chunks(data: bytes, stream, stats: StreamStats, chunk_bytes: int, multibyte: bool):
    """Decoded text, chunk by chunk, starting with ``data`` and going on with ``stream``. The decoder
    is ``stats.encoding``'s (a BOM's, or a decided one, replacing and counting bad bytes); while
    ``stats.encoding`` is ``utf-8`` and undecided (``stats.decided`` false), strict UTF-8 until the first
    bad byte, which decides: cp1252 unless a valid multi-byte character came before or with it."""
    undecided = not stats.decided
    codec = "utf-8" if stats.encoding == "utf-8-sig" else stats.encoding
    decoder = codecs.getincrementaldecoder(codec)("strict" if undecided else _COUNTED)
    eof = False
    while True:
        if not data and not eof:
            data = stream.read(chunk_bytes)
            stats.bytes += len(data)
            eof = not data
        if undecided:
            try:
                text = decoder.decode(data, eof)
            except UnicodeDecodeError as error:
                pending = error.object  # the decoder's buffered bytes plus ``data``
                multibyte = multibyte or _has_multibyte(pending.decode("utf-8", errors="replace"))
                stats.encoding = "utf-8" if multibyte else "cp1252"
                stats.decided = True
                decoder = codecs.getincrementaldecoder(stats.encoding)(_COUNTED)
                undecided, data = False, pending
                continue
            multibyte = multibyte or (not text.isascii() and _has_multibyte(text))
        else:
            before = _ERRORS[0]
            text = decoder.decode(data, eof)
            stats.replaced += _ERRORS[0] - before
        if text:
            yield text
        if eof:
            return
        data = b""


def iter_blocks(stream, *, chunk_bytes: int = CHUNK_BYTES, max_line: int = MAX_LINE_CHARS):
    """:func:`iter_lines` in blocks: ``(blocks_iterator, stats)`` where each block is a list of
    consecutive lines (:func:`iter_arrow`'s blocks as Python strings).

    >>> import io
    >>> blocks, stats = iter_blocks(io.BytesIO(b"one\\r\\ntwo\\rthree\\n\\n"), chunk_bytes=4)
    >>> [line for block in blocks for line in block], stats.lines, stats.blank
    (['one', 'two\\rthree', ''], 3, 1)
    """
    blocks, stats = iter_arrow(stream, chunk_bytes=chunk_bytes, max_line=max_line)
    return (block.to_pylist() for block in blocks), stats


def iter_arrow(stream, *, chunk_bytes: int = CHUNK_BYTES, max_line: int = MAX_LINE_CHARS):
    """Decode a binary stream into blocks of lines as Arrow string arrays: ``(blocks, stats)``. The
    lines and stats of :func:`iter_lines`, split at C speed (Arrow compute) with no Python object per
    line; only a block and one unfinished line are held at once.

    >>> import io
    >>> blocks, stats = iter_arrow(io.BytesIO(b"a\\r\\n \\x1c\\r\\nb\\r\\r\\nc"))
    >>> [line for block in blocks for line in block.to_pylist()], stats.lines, stats.blank
    (['a', ' \\x1c', 'b\\r', 'c'], 4, 1)
    """
    stats = StreamStats()
    return _arrow_blocks(stream, stats, chunk_bytes, max_line), stats


# The characters Python's str.strip() removes: a line of only these is blank.
PY_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def _arrow_blocks(stream, stats: StreamStats, chunk_bytes: int, max_line: int):
    """Lines as Arrow blocks. UTF-8 (the common case) is split as bytes and validated by Arrow, with
    no Python string made; from the first block that is not valid UTF-8, or a line longer than
    ``max_line`` bytes, or after a UTF-16 BOM, the rest goes through :func:`_text_chunks`."""
    head, eof = b"", False
    while len(head) < 3:  # enough for any BOM, even from a stream that returns a few bytes at a time
        more = stream.read(chunk_bytes)
        if not more:
            eof = True
            break
        head += more
    stats.bytes = len(head)
    bom = next(((b, name) for b, name in _BOMS if head.startswith(b)), None)
    if bom:
        stats.encoding, stats.decided, head = bom[1], True, head[len(bom[0]) :]
    carry, multibyte = head, False
    while stats.encoding in ("utf-8", "utf-8-sig"):
        cut = carry.rfind(b"\n")
        if cut >= 0:
            try:
                lines = _lines(carry, stats, max_line, cut)
            except pa.ArrowInvalid:  # not UTF-8: the text path decides what it is
                break
            multibyte = multibyte or (not carry.isascii() and _has_multibyte(carry[:cut].decode("utf-8")))
            carry = carry[cut + 1 :]
            yield lines
        if eof or len(carry) > max_line + 1:  # the end, or an endless line: the text path keeps its start
            break
        more = stream.read(chunk_bytes)
        stats.bytes += len(more)
        eof, carry = not more, carry + more
    if carry or not eof:
        yield from _blocks(_text_chunks(carry, stream, stats, chunk_bytes, multibyte), stats, max_line)


def _blocks(chunks, stats: StreamStats, max_line: int):
    carry = ""
    for chunk in chunks:
        text = carry + chunk if carry else chunk
        cut = text.rfind("\n")
        carry = text[cut + 1 :]
        if len(carry) > max_line + 1:  # an endless line: keep its start, count it as long
            carry = carry[: max_line + 1]
        if cut >= 0:
            yield _lines(text, stats, max_line, cut)
    if carry:
        yield _lines(carry, stats, max_line, len(carry))


def _lines(block: str | bytes, stats: StreamStats, max_line: int, end: int) -> pa.Array:
    """The lines of ``block`` (UTF-8 bytes or a string) before ``end`` (the index of the newline
    after the last of them, or the length of a last line without one) as an Arrow array, counted in
    ``stats``. Raises ``pa.ArrowInvalid`` for bytes that are not UTF-8."""
    newline, cr = ("\n", "\r") if isinstance(block, str) else (b"\n", b"\r")
    pieces = _split(block, end, newline)
    # A line is long when its text with the \r of a CRLF is longer than max_line characters. Their
    # count is read only when some line has more bytes than that (a character has one or more).
    long = pc.greater(pc.utf8_length(pieces), max_line) if pc.max(pc.binary_length(pieces)).as_py() > max_line else None
    if block.find(cr, 0, end) >= 0:  # drop the \r of each \r\n
        ends = pc.ends_with(pieces, "\r")
        cut = pc.utf8_slice_codeunits(pieces, 0, -1)
        pieces = cut if pc.all(ends).as_py() else pc.if_else(ends, cut, pieces)
    if long is not None and (long_count := pc.sum(long).as_py()):
        pieces = pc.if_else(long, pc.utf8_slice_codeunits(pieces, 0, max_line), pieces)
        stats.long_lines += long_count
    stats.lines += len(pieces)
    stats.blank += pc.sum(pc.equal(pc.binary_length(pc.utf8_ltrim(pieces, PY_WHITESPACE)), _NONE)).as_py() or 0
    return pieces


# Typed: a Python int would have Arrow infer its type, trying to import dateutil each time (~50 us).
_NONE = pa.scalar(0, pa.int32())


def _split(text: str | bytes, end: int, separator: str | bytes) -> pa.Array:
    """``text[:end]`` split at ``separator``, as strings. Bytes are split where they lie, with no copy
    made first (1M classic lines decoded in 0.236 s instead of 0.288 s, docs/performance.md).

    >>> _split(b"a\\nb\\nc", 3, b"\\n").to_pylist(), _split("a\\nb", 3, "\\n").to_pylist()
    (['a', 'b'], ['a', 'b'])
    """
    if isinstance(text, str):
        whole = pa.array([text[:end]], pa.string())
    else:  # one binary value over the bytes as they are
        whole = pa.Array.from_buffers(pa.binary(), 1, [None, pa.array([0, end], pa.int32()).buffers()[1], pa.py_buffer(text)])
    return pc.split_pattern(whole, separator).flatten().cast(pa.string())
