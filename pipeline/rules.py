"""Rules: one TOML file each, validated when loaded, before any log is read.

A rule names a finding (``id``, ``title``, ``scenario``, ``severity``, ``cause``, ``resolution``,
``reference``) and holds one DuckDB ``sql`` query over the ``events`` view and the ``catalog`` table
that selects the evidence: it returns ``event_id`` and may return ``hresult`` and ``detail``.

>>> rules = load_rules()
>>> len({r.id for r in rules}) == len(rules)
True
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

SEVERITIES = ("info", "warning", "error", "critical")
# The section anchors of the troubleshooting guide (../shared/seed) that built-in rules point at.
SCENARIOS = (
    "nologs", "rp-register", "components-enabled-not-working", "multi-tenant", "node-reboots",
    "failed-to-start", "updates-nodeployment", "machine-already-registered", "machine-unable-to-communicate",
    "unable-to-create-selfsigned-cert", "mw-exceeded", "hresult", "scenario-update-run-returns-failed-status",
    "patches-arent-installed", "machines-dont-install-updates",
    "i-know-updates-are-available-but-they-dont-show-as-available-on-my-machines",
    "updates-show-as-installed-but-i-cant-find-them-on-my-machine",
    "installing-updates-by-classification-on-linux", "kb2267602-is-consistently-missing",
)  # fmt: skip
STATUSES = ("preview", "stable", "deprecated", "removed")
REQUIRED = ("id", "title", "scenario", "severity", "cause", "resolution", "reference", "sql")
SEED_URL = "https://learn.microsoft.com/azure/automation/troubleshoot/update-management"
_ID = re.compile(r"^[A-Z]{2,6}[0-9]{3,5}$")


class RuleError(Exception):
    """A rule file that cannot be used: its path and the problem."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One classification rule, as written in its file."""

    id: str
    title: str
    scenario: str
    severity: str
    cause: str
    resolution: str
    reference: str
    sql: str
    path: str
    status: str = "stable"
    formats: tuple[str, ...] = ()
    why: str = ""

    @property
    def reference_url(self) -> str:
        """The troubleshooting guide's section this rule comes from.

        >>> load_rules()[0].reference_url.startswith(SEED_URL + "#")
        True
        """
        return self.reference if "://" in self.reference else f"{SEED_URL}#{self.reference}"

    @property
    def rank(self) -> int:
        """Higher is more severe: info 0 … critical 3."""
        return SEVERITIES.index(self.severity)


def builtin_dir() -> Path:
    """The rules shipped with umlogs."""
    return Path(str(files("umlogs.pipeline") / "rules"))


def load_rules(extra_dirs: tuple[Path, ...] = ()) -> list[Rule]:
    """The built-in rules plus every ``*.toml`` in ``extra_dirs``, sorted by id. Raises
    :class:`RuleError` for a malformed file or a duplicate id; SQL is checked by the engine."""
    rules = list(_builtin_rules())
    for folder in extra_dirs:
        if not folder.is_dir():
            raise RuleError(f"{folder}: not a directory of rule files")
        rules.extend(load_rule(path) for path in sorted(folder.glob("*.toml")))
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"{rule.path}: rule id {rule.id} is already used by {seen[rule.id]}")
        seen[rule.id] = rule.path
    return sorted((r for r in rules if r.status not in ("deprecated", "removed")), key=lambda r: r.id)


@functools.cache
def _builtin_rules() -> tuple[Rule, ...]:
    return tuple(load_rule(path) for path in sorted(builtin_dir().glob("*.toml")))


def load_rule(path: Path) -> Rule:
    """Read and check one rule file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise RuleError(f"{path}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise RuleError(f"{path}: not valid TOML: {error}") from None
    missing = [key for key in REQUIRED if not str(data.get(key, "")).strip()]
    if missing:
        raise RuleError(f"{path}: missing {', '.join(missing)}")
    if not _ID.match(str(data["id"])):
        raise RuleError(f"{path}: id {data['id']!r} is not like UM1001")
    if data["severity"] not in SEVERITIES:
        raise RuleError(f"{path}: severity {data['severity']!r} is not one of {', '.join(SEVERITIES)}")
    status = data.get("status", "stable")
    if status not in STATUSES:
        raise RuleError(f"{path}: status {status!r} is not one of {', '.join(STATUSES)}")
    unknown = set(data) - set(REQUIRED) - {"status", "formats", "why"}
    if unknown:
        raise RuleError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    return Rule(
        **{key: str(data[key]).strip() for key in REQUIRED},
        path=str(path),
        status=status,
        formats=tuple(data.get("formats", ())),
        why=str(data.get("why", "")).strip(),
    )


def describe(rule: Rule) -> str:
    """One rule in full, as ``umlogs rules ID`` prints it and docs/rules.md lists it (Markdown)."""
    parts = [
        f"## {rule.id}: {rule.title}",
        "",
        f"- severity: {rule.severity}",
        f"- scenario: {rule.scenario}",
        f"- formats: {', '.join(rule.formats) or 'any'}",
        f"- reference: {rule.reference_url}",
        "",
        "### Cause",
        "",
        rule.cause,
        "",
        "### Resolution",
        "",
        rule.resolution,
    ]
    if rule.why:
        parts += ["", "### Why this severity", "", rule.why]
    parts += ["", "### Query", "", "```sql", rule.sql, "```"]
    return "\n".join(parts)
