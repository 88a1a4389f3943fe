"""Generated documentation: docs/rules.md from the rule files. Run ``python -m umlogs.pipeline.docs``
to regenerate; a test fails when the committed page is stale.

>>> from umlogs.pipeline.rules import load_rules
>>> rules_markdown(load_rules()).startswith("# Rules")
True
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from umlogs.pipeline.render import markdown_table
from umlogs.pipeline.rules import Rule, describe, load_rules


def rules_markdown(rules: Sequence[Rule]) -> str:
    """The rule catalog page: an index table, then every rule in full."""
    index = markdown_table(
        ["id", "severity", "scenario", "title"], [[f"[{r.id}](#{_anchor(r)})", r.severity, r.scenario, r.title] for r in rules]
    )
    head = (
        "# Rules\n\n"
        "Generated from `pipeline/rules/*.toml` by `python -m umlogs.pipeline.docs`; do not edit by hand.\n"
        "`umlogs rules ID` prints the same text. Each rule's `sql` runs in DuckDB over the `events` view\n"
        "(docs/events.md), the `failures` view and the HRESULT `catalog` table.\n\n"
    )
    return head + index + "\n\n" + "\n\n".join(describe(r) for r in rules) + "\n"


def _anchor(rule: Rule) -> str:
    text = f"{rule.id}: {rule.title}".lower()
    return "".join(ch for ch in text.replace(" ", "-") if ch.isalnum() or ch in "-_")


def main(out: Path) -> None:
    out.write_text(rules_markdown(load_rules()), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/rules.md"))
