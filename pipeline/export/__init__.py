"""SIEM export: encoders for ECS, OCSF, CEF, RFC 5424 syslog and Splunk HEC, and the transports
that deliver them (:mod:`.send`).

Each encoder module has a pure ``encode(record) -> str | dict``; :func:`serialize` turns its result
into one line of text (JSON objects with sorted keys, compact, UTF-8 kept).

>>> FORMATS
('ecs', 'ocsf', 'cef', 'syslog', 'hec')
>>> serialize({"b": 1, "a": "é"})
'{"a":"é","b":1}'
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
    """One line: JSON with sorted keys for objects, the text itself for line formats."""
    if isinstance(encoded, str):
        return encoded
    return json.dumps(encoded, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
