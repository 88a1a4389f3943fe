"""What one error string says: its exception chain, HRESULTs and their names, Azure ids, JSON fields,
PowerShell record fields. The pieces come from ``grammars/portal_exception.lark``; this module walks
them in order (a flat loop: depth and length cost nothing but time linear in the text).

>>> a = analyze("Registration Failed with Exception System.InvalidOperationException: "
...             '{"Message":"Machine is already registered to a different account."}')
>>> a.chain
(('System.InvalidOperationException', '{"Message":"Machine is already registered to a different account."}'),)
>>> a.json["json.Message"]
'Machine is already registered to a different account.'
>>> analyze("x ---> A.BException: inner (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))").names
{'0x80070005': 'E_ACCESSDENIED'}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lark import Token

from umlogs.parsers.event import without_surrogates
from umlogs.parsers.grammar import parser
from umlogs.parsers.message import normalize_code

GRAMMAR = "portal_exception"

# Pieces that end the message of the exception before them.
_BOUNDARY = {"ARROW", "STACK_END", "STACK_FRAME", "PS_POSITION", "PS_FIELD", "TRACEBACK", "PY_FRAME", "PY_CHAIN"}
# After these, text is stack or code context, not message, until the next exception starts.
_CONTEXT = {"STACK_END": "stack", "STACK_FRAME": "stack", "PS_POSITION": "ps", "PS_FIELD": "ps",
            "TRACEBACK": "traceback", "PY_FRAME": "traceback", "PY_CHAIN": "traceback"}  # fmt: skip
_PREFIXES = {"PREFIX_REGISTER": "register", "PREFIX_DETAILS": "error_details",
             "PREFIX_RUNBOOK": "runbook_start", "PREFIX_ASSESSMENT": "assessment"}  # fmt: skip
# The words of an id key (grammar terminal ID_KEY), mapped to attribute names.
_KEYS = (
    ("linkedsubscription", "linked_subscription_id"),
    ("subscription", "subscription_id"),
    ("tenant", "tenant_id"),
    ("workspace", "workspace_id"),
    ("resourcegroup", "resource_group"),
    ("automationaccount", "automation_account"),
    ("hybridrunbookworkergroup", "hybrid_worker_group"),
    ("hybridworkergroup", "hybrid_worker_group"),
    ("workergroup", "hybrid_worker_group"),
    ("runbook", "runbook"),
    ("action", "action"),
    ("scope", "scope"),
)
# Resource-id path segments (lower case) whose next segment names something we report.
_PATH_IDS = {
    "subscriptions": "subscription_id", "resourcegroups": "resource_group",
    "automationaccounts": "automation_account", "runbooks": "runbook",
    "hybridrunbookworkergroups": "hybrid_worker_group", "workspaces": "workspace",
    "softwareupdateconfigurations": "update_deployment", "virtualmachines": "vm",
}  # fmt: skip
_HEX = re.compile(r"0[xX]([0-9A-Fa-f]{1,8})")
_SYMBOL = re.compile(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b")
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_QUOTES = "'\"‘’“”{}"
_EXC_TAIL = re.compile(r"[ \t]*(?:\(0[xX][0-9A-Fa-f]{1,8}\))?[ \t]*:?$")
_SPACES = re.compile(r"\s+")
# \r \n \t written out between the tokens of pretty-printed JSON pasted as text.
_LITERAL_ESCAPES = re.compile(r"\\[rnt]")
_REDACTION = re.compile(r"<[^>]*>|\*\*[^*]*\*\*|^[xX]{4,}$")
_JSON_MAX_DEPTH = 3
_JSON_MAX_FIELDS = 500


@dataclass(slots=True)
class Analysis:
    """Everything found in one error string."""

    chain: tuple[tuple[str, str], ...] = ()
    message: str = ""
    """The text without stack frames and code context, whitespace collapsed to single spaces."""
    prefix: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    """Symbolic HRESULT names the text gives, by normalized code."""
    decimal_codes: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    json: dict[str, str] = field(default_factory=dict)
    powershell: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    """``[Key=value]`` fields of an ``Assessment failed:`` prefix."""
    redacted: list[str] = field(default_factory=list)
    timestamp_text: str | None = None
    frames: int = 0


def analyze(text: str, *, depth: int = 0) -> Analysis:
    """Parse one error string. Never raises on content: text no piece recognises is kept as message.
    ``depth`` counts how far inside JSON strings this text sits (their ids are read too, to a limit)."""
    result = Analysis()
    _Walker(text, result, depth).run(_pieces(text))
    return result


def _pieces(text: str) -> list[Token]:
    return parser(GRAMMAR).parse(text).children


class _Walker:
    """One pass over the pieces: opens a chain segment at each exception head, closes it at a boundary."""

    def __init__(self, text: str, result: Analysis, depth: int = 0) -> None:
        self.text, self.r, self.depth = text, result, depth
        self.segments: list[list] = []  # [type, start, end, python]
        self.state = "text"
        self.after_arrow = True  # an exception head at the very start opens a segment
        self.skipped: list[tuple[int, int]] = []
        self.skip_from: int | None = None

    def run(self, pieces: list[Token]) -> None:
        for piece in pieces:
            kind = piece.type
            if kind == "EXC_HEAD" and self._opens(piece):
                self._open(piece)
                continue
            if kind in _BOUNDARY:
                self._close(piece.start_pos)
                self._skip_start(piece.start_pos)
                self.state = _CONTEXT.get(kind, self.state)
                self.after_arrow = kind == "ARROW"
                if kind == "ARROW":
                    self._skip_end(piece.start_pos)
                    self.state = "text"
            elif kind == "PS_HEAD" and self._line_start(piece):
                self.segments.append([str(piece)[:-1].strip(), piece.end_pos, None, False])
                self.r.powershell["cmdlet"] = str(piece)[:-1].strip()
            else:
                self.after_arrow = kind in _PREFIXES or (kind == "WORD" and str(piece).lower() == "exception")
            getattr(self, "_" + kind.lower(), _ignore)(piece)
        end = len(self.text)
        self._close(end)
        self._skip_end(end)
        self._finish()

    # --- segments -----------------------------------------------------------------------------
    def _opens(self, head: Token) -> bool:
        colon = str(head).rstrip().endswith(":")
        if self.state == "traceback":
            return self._line_start(head)
        return colon or self.after_arrow or self._line_start(head)

    def _open(self, head: Token) -> None:
        self._close(head.start_pos)
        self._skip_end(head.start_pos)
        python = self.state == "traceback"
        name = _EXC_TAIL.sub("", str(head)).replace(" ", "")
        self.segments.append([name, head.end_pos, None, python])
        self.state, self.after_arrow = "text", False

    def _close(self, at: int) -> None:
        if self.segments and self.segments[-1][2] is None:
            self.segments[-1][2] = at

    def _line_start(self, piece: Token) -> bool:
        start = piece.start_pos
        newline = self.text.rfind("\n", max(0, start - 200), start)
        if newline < 0 and start > 200:
            return False
        return not self.text[newline + 1 : start].strip()

    def _skip_start(self, at: int) -> None:
        if self.skip_from is None:
            self.skip_from = at

    def _skip_end(self, at: int) -> None:
        if self.skip_from is not None:
            self.skipped.append((self.skip_from, at))
            self.skip_from = None

    def _finish(self) -> None:
        dotnet = [(t, _message(self.text[s:e])) for t, s, e, py in self.segments if not py]
        python = [(t, _message(self.text[s:e])) for t, s, e, py in self.segments if py]
        dotnet.extend(_web_api_chain(self.r.json))
        self.r.chain = tuple(dotnet + python[::-1])
        kept, last = [], 0
        for a, b in self.skipped:
            kept.append(self.text[last:a])
            last = b
        kept.append(self.text[last:])
        self.r.message = _SPACES.sub(" ", " ".join(kept)).strip()

    # --- pieces that carry facts (method name = "_" + terminal name in lower case) -------------
    def _prefix_register(self, p: Token) -> None:
        self.r.prefix = self.r.prefix or _PREFIXES[p.type]

    _prefix_details = _prefix_runbook = _prefix_assessment = _prefix_register

    def _bracket_field(self, p: Token) -> None:
        key, _, value = str(p)[1:-1].partition("=")
        self.r.fields.setdefault(key.strip(), value.strip())

    def _hr_from(self, p: Token) -> None:
        hexes, symbol = _HEX.search(str(p)), _SYMBOL.search(str(p))
        if hexes and symbol:
            self.r.names.setdefault(normalize_code(hexes.group(1)), symbol.group(1))

    _hr_named = _hr_name_first = _hr_from

    def _hr_decimal(self, p: Token) -> None:
        value = int(str(p).rsplit(None, 1)[-1].lstrip(":="))
        self.r.decimal_codes.append(normalize_code(f"{value & 0xFFFFFFFF:08X}"))

    def _resource_id(self, p: Token) -> None:
        _resource_path(str(p), self.r.ids)

    def _action(self, p: Token) -> None:
        self.r.ids.setdefault("action", str(p))

    def _keyed_guid(self, p: Token) -> None:
        self._keyed(str(p), _GUID.search(str(p)).group(0))

    def _keyed_quoted(self, p: Token) -> None:
        self._keyed(str(p), _quoted_value(str(p)))

    def _keyed_name(self, p: Token) -> None:
        value = re.split(r"[\s:=]+", str(p).strip())[-1].rstrip(".")
        self._keyed(str(p), value)

    def _keyed(self, piece: str, value: str) -> None:
        key = re.sub(r"[ _]", "", piece.lower())
        name = next((attr for word, attr in _KEYS if key.startswith(word)), None)
        if name is None or not value:
            return
        if "/subscriptions/" in value.lower():
            _resource_path(value[value.lower().index("/subscriptions/") :], self.r.ids)
        self.r.ids.setdefault(name, value)

    def _url(self, p: Token) -> None:
        host = urlsplit(str(p)).hostname
        if host:
            self._host_name(host)

    def _host(self, p: Token) -> None:
        self._host_name(str(p))

    def _host_name(self, host: str) -> None:
        if host not in self.r.hosts:
            self.r.hosts.append(host)
        first, _, rest = host.partition(".")
        named = _GUID.fullmatch(first) or _REDACTION.search(first)
        if named and _REDACTION.search(first) and first not in self.r.redacted:
            self.r.redacted.append(first)
        if named and rest.lower().startswith(("oms.", "ods.")):
            self.r.ids.setdefault("workspace_id", first)
        elif named and ".azure-automation." in host.lower():
            self.r.ids.setdefault("automation_account_id", first)

    def _ps_position(self, p: Token) -> None:
        self.r.powershell.setdefault("position", str(p))

    def _ps_field(self, p: Token) -> None:
        name, _, value = str(p).lstrip("+ \t").partition(":")
        key = "category_info" if name.strip().lower() == "categoryinfo" else "fully_qualified_error_id"
        self.r.powershell.setdefault(key, value.strip())
        typed = re.search(r"\],\s*([\w.`]+)\s*$", value)
        if key == "category_info" and typed:
            for segment in self.segments:
                if segment[0] == self.r.powershell.get("cmdlet"):
                    segment[0] = typed.group(1)

    def _stack_frame(self, p: Token) -> None:
        self.r.frames += 1

    def _json(self, p: Token) -> None:
        value = _load_json(str(p))
        if value is not None:
            fields: dict[str, str] = {}
            _flatten(value, "json", fields, 0)
            for key, text in fields.items():
                self.r.json.setdefault(key, text)
                leaf = key.rsplit(".", 1)[-1].lower().replace("_", "")
                attr = next((a for w, a in _KEYS if leaf in (w, w + "id", w + "name")), None)
                if attr:
                    self.r.ids.setdefault(attr, text)
                elif self.depth < _JSON_MAX_DEPTH and len(text) > 12 and not text.lstrip().startswith(("{", "[")):
                    self._merge(analyze(text, depth=self.depth + 1))

    def _merge(self, inner: Analysis) -> None:
        """Ids, hosts, HRESULT names and redactions found in a JSON string belong to this text too."""
        for key, value in inner.ids.items():
            self.r.ids.setdefault(key, value)
        for key, value in inner.names.items():
            self.r.names.setdefault(key, value)
        self.r.decimal_codes.extend(inner.decimal_codes)
        self.r.hosts.extend(h for h in inner.hosts if h not in self.r.hosts)
        self.r.redacted.extend(r for r in inner.redacted if r not in self.r.redacted)

    def _timestamp(self, p: Token) -> None:
        self.r.timestamp_text = self.r.timestamp_text or str(p)

    def _redacted(self, p: Token) -> None:
        if str(p) not in self.r.redacted:
            self.r.redacted.append(str(p))


def _ignore(piece: Token) -> None:
    """Pieces with nothing to record (words, GUIDs that no key names, parentheses)."""


def _message(span: str) -> str:
    """A segment's message: whitespace collapsed, and a parenthesis that repeats it dropped.

    >>> _message("Access is denied.   (Access is denied.) ")
    'Access is denied.'
    >>> _message("One or more errors occurred. (Access is denied.)")
    'One or more errors occurred. (Access is denied.)'
    """
    text = _SPACES.sub(" ", span).strip()
    if text.endswith(")"):
        for sep in (" (", "("):
            half = (len(text) - len(sep) - 1) / 2
            if half.is_integer() and half > 0:
                h = int(half)
                if text[h : h + len(sep)] == sep and text[:h] == text[h + len(sep) : -1]:
                    return text[:h]
    return text


def _quoted_value(piece: str) -> str:
    """The text between the quotes of a KEYED_QUOTED piece.

    >>> _quoted_value("linked subscription ‘xxxx’")
    'xxxx'
    """
    start = next(i for i, c in enumerate(piece) if c in _QUOTES)
    return piece[start + 1 : -1].strip()


def _resource_path(path: str, ids: dict[str, str]) -> None:
    """Name the parts of an Azure resource id.

    >>> ids = {}
    >>> _resource_path("/subscriptions/S/resourceGroups/rg/providers/Microsoft.Automation/automationAccounts/aa", ids)
    >>> ids["subscription_id"], ids["resource_group"], ids["automation_account"], ids["resource_id"][:15]
    ('S', 'rg', 'aa', '/subscriptions/')
    """
    path = path.rstrip(".'\"’”")
    ids.setdefault("resource_id", path)
    parts = path.strip("/").split("/")
    for key, value in zip(parts[::2], parts[1::2]):
        attr = _PATH_IDS.get(key.lower())
        if attr:
            ids.setdefault(attr, value)
    if len(parts) % 2 == 0 and "providers" in (p.lower() for p in parts):
        ids.setdefault("resource_type", "/".join(parts[parts.index("providers") + 1 :: 2][:1] + parts[-2:-1]))


def _load_json(span: str):
    """Read a JSON span, plain or escaped as the inside of a JSON string (``{\\"a\\":1}``).

    >>> _load_json('{\\\\"error\\\\":{\\\\"code\\\\":\\\\"Conflict\\\\"}}')
    {'error': {'code': 'Conflict'}}
    >>> _load_json('{\\r\\n  "code": "Conflict"\\r\\n}')
    {'code': 'Conflict'}
    >>> _load_json('{"a": oops}') is None
    True
    """
    for attempt in range(3):
        try:
            # without_surrogates: a "\ud800" escape decodes to text Arrow cannot store
            if attempt == 0:
                return without_surrogates(json.loads(span, strict=False))
            if attempt == 1:
                return without_surrogates(json.loads(json.loads('"' + span + '"', strict=False), strict=False))
            return without_surrogates(json.loads(_LITERAL_ESCAPES.sub(" ", span), strict=False))
        except (ValueError, RecursionError, TypeError):
            continue
    return None


def _flatten(value, key: str, out: dict[str, str], depth: int) -> None:
    """Flatten JSON into dotted keys; a string holding JSON is read and flattened under its own key.

    >>> out = {}
    >>> _flatten({"error": {"code": "X", "details": [{"code": "Y"}]}, "m": '{"a": 1}'}, "json", out, 0)
    >>> out
    {'json.error.code': 'X', 'json.error.details.0.code': 'Y', 'json.m': '{"a": 1}', 'json.m.a': '1'}
    """
    stack = [(key, value, depth)]
    while stack and len(out) < _JSON_MAX_FIELDS:
        key, value, depth = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v, depth) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((f"{key}.{i}", v, depth) for i, v in reversed(list(enumerate(value))))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            out.setdefault(key, text)
            if isinstance(value, str) and value.lstrip()[:1] in ("{", "[") and depth < _JSON_MAX_DEPTH:
                inner = _load_json(value.strip())
                if isinstance(inner, (dict, list)):
                    stack.append((key, inner, depth + 1))


def _web_api_chain(fields: dict[str, str]) -> list[tuple[str, str]]:
    """ASP.NET Web API error bodies name their exception: ``ExceptionType``/``ExceptionMessage``,
    nested under ``InnerException``.

    >>> _web_api_chain({"json.ExceptionType": "A.BException", "json.ExceptionMessage": "m",
    ...                 "json.InnerException.ExceptionType": "C.DException", "json.InnerException.ExceptionMessage": "n"})
    [('A.BException', 'm'), ('C.DException', 'n')]
    """
    chain, key = [], "json"
    while f"{key}.ExceptionType" in fields and len(chain) < 100:
        chain.append((fields[f"{key}.ExceptionType"], fields.get(f"{key}.ExceptionMessage", "")))
        key += ".InnerException"
    return chain
