"""Shared fixtures: where the samples and the real corpus (../shared, beside the checkout) live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skips the test when it is missing, except in CI (CI=true), where it fails."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must run with ../shared beside the checkout")
        pytest.skip(f"{path} is missing")
    return path


def corpus_files(kind: str) -> list[Path]:
    """Every real log of one format in ../shared/corpus/<kind>."""
    return sorted(p for p in shared_path("corpus", kind).iterdir() if p.suffix == ".log")


# Hypothesis profiles: `ci` (the default: Hypothesis' own 100 examples, no deadline) keeps the suite
# within minutes on two cores; `long` (HYPOTHESIS_PROFILE=long) runs 5,000 examples per property, for
# a night or before a release. Tests that set their own max_examples keep it; tests/robustness leaves
# it to the profile.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
