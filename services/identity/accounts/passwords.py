"""Argon2id password hashing (off the event loop) and the minimum-strength policy."""

from __future__ import annotations

import asyncio
import gzip
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.identity.accounts import config

# OWASP's Password Storage Cheat Sheet minimum for Argon2id: m=19 MiB, t=2, p=1. About 20 ms per hash on
# one core here (argon2-cffi's RFC 9106 defaults, t=3 m=64 MiB p=4, cost ~250 ms: 4 sign-ins/s per core).
# Stored hashes carry their parameters; check_needs_rehash upgrades old ones at the next sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the login is unknown, so an unknown login costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("dncity-no-such-account")
_COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt.gz"
MAX_LENGTH = 128


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(_COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip())


def policy_problem(password: str, *, personal: tuple[str | None, ...] = ()) -> str | None:
    """Why a new password is refused, or None. ``personal`` holds the account's own identifiers."""
    minimum = config.settings().password_min_length
    if len(password) < minimum:
        return f"the password needs at least {minimum} characters"
    if len(password) > MAX_LENGTH:
        return f"the password may have at most {MAX_LENGTH} characters"
    if password.lower() in common_passwords():
        return "this password is too common; choose another"
    digits = "".join(c for c in password if c.isdigit())
    for value in personal:
        if value and (password == value or (len(value) >= 9 and value.lstrip("+") in digits)):
            return "the password must not contain your phone number or ID number"
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Constant-cost check; a missing hash (unknown or erased account) still spends the time."""
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
