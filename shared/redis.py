"""Redis connections (real Redis, or the embedded fakeredis TCP server in the embedded profile)."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=False, health_check_interval=30, socket_connect_timeout=2)
