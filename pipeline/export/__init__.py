"""SIEM export: encoders for ECS, OCSF, CEF, RFC 5424 syslog and Splunk HEC, and the transports
that deliver them (:mod:`.send`).

Each encoder module has a pure ``encode(record) -> str | dict``; :func:`serialize` turns its result
into one line of text (JSON objects with sorted keys, compact, UTF-8 kept).

>>> FORMATS
('ecs', 'ocsf', 'cef', 'syslog', 'hec')
>>> serialize({"b": 1, "a": "é"})
'{"a":"é","b":1}'
>>> serialize({"a": "x\\u2028y\\x85"})
'{"a":"x\\\\u2028y\\\\u0085"}'
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable

FORMATS = ("ecs", "ocsf", "cef", "syslog", "hec")


class ExportError(Exception):
    """A problem with the export request (bad URL, missing token, unknown format): exit 2."""


def encoder(name: str) -> Callable:
    """The ``encode`` function of format ``name``."""
    if name not in FORMATS:
        raise ExportError(f"--format {name!r}: choose from {', '.join(FORMATS)}")
    return importlib.import_module(f"umlogs.pipeline.export.{name}").encode


def serialize(encoded: str | dict) -> str:
    """One line: JSON with sorted keys for objects, the text itself for line formats. JSON keeps
    non-ASCII text as is, except U+0085, U+2028 and U+2029, which some readers take as line ends."""
    if isinstance(encoded, str):
        return encoded
    text = json.dumps(encoded, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.translate(_LINE_ENDS)


# Outside strings JSON has none of these characters, so escaping them is always valid.
_LINE_ENDS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
