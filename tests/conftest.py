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
