"""Progressive lockout after repeated failures, per account and per client IP, kept in Redis.

After ``threshold`` failures a key is locked for ``base`` seconds; each further lock doubles the time,
up to ``max``. Failure counts and the lock level are forgotten after ``window`` seconds without
failures. State lives in Redis (not in the process), so a restart of the service unlocks nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from services.identity.accounts import config
from shared.errors import TooManyRequests

log = structlog.get_logger("identity.lockout")
PREFIX = "dncity:identity:lockout:"

# One round trip, atomic: count the failure; on reaching the threshold, raise the lock level, lock for
# base * 2^(level-1) (capped) and start counting again.
_FAIL_SCRIPT = """
local failures = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if failures >= tonumber(ARGV[1]) then
  local level = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  local ttl = tonumber(ARGV[2]) * (2 ^ (level - 1))
  if ttl > tonumber(ARGV[3]) then ttl = tonumber(ARGV[3]) end
  redis.call('SET', KEYS[3], level, 'EX', math.floor(ttl))
  redis.call('DEL', KEYS[1])
  return math.floor(ttl)
end
return 0
"""


@dataclass(frozen=True)
class Subject:
    """What a failure is counted against: an account (or an unknown login), or a client IP."""

    key: str
    threshold: int


def account_subject(sub: str | None, login: str) -> Subject:
    # An unknown login is counted too (by a hash, never the login itself), so lockout behaves the same
    # for existing and non-existing accounts and reveals nothing.
    ident = sub or "login-" + hashlib.sha256(login.encode()).hexdigest()[:32]
    return Subject(f"acct:{ident}", config.settings().lockout_account_threshold)


def ip_subject(ip: str | None) -> Subject | None:
    if not ip:
        return None
    return Subject(f"ip:{ip}", config.settings().lockout_ip_threshold)


def _keys(subject: Subject) -> tuple[str, str, str]:
    base = PREFIX + subject.key
    return base + ":failures", base + ":level", base + ":locked"


def locked_error(retry_after: int) -> TooManyRequests:
    return TooManyRequests(
        "Too many failed attempts; try again later",
        code="account_locked",
        headers={"Retry-After": str(max(1, retry_after))},
        retry_after_s=max(1, retry_after),
    )


async def ensure_not_locked(redis: Redis | None, *subjects: Subject | None) -> None:
    """Raise 429 account_locked with Retry-After while any of the subjects is locked."""
    if redis is None:
        return
    for subject in subjects:
        if subject is None:
            continue
        ttl = await redis.ttl(_keys(subject)[2])
        if ttl and ttl > 0:
            raise locked_error(int(ttl))


async def register_failure(redis: Redis | None, *subjects: Subject | None) -> int:
    """Count a failure against each subject; returns the longest lock it started (0 when none)."""
    if redis is None:
        log.warning("lockout_without_redis")
        return 0
    cfg = config.settings()
    longest = 0
    for subject in subjects:
        if subject is None:
            continue
        ttl = await redis.eval(
            _FAIL_SCRIPT,
            3,
            *_keys(subject),
            subject.threshold,
            cfg.lockout_base_s,
            cfg.lockout_max_s,
            cfg.lockout_window_s,
        )
        if int(ttl):
            log.info("lockout_started", subject_kind=subject.key.split(":", 1)[0], seconds=int(ttl))
        longest = max(longest, int(ttl))
    return longest


async def clear_failures(redis: Redis | None, subject: Subject) -> None:
    """After a success: forget the failure count (the lock level decays with the window)."""
    if redis is not None:
        await redis.delete(_keys(subject)[0])


async def reset(redis: Redis | None, subject: Subject) -> None:
    """After a password reset proven by SMS: the account starts afresh."""
    if redis is not None:
        await redis.delete(*_keys(subject))
