"""Stripe-style webhook signatures: header ``t=<unix>,v1=<hex HMAC-SHA256 of "t.raw_body">``.

Used by the sandbox provider to sign and by the payments service to verify; the comparison is
constant-time and the timestamp must be within the tolerance (replay protection).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Webhook-Signature"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale or does not match."""


def compute(secret: str, timestamp: int, raw_body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + raw_body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, raw_body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``raw_body`` signed now (or at ``timestamp``)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={compute(secret, ts, raw_body)}"


def verify(
    secret: str,
    header: str | None,
    raw_body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check the header against the raw body; returns the signed timestamp or raises SignatureError."""
    if not header:
        raise SignatureError("missing signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed timestamp") from None
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("malformed signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError("timestamp outside the tolerance")
    expected = compute(secret, timestamp, raw_body)
    # Several v1 values are allowed (secret rotation); each compared in constant time.
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature mismatch")
    return timestamp
