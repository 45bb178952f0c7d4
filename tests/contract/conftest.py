"""Contract-test options and fixtures.

``--base-url`` points the live-deployment checks (test_live_deployment.py) at a running platform, as
``make contract BASE_URL=...`` does. Without it those tests are *deselected* (not skipped): they need a
deployment the normal suite does not start, and pytest's summary says so.
"""

from __future__ import annotations

import pytest

LIVE_MODULE = "test_live_deployment.py"
DESELECTED_REASON = (
    "live-deployment contract tests deselected: they need a running platform; "
    "run `make contract BASE_URL=http://host:port` (pytest --base-url=...)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--base-url",
        action="store",
        default=None,
        help="Base URL of a running deployment (its gateway) for tests/contract/test_live_deployment.py",
    )


def base_url_option(config: pytest.Config) -> str | None:
    # The option exists only when this conftest was loaded at start-up; a plain `pytest` run may load it
    # later, during collection, and then nobody can have passed it.
    value = config.getoption("--base-url", default=None)
    return str(value).rstrip("/") if value else None


def pytest_configure(config: pytest.Config) -> None:
    from tests.contract import live

    live.BASE_URL = base_url_option(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _name_operation_items(items)
    _mark_known_defects(items)
    if base_url_option(config):
        return
    live = [item for item in items if item.path.name == LIVE_MODULE]
    if not live:
        return
    items[:] = [item for item in items if item.path.name != LIVE_MODULE]
    config.hook.pytest_deselected(items=live)
    config.stash[_deselected_key] = len(live)


_deselected_key = pytest.StashKey[int]()


def _name_operation_items(items: list[pytest.Item]) -> None:
    """Give each schemathesis item its own node id (``test[service][METHOD /path]``).

    schemathesis 4.32 names the items per operation but, under pytest 9, leaves every one with the test
    function's node id, so reports, ``--lf`` and ``--deselect`` could not tell operations apart.
    """
    for item in items:
        if type(item).__name__ == "SchemathesisFunction" and item.parent is not None:
            wanted = f"{item.parent.nodeid}::{item.name}"
            if item.nodeid == wanted:
                continue
            try:  # pytest >= 9.1 keeps a structured id
                from _pytest.nodeid import NodeId

                item._id = NodeId.parse(wanted)  # type: ignore[attr-defined]
            except ImportError:  # pragma: no cover - older pytest
                item._nodeid = wanted


def _mark_known_defects(items: list[pytest.Item]) -> None:
    """Known contract defects of other code, recorded in KNOWN_DEFECTS, are xfails with their reason:
    XFAIL in every run's summary, XPASS once fixed (then the entry is deleted)."""
    from tests.contract.known_defects import KNOWN_DEFECTS

    for item in items:
        for key, reason in KNOWN_DEFECTS.items():
            if item.name.endswith(key):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    count = config.stash.get(_deselected_key, 0)
    if count:
        terminalreporter.write_line(f"{count} {DESELECTED_REASON}")


@pytest.fixture(scope="session")
def base_url(pytestconfig: pytest.Config) -> str:
    url = base_url_option(pytestconfig)
    if not url:  # pragma: no cover - collection deselects these tests first
        raise pytest.UsageError("--base-url is required for the live-deployment contract tests")
    return url
