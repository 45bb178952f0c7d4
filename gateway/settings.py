from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_GATEWAY_", extra="ignore")

    max_body_bytes: int = 1_048_576
    # Default per-route timeout lives in the policy table; this bounds connecting to an upstream.
    upstream_connect_timeout_s: float = 2.0
    max_connections_per_upstream: int = 200
    openapi_cache_s: float = 30.0
    # Verified tokens are remembered until they expire, at most this long (bounds how long a revoked
    # token keeps passing the edge; services still verify every token themselves).
    token_cache_ttl_s: float = 60.0
    token_cache_size: int = 10_000
    # Rate limits: every class's rate and burst are multiplied by this (load tests, demos).
    rate_limit_scale: float = 1.0
    rate_limits_enabled: bool = True
    # Per-class changes, e.g. DNCITY_GATEWAY_RATE_LIMIT_OVERRIDES='{"read": {"rate": 50, "burst": 100}}'
    # (keys: rate, period_s, burst).
    rate_limit_overrides: dict[str, dict[str, float]] = {}
    # Redis calls of the limiter give up after this long; after a failure Redis is skipped (and the
    # fail-open/closed rule applied) for redis_retry_s, so an outage costs no time per request.
    redis_timeout_s: float = 0.25
    redis_retry_s: float = 1.0
    # Active booking holds per person (POSTs creating parking reservations or appointments that
    # succeeded within the last hold window).
    max_active_holds: int = 5
    hold_window_s: int = 600
    # Circuit breaker per upstream.
    breaker_failure_threshold: int = 5
    breaker_open_s: float = 10.0
    breaker_half_open_probes: int = 1
    # CORS: browser origins allowed to call the API (exact strings, e.g. https://app.danang.gov.vn).
    cors_origins: list[str] = []
    cors_max_age_s: int = 600
    # The mobile app's overview: each part is given up after this long.
    overview_part_timeout_s: float = 2.0
    # Strict-Transport-Security is sent when the public base URL is https.
    hsts_max_age_s: int = 63_072_000
