"""Personal-data rights: the registry other identity modules extend.

- ``EXPORTERS``: ``async fn(session, sub) -> dict``; each result is merged into ``GET /v1/identity/me/export``
  (use a distinct top-level key, e.g. ``{"consents": [...]}``).
- ``ERASERS``: ``async fn(session, sub) -> None``; each runs inside the deletion transaction of
  ``DELETE /v1/identity/me`` (delete or pseudonymise what the module holds about ``sub``).

Register with ``EXPORTERS.append(fn)`` / ``ERASERS.append(fn)`` or the ``@exporter`` / ``@eraser``
decorators, in a module that ``services/identity/app.py`` imports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Exporter = Callable[[AsyncSession, str], Awaitable[dict[str, Any]]]
Eraser = Callable[[AsyncSession, str], Awaitable[None]]

EXPORTERS: list[Exporter] = []
ERASERS: list[Eraser] = []


def exporter(fn: Exporter) -> Exporter:
    if fn not in EXPORTERS:
        EXPORTERS.append(fn)
    return fn


def eraser(fn: Eraser) -> Eraser:
    if fn not in ERASERS:
        ERASERS.append(fn)
    return fn


__all__ = ["ERASERS", "EXPORTERS", "Eraser", "Exporter", "eraser", "exporter"]
