"""Signing keys: creation, rotation and the JWKS.

Rotation publishes the next key before it signs anything, so verifiers that cached the JWKS already
know it when the first token signed by it arrives; a retired key stays published until every token it
signed has expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.keys.models import SigningKey
from shared.db import utcnow

ACCESS_TOKEN_ALG = "ES256"  # noqa: S105  fast to sign: client-credentials throughput depends on it
ID_TOKEN_ALG = "RS256"  # noqa: S105  what OpenID Connect requires every relying party to support
ALGORITHMS = (ACCESS_TOKEN_ALG, ID_TOKEN_ALG)


def _kek(secret: str) -> AESGCM:
    return AESGCM(hashlib.sha256(("dncity-signing-keys:" + secret).encode()).digest())


def _encrypt(pem: bytes, secret: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + _kek(secret).encrypt(nonce, pem, b"signing-key")


def _decrypt(blob: bytes, secret: str) -> bytes:
    return _kek(secret).decrypt(blob[:12], blob[12:], b"signing-key")


def _generate(alg: str) -> tuple[Any, dict[str, Any]]:
    private: Any
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(alg)
    algo = jwt.get_algorithm_by_name(alg)
    public_jwk = json.loads(algo.to_jwk(private.public_key()))
    return private, public_jwk


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, used as the kid."""
    members = {k: jwk[k] for k in sorted(jwk) if k in ("crv", "e", "kty", "n", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def create_key(session: AsyncSession, alg: str, status: str, secret: str) -> SigningKey:
    private, public_jwk = _generate(alg)
    kid = _thumbprint(public_jwk)
    public_jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = utcnow()
    key = SigningKey(
        kid=kid,
        alg=alg,
        status=status,
        public_jwk=public_jwk,
        private_key_encrypted=_encrypt(pem, secret),
        created_at=now,
        activated_at=now if status == "active" else None,
    )
    session.add(key)
    await session.flush()
    return key


async def ensure_keys(session: AsyncSession, secret: str) -> None:
    """First start: one active and one next key per algorithm."""
    for alg in ALGORITHMS:
        rows = (await session.execute(select(SigningKey).where(SigningKey.alg == alg))).scalars().all()
        statuses = {k.status for k in rows}
        if "active" not in statuses:
            await create_key(session, alg, "active", secret)
        if "next" not in statuses:
            await create_key(session, alg, "next", secret)


async def rotate(session: AsyncSession, secret: str, max_token_lifetime: timedelta) -> dict[str, str]:
    """next → active, active → retired (published until its tokens expire), a new next key."""
    await ensure_keys(session, secret)
    now = utcnow()
    promoted: dict[str, str] = {}
    for alg in ALGORITHMS:
        keys = (
            (await session.execute(select(SigningKey).where(SigningKey.alg == alg).with_for_update())).scalars().all()
        )
        for key in keys:
            if key.status == "active":
                key.status, key.retired_at = "retired", now
                key.unpublish_after = now + max_token_lifetime
        for key in keys:
            if key.status == "next":
                key.status, key.activated_at = "active", now
                promoted[alg] = key.kid
        await create_key(session, alg, "next", secret)
    return promoted


async def jwks(session: AsyncSession) -> dict[str, Any]:
    now = utcnow()
    rows = (
        (
            await session.execute(
                select(SigningKey)
                .where(or_(SigningKey.unpublish_after.is_(None), SigningKey.unpublish_after > now))
                .order_by(SigningKey.created_at)
            )
        )
        .scalars()
        .all()
    )
    return {"keys": [row.public_jwk for row in rows]}


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    alg: str
    private_key: Any  # a loaded cryptography key: parsing PEM per token would dominate signing time


class Keyring:
    """The active private keys, cached in memory; reloaded when rotation changes them."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._active: dict[str, ActiveKey] = {}
        self._published: dict[str, Any] = {"keys": []}

    async def load(self, session: AsyncSession) -> None:
        self._published = await jwks(session)
        rows = (await session.execute(select(SigningKey).where(SigningKey.status == "active"))).scalars().all()
        self._active = {
            row.alg: ActiveKey(
                row.kid,
                row.alg,
                serialization.load_pem_private_key(_decrypt(row.private_key_encrypted, self.secret), None),
            )
            for row in rows
        }

    def published(self) -> dict[str, Any]:
        """The JWKS as of the last load: identity verifies its own tokens without a database round trip."""
        return self._published

    def active(self, alg: str) -> ActiveKey:
        return self._active[alg]

    def sign(self, claims: dict[str, Any], *, alg: str, typ: str) -> str:
        key = self.active(alg)
        return jwt.encode(claims, key.private_key, algorithm=alg, headers={"kid": key.kid, "typ": typ})
