"""Fixtures of the robustness suite: the fuzz targets (fuzz/targets.py) are importable as ``targets``,
so the tests replay what the fuzzers found without atheris."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))
