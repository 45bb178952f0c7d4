"""Keyed hashes of one-time and recovery codes, and encryption of TOTP secrets at rest."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.identity.accounts import config


def _subkey(label: str) -> bytes:
    return hmac.new(config.settings().account_secret_key.encode(), label.encode(), hashlib.sha256).digest()


def code_hmac(code: str, *, context: str) -> str:
    """HMAC-SHA256 of a code bound to its context (the code row or account), hex."""
    return hmac.new(_subkey("dncity-codes"), f"{context}:{code}".encode(), hashlib.sha256).hexdigest()


def code_matches(code: str, stored: str, *, context: str) -> bool:
    return hmac.compare_digest(code_hmac(code, context=context), stored)


def new_sms_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def new_recovery_code() -> str:
    """Ten characters from an unambiguous alphabet, shown as xxxxx-xxxxx (about 50 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_recovery_code(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def encrypt_secret(value: str, *, account_id: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(_subkey("dncity-totp")).encrypt(nonce, value.encode(), account_id.encode())


def decrypt_secret(blob: bytes, *, account_id: str) -> str:
    return AESGCM(_subkey("dncity-totp")).decrypt(blob[:12], blob[12:], account_id.encode()).decode()


def sign_invitation(payload: str) -> str:
    """An HMAC over an invitation's fields (dependent, invitee phone, expiry), URL-safe."""
    return hmac.new(_subkey("dncity-guardian-invitations"), payload.encode(), hashlib.sha256).hexdigest()[:32]
