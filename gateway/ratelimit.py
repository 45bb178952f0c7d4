"""Rate limits in Redis: GCRA (the generic cell rate algorithm) for every dimension of a request, and the
per-person cap on active booking holds, decided atomically by one Lua script in one round trip.

GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request. With emission
interval ``T = period / rate`` and tolerance ``tau = T * burst``, a request at ``now`` is allowed when
``max(TAT, now) + T - tau <= now``; then TAT becomes ``max(TAT, now) + T``. A request is checked in
every dimension of its class (person, client, IP) and counted in all of them only if all allow it.

Headers follow draft-ietf-httpapi-ratelimit-headers-10 (structured fields):
``RateLimit-Policy: "read-sub";q=300;w=3`` (quota q requests per w seconds, i.e. the burst and how long a
full refill takes) and ``RateLimit: "read-sub";r=299;t=1`` for the tightest dimension (r remaining, t
seconds until the quota is fully restored); a 429 adds ``Retry-After`` (seconds).

When Redis is unreachable (or slower than ``redis_timeout_s``) routes whose class is ``fail_closed``
(sign-in, one-time codes, tokens, payments and bookings) answer 503; all others are let through
without headers. After a failure Redis is not asked again for ``redis_retry_s``.

Active holds: a booking POST (``policy.holds``) adds a member (its Idempotency-Key, else the request
id) to the person's sorted set scored by when the hold lapses (``hold_window_s``); members past their
score are dropped first, and at ``max_active_holds`` live members the booking is refused with 429
``too_many_active_holds``. A booking the service refuses (non-2xx) is removed again, so only holds the
service really created count. A retry with the same Idempotency-Key does not count twice.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import structlog

from gateway.redislua import LuaScript, RedisReplyError, batched
from gateway.routes import RATE_CLASSES, RateClass
from shared.observability import current_request_id
from shared.redis import create_redis

log = structlog.get_logger("gateway.ratelimit")

GCRA_LUA = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local new_tats = {}
local worst_retry, worst_idx = 0, 0
local min_remaining, min_idx, min_reset = -1, 1, 0
for i = 1, n do
  local T = tonumber(ARGV[1 + 2 * i])
  local tau = tonumber(ARGV[2 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + T
  local allow_at = new_tat - tau
  if allow_at > now then
    if allow_at - now > worst_retry then worst_retry, worst_idx = allow_at - now, i end
  else
    new_tats[i] = new_tat
    local remaining = math.floor((tau - (new_tat - now)) / T)
    if min_remaining < 0 or remaining < min_remaining then
      min_remaining, min_idx, min_reset = remaining, i, new_tat - now
    end
  end
end
if worst_idx > 0 then
  return {0, 1, math.ceil(worst_retry), worst_idx, 0, math.ceil(worst_retry)}
end
local h = 3 + 2 * n
local hold_cap = tonumber(ARGV[h])
if hold_cap > 0 then
  local hkey = KEYS[n + 1]
  local member = ARGV[h + 1]
  redis.call('ZREMRANGEBYSCORE', hkey, '-inf', now)
  if not redis.call('ZSCORE', hkey, member) then
    if redis.call('ZCARD', hkey) >= hold_cap then
      local first = redis.call('ZRANGE', hkey, 0, 0, 'WITHSCORES')
      local wait = math.ceil(tonumber(first[2]) - now)
      return {0, 2, wait, 0, 0, wait}
    end
    redis.call('ZADD', hkey, now + tonumber(ARGV[h + 2]), member)
    redis.call('PEXPIRE', hkey, math.ceil(tonumber(ARGV[h + 2])))
  end
end
for i = 1, n do
  redis.call('SET', KEYS[i], new_tats[i], 'PX', math.ceil(new_tats[i] - now) + 1000)
end
return {1, 0, 0, min_idx, min_remaining, math.ceil(min_reset)}
"""


