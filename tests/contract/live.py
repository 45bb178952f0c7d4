"""The deployment under test, set from ``--base-url`` by conftest.py before test modules are imported
(schemathesis builds one test per operation at import time, so the schema must be known then)."""

from __future__ import annotations

BASE_URL: str | None = None
