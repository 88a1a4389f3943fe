"""The docstring examples of every module run (sqlglot's habit): documentation that cannot rot."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import umlogs.grammars
import umlogs.parsers
import umlogs.pipeline

MODULES = sorted(
    {
        info.name
        for package in (umlogs.parsers, umlogs.pipeline)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
        if not info.name.endswith(".cli")
    }
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