def configured_classes(overrides: dict[str, dict[str, float]]) -> dict[str, RateClass]:
    """The table's classes with settings' changes applied (rate, period_s, burst per class)."""
    classes = dict(RATE_CLASSES)
    for name, changes in overrides.items():
        if name not in classes:
            raise ValueError(f"unknown rate-limit class {name!r}; known: {', '.join(classes)}")
        unknown = set(changes) - {"rate", "period_s", "burst"}
        if unknown:
            raise ValueError(f"rate-limit class {name!r}: unknown keys {sorted(unknown)}")
        classes[name] = replace(classes[name], **changes)  # type: ignore[arg-type]
    return classes


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    headers: list[tuple[bytes, bytes]]
    retry_after_s: int = 0
    reason: str = ""  # "rate_limited" | "too_many_active_holds" | "rate_limiter_unavailable"


ALLOW_NO_HEADERS = Decision(True, [])


@dataclass(slots=True)
class Pending:
    """A check sent to Redis whose answer has not been read yet."""

    rate_class: RateClass
    dims: list[tuple[_Dim, str]]
    keys: list[str]
    args: list[float | int | str]
    future: asyncio.Future[Any] | None  # None: no connection yet, finish() connects

    def discard(self) -> None:
        """The request ended before the answer was read: consume it so no error goes unobserved."""
        if self.future is not None:
            self.future.add_done_callback(lambda f: f.cancelled() or f.exception())


@dataclass(frozen=True, slots=True)
class _Dim:
    label: str
    interval_ms: float
    tau_ms: float
    policy_header: bytes


