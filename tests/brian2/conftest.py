"""Brian2 tests: silence Brian2's dependency chatter (pyparsing deprecations, float32
overflow in its own lastspike check) so real warnings stay visible."""
from __future__ import annotations

import pytest

_QUIET = (
    "ignore:.*parseAll.*:DeprecationWarning",
    "ignore:.*'parseAll' argument is deprecated.*",
    "ignore:overflow encountered in cast:RuntimeWarning",
    "ignore:__array_wrap__ must accept context:DeprecationWarning",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/brian2/" in str(item.fspath).replace("\\", "/"):
            for rule in _QUIET:
                item.add_marker(pytest.mark.filterwarnings(rule))
