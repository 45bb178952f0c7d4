"""The sandbox provider's own state: a SQLite database used from one dedicated thread.

Every operation is one function run on that thread inside one transaction, so operations are atomic
and serialized (like a provider's own database) without blocking the event loop. With a file the
state survives restarts; ":memory:" is for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    return_url TEXT,
    created INTEGER NOT NULL,
    day TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    confirm_at REAL,
    cancellation_reason TEXT,
    amount_received INTEGER NOT NULL DEFAULT 0,
    amount_refunded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_intents_day ON intents(day, seq);
CREATE INDEX IF NOT EXISTS ix_intents_status ON intents(status);
CREATE TABLE IF NOT EXISTS refunds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    payment_intent TEXT NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    metadata TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS ix_deliveries_due ON deliveries(delivered_at, next_attempt_at);
"""


class ApiError(Exception):
    """A Stripe-like error answer."""

    def __init__(self, status: int, code: str, message: str, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.type = status, code, message, type_

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.type, "code": self.code, "message": self.message}}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def vn_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(VN_TZ).date().isoformat()


def request_hash(path: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((path + json.dumps(body, sort_keys=True)).encode()).hexdigest()


class Store:
    def __init__(self, path: str, public_url: str) -> None:
        self.path = path
        self.public_url = public_url.rstrip("/")
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-db")
        self.conn: sqlite3.Connection | None = None

    # --- plumbing --------------------------------------------------------------------------------------

    async def open(self) -> None:
        def connect() -> None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self.conn = conn

        await self._run(connect)

    async def close(self) -> None:
        def close() -> None:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

        await self._run(close)
        self.executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one transaction on the database thread."""

        def run() -> T:
            assert self.conn is not None
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return result

        return await self._run(run)

    # --- objects ---------------------------------------------------------------------------------------

    def intent_json(self, row: sqlite3.Row) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": row["id"],
            "object": "payment_intent",
            "amount": row["amount"],
            "amount_received": row["amount_received"],
            "amount_refunded": row["amount_refunded"],
            "currency": row["currency"],
            "status": row["status"],
            "description": row["description"],
            "metadata": json.loads(row["metadata"]),
            "return_url": row["return_url"],
            "created": row["created"],
            "expires_at": row["expires_at"],
            "cancellation_reason": row["cancellation_reason"],
            "next_action": None,
        }
        if row["status"] == "requires_action":
            data["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": f"{self.public_url}/wallet/{row['id']}", "return_url": row["return_url"]},
            }
        return data

    @staticmethod
    def refund_json(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "object": "refund",
            "payment_intent": row["payment_intent"],
            "amount": row["amount"],
            "status": row["status"],
            "reason": row["reason"],
            "metadata": json.loads(row["metadata"]),
            "created": row["created"],
        }

    @staticmethod
    def get_intent_row(conn: sqlite3.Connection, intent_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM intents WHERE id = ?", (intent_id,)).fetchone()
        if row is None:
            raise ApiError(404, "resource_missing", f"No such payment_intent: '{intent_id}'")
        return row  # type: ignore[no-any-return]

    def emit(self, conn: sqlite3.Connection, type_: str, obj: dict[str, Any]) -> None:
        event_id = new_id("evt")
        payload = {
            "id": event_id,
            "object": "event",
            "type": type_,
            "created": int(time.time()),
            "data": {"object": obj},
        }
        conn.execute(
            "INSERT INTO deliveries (event_id, type, payload, next_attempt_at) VALUES (?, ?, ?, ?)",
            (event_id, type_, json.dumps(payload), time.time()),
        )

    def set_status(
        self, conn: sqlite3.Connection, row: sqlite3.Row, status: str, event: str | None, **extra: Any
    ) -> dict[str, Any]:
        assignments = {"status": status, **extra}
        sets = ", ".join(f"{k} = ?" for k in assignments)
        conn.execute(f"UPDATE intents SET {sets} WHERE id = ?", (*assignments.values(), row["id"]))  # noqa: S608
        intent = self.intent_json(self.get_intent_row(conn, row["id"]))
        if event:
            self.emit(conn, event, intent)
        return intent

    def expire_if_due(self, conn: sqlite3.Connection, row: sqlite3.Row) -> sqlite3.Row:
        if row["status"] == "requires_action" and time.time() >= row["expires_at"]:
            self.set_status(conn, row, "canceled", "payment_intent.canceled", cancellation_reason="expired")
            return self.get_intent_row(conn, row["id"])
        return row

    # --- idempotency -----------------------------------------------------------------------------------

    def idempotent(
        self,
        conn: sqlite3.Connection,
        key: str | None,
        path: str,
        body: dict[str, Any],
        act: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Stripe's semantics: a key replays the first answer; with other parameters it is an error."""
        if not key:
            raise ApiError(400, "idempotency_key_required", "Every POST needs an Idempotency-Key header")
        digest = request_hash(path, body)
        row = conn.execute("SELECT request_hash, body FROM idempotency WHERE key = ?", (key,)).fetchone()
        if row is not None:
            if row["request_hash"] != digest:
                raise ApiError(
                    400,
                    "idempotency_key_in_use",
                    "Keys for idempotent requests can only be used with the same parameters",
                    "idempotency_error",
                )
            return json.loads(row["body"])  # type: ignore[no-any-return]
        result = act()
        conn.execute(
            "INSERT INTO idempotency (key, request_hash, status, body) VALUES (?, ?, 200, ?)",
            (key, digest, json.dumps(result)),
        )
        return result

    # --- operations ------------------------------------------------------------------------------------

    async def create_intent(self, key: str | None, body: dict[str, Any], default_expires_in_s: int) -> dict[str, Any]:
        amount = body.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise ApiError(400, "parameter_invalid_integer", "amount must be a positive integer")
        if body.get("currency") != "vnd":
            raise ApiError(400, "currency_unsupported", "Only vnd is supported")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ApiError(400, "parameter_invalid", "metadata must be an object")
        expires_in = body.get("expires_in_s") or default_expires_in_s
        if not isinstance(expires_in, int) or expires_in <= 0:
            raise ApiError(400, "parameter_invalid_integer", "expires_in_s must be a positive integer")

        def act(conn: sqlite3.Connection) -> dict[str, Any]:
            def make() -> dict[str, Any]:
                intent_id, now = new_id("pi"), time.time()
                conn.execute(
                    "INSERT INTO intents (id, amount, currency, status, description, metadata, return_url, "
                    "created, day, expires_at) VALUES (?, ?, 'vnd', 'requires_action', ?, ?, ?, ?, ?, ?)",
                    (
                        intent_id,
                        amount,
                        str(body.get("description") or ""),
                        json.dumps({str(k): str(v) for k, v in metadata.items()}),
                        body.get("return_url"),
                        int(now),
                        vn_day(now),
                        int(now) + expires_in,
                    ),
                )
                return self.intent_json(self.get_intent_row(conn, intent_id))

            return self.idempotent(conn, key, "/v1/payment_intents", body, make)

        return await self.tx(act)

    async def retrieve_intent(self, intent_id: str) -> dict[str, Any]:
        return await self.tx(
            lambda conn: self.intent_json(self.expire_if_due(conn, self.get_intent_row(conn, intent_id)))
        )

    async def cancel_intent(self, key: str | None, intent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        reason = str(body.get("cancellation_reason") or "requested_by_customer")

        def act(conn: sqlite3.Connection) -> dict[str, Any]:
            def cancel() -> dict[str, Any]:
                row = self.expire_if_due(conn, self.get_intent_row(conn, intent_id))
                if row["status"] == "canceled":
                    return self.intent_json(row)
                if row["status"] not in ("requires_action", "processing"):
                    raise ApiError(
                        400,
                        "payment_intent_unexpected_state",
                        f"You cannot cancel this PaymentIntent because it has a status of {row['status']}",
                    )
                return self.set_status(conn, row, "canceled", "payment_intent.canceled", cancellation_reason=reason)

            return self.idempotent(conn, key, f"/v1/payment_intents/{intent_id}/cancel", body, cancel)

        return await self.tx(act)

    async def decide(
        self, intent_id: str, approve: bool, *, decline_all: bool, confirm_delay_s: float
    ) -> dict[str, Any]:
        """The payer's decision on the wallet page."""

        def act(conn: sqlite3.Connection) -> dict[str, Any]:
            row = self.expire_if_due(conn, self.get_intent_row(conn, intent_id))
            if row["status"] != "requires_action":
                raise ApiError(409, "payment_intent_unexpected_state", f"This payment is {row['status']}")
            if not approve or decline_all:
                return self.set_status(conn, row, "failed", "payment_intent.payment_failed")
            if confirm_delay_s > 0:
                # Mobile money often confirms asynchronously after the OTP: processing first.
                return self.set_status(
                    conn, row, "processing", "payment_intent.processing", confirm_at=time.time() + confirm_delay_s
                )
            return self.set_status(conn, row, "succeeded", "payment_intent.succeeded", amount_received=row["amount"])

        return await self.tx(act)

    async def sweep(self) -> int:
        """Confirm delayed approvals and expire lapsed intents; returns how many changed."""

        def act(conn: sqlite3.Connection) -> int:
            now = time.time()
            changed = 0
            for row in conn.execute(
                "SELECT * FROM intents WHERE status = 'processing' AND confirm_at <= ?", (now,)
            ).fetchall():
                self.set_status(
                    conn, row, "succeeded", "payment_intent.succeeded", amount_received=row["amount"], confirm_at=None
                )
                changed += 1
            for row in conn.execute(
                "SELECT * FROM intents WHERE status = 'requires_action' AND expires_at <= ?", (now,)
            ).fetchall():
                self.expire_if_due(conn, row)
                changed += 1
            return changed

        return await self.tx(act)

    async def create_refund(self, key: str | None, body: dict[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        intent_id = str(body.get("payment_intent") or "")
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0):
            raise ApiError(400, "parameter_invalid_integer", "amount must be a positive integer")
        metadata = body.get("metadata") or {}

        def act(conn: sqlite3.Connection) -> dict[str, Any]:
            def refund() -> dict[str, Any]:
                row = self.get_intent_row(conn, intent_id)
                if row["status"] != "succeeded":
                    raise ApiError(400, "charge_not_refundable", f"This payment is {row['status']}")
                remaining = row["amount_received"] - row["amount_refunded"]
                value = remaining if amount is None else amount
                if value <= 0 or value > remaining:
                    raise ApiError(
                        400, "amount_too_large", f"Refund amount ({value}) is greater than what remains ({remaining})"
                    )
                refund_id = new_id("re")
                conn.execute(
                    "INSERT INTO refunds (id, payment_intent, amount, status, reason, metadata, created) "
                    "VALUES (?, ?, ?, 'succeeded', ?, ?, ?)",
                    (
                        refund_id,
                        intent_id,
                        value,
                        str(body.get("reason") or ""),
                        json.dumps({str(k): str(v) for k, v in metadata.items()}),
                        int(time.time()),
                    ),
                )
                conn.execute(
                    "UPDATE intents SET amount_refunded = amount_refunded + ? WHERE id = ?", (value, intent_id)
                )
                obj = self.refund_json(conn.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone())
                self.emit(conn, "refund.succeeded", obj)
                return obj

            return self.idempotent(conn, key, "/v1/refunds", body, refund)

        return await self.tx(act)

    async def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        def act(conn: sqlite3.Connection) -> dict[str, Any]:
            row = conn.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
            if row is None:
                raise ApiError(404, "resource_missing", f"No such refund: '{refund_id}'")
            return self.refund_json(row)

        return await self.tx(act)

    async def list_intents(self, day: str, limit: int, starting_after: str | None) -> dict[str, Any]:
        def act(conn: sqlite3.Connection) -> dict[str, Any]:
            after = 0
            if starting_after:
                after = self.get_intent_row(conn, starting_after)["seq"]
            rows = conn.execute(
                "SELECT * FROM intents WHERE day = ? AND seq > ? ORDER BY seq LIMIT ?", (day, after, limit + 1)
            ).fetchall()
            return {
                "object": "list",
                "data": [self.intent_json(r) for r in rows[:limit]],
                "has_more": len(rows) > limit,
            }

        return await self.tx(act)

    # --- webhook deliveries ------------------------------------------------------------------------------

    async def due_deliveries(self, max_attempts: int, limit: int = 100) -> list[sqlite3.Row]:
        return await self.tx(
            lambda conn: conn.execute(
                "SELECT * FROM deliveries WHERE delivered_at IS NULL AND attempts < ? AND next_attempt_at <= ? "
                "ORDER BY seq LIMIT ?",
                (max_attempts, time.time(), limit),
            ).fetchall()
        )

    async def delivery_result(
        self, seq: int, ok: bool, error: str | None, backoff_base: float, backoff_max: float
    ) -> None:
        def act(conn: sqlite3.Connection) -> None:
            if ok:
                conn.execute(
                    "UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1 WHERE seq = ?", (time.time(), seq)
                )
                return
            attempts = conn.execute("SELECT attempts FROM deliveries WHERE seq = ?", (seq,)).fetchone()[0] + 1
            delay = min(backoff_max, backoff_base * (2 ** (attempts - 1)))
            conn.execute(
                "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE seq = ?",
                (attempts, time.time() + delay, (error or "")[:500], seq),
            )

        await self.tx(act)

    async def deliveries(self) -> list[dict[str, Any]]:
        rows = await self.tx(lambda conn: conn.execute("SELECT * FROM deliveries ORDER BY seq").fetchall())
        return [
            {
                "event_id": r["event_id"],
                "type": r["type"],
                "attempts": r["attempts"],
                "delivered": r["delivered_at"] is not None,
                "last_error": r["last_error"],
            }
            for r in rows
        ]