class RateLimiter:
    def __init__(
        self,
        redis_url: str | None,
        *,
        scale: float = 1.0,
        timeout_s: float = 0.25,
        retry_s: float = 1.0,
        max_active_holds: int = 5,
        hold_window_s: int = 600,
        classes: dict[str, RateClass] | None = None,
    ) -> None:
        # redis-py for the occasional hold release; the hot path uses the pipelined script caller.
        self.redis = create_redis(redis_url) if redis_url else None
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.max_active_holds = max_active_holds
        self.hold_window_ms = hold_window_s * 1000
        self.classes = classes or RATE_CLASSES
        self.script = LuaScript(redis_url, batched(GCRA_LUA), connect_timeout_s=timeout_s) if redis_url else None
        self.down_until = 0.0
        self.refused: dict[str, float] = {}  # key → until when Redis said no (wall clock)
        self.dims: dict[tuple[str, str], _Dim] = {}
        for rc in self.classes.values():
            rate = max(1e-9, rc.rate * scale)
            burst = max(1, round(rc.burst * scale))
            interval_ms = rc.period_s * 1000 / rate
            window_s = max(1, math.ceil(interval_ms * burst / 1000))
            for dim in ("sub", "client", "ip"):  # ip also backs classes keyed by a missing identity
                label = f"{rc.name}-{dim}"
                self.dims[(rc.name, dim)] = _Dim(
                    label, interval_ms, interval_ms * burst, f'"{label}";q={burst};w={window_s}'.encode()
                )

    def _unavailable(self, rc: RateClass) -> Decision:
        if rc.fail_closed:
            return Decision(False, [], 1, "rate_limiter_unavailable")
        return ALLOW_NO_HEADERS

    async def check(
        self,
        class_name: str,
        identities: dict[str, str],
        *,
        hold_for: str | None = None,
        hold_member: str = "",
    ) -> Decision:
        """Count one request of ``class_name`` for each identity (dimension → id) the class limits."""
        started = self.begin(class_name, identities, hold_for=hold_for, hold_member=hold_member)
        return started if isinstance(started, Decision) else await self.finish(started)

    def begin(
        self,
        class_name: str,
        identities: dict[str, str],
        *,
        hold_for: str | None = None,
        hold_member: str = "",
    ) -> Decision | Pending:
        """Send the check to Redis without waiting: a Decision when it is known at once (a local refusal,
        Redis down, nothing to count), else a Pending to :meth:`finish`. The gateway lets a safe request
        travel to the upstream while Redis answers, and refuses it before the response goes out."""
        rc = self.classes[class_name]
        dims = [(self.dims[(rc.name, d)], identities[d]) for d in rc.per if identities.get(d)]
        if not dims and identities.get("ip"):
            # A per-person class on a route the edge does not authenticate (userinfo): count the address.
            dims = [(self.dims[(rc.name, "ip")], identities["ip"])]
        if not dims or self.script is None:
            return self._unavailable(rc) if self.script is None and rc.fail_closed else ALLOW_NO_HEADERS
        now = time.time()
        if now < self.down_until:
            return self._unavailable(rc)
        keys = [f"gw:rl:{dim.label}:{ident}" for dim, ident in dims]
        # A key Redis refused recently is refused here until its retry time, without asking again:
        # a client hammering past its limit costs neither Redis nor the upstream anything.
        for key, (dim, _ident) in zip(keys, dims, strict=True):
            until = self.refused.get(key)
            if until is not None:
                if now < until:
                    return self._refusal(dims, dim, max(1, math.ceil(until - now)))
                del self.refused[key]
        args: list[float | int | str] = [round(now * 1000, 3), len(dims)]
        for dim, _ in dims:
            args += [dim.interval_ms, dim.tau_ms]
        if hold_for and self.max_active_holds > 0:
            keys.append(f"gw:holds:{hold_for}")
            args += [self.max_active_holds, hold_member, self.hold_window_ms]
        else:
            args.append(0)
        return Pending(rc, dims, keys, args, self.script.call_nowait(keys, args))

    async def finish(self, pending: Pending) -> Decision:
        rc, dims = pending.rate_class, pending.dims
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    if pending.future is None:
                        raise RedisReplyError("NOSCRIPT not connected yet")
                    reply = await pending.future
                except RedisReplyError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    assert self.script is not None
                    reply = await self.script(pending.keys, pending.args)  # connects, or loads the script
            allowed, reason, retry_ms, idx, remaining, reset_ms = reply
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.down_until = time.time() + self.retry_s
            log.warning(
                "rate_limiter_unavailable", error=repr(exc), fail_closed=rc.fail_closed, request_id=current_request_id()
            )
            return self._unavailable(rc)
        policy = b", ".join(dim.policy_header for dim, _ in dims)
        if allowed:
            dim = dims[int(idx) - 1][0]
            state = f'"{dim.label}";r={int(remaining)};t={max(0, math.ceil(int(reset_ms) / 1000))}'
            return Decision(True, [(b"ratelimit-policy", policy), (b"ratelimit", state.encode())])
        retry_after = max(1, math.ceil(int(retry_ms) / 1000))
        if int(reason) == 2:
            return Decision(False, [], retry_after, "too_many_active_holds")
        dim = dims[int(idx) - 1][0]
        if len(self.refused) >= 10_000:
            self.refused.clear()
        self.refused[pending.keys[int(idx) - 1]] = time.time() + int(retry_ms) / 1000
        return self._refusal(dims, dim, retry_after)

    @staticmethod
    def _refusal(dims: list[tuple[_Dim, str]], dim: _Dim, retry_after: int) -> Decision:
        policy = b", ".join(d.policy_header for d, _ in dims)
        state = f'"{dim.label}";r=0;t={retry_after}'
        return Decision(
            False, [(b"ratelimit-policy", policy), (b"ratelimit", state.encode())], retry_after, "rate_limited"
        )

    async def aclose(self) -> None:
        if self.script is not None:
            await self.script.aclose()
        if self.redis is not None:
            await self.redis.aclose()

    async def release_hold(self, person: str, member: str) -> None:
        """Forget a hold the service did not create (it refused the booking)."""
        if self.redis is None:
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.redis.zrem(f"gw:holds:{person}", member)
        except Exception as exc:  # the hold lapses by itself at the end of the window
            log.warning("hold_release_failed", error=repr(exc))
