"""Settings shared by every process (env prefix ``DNCITY_``) and the per-service base class.

Each service subclasses :class:`ServiceSettings` with its own prefix (``DNCITY_PARKING_`` …) so its
database URL and secrets are configured independently, while platform-wide values (profile, Redis,
public URL, where the other services live) are read once from :class:`PlatformSettings`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES: tuple[str, ...] = ("identity", "payments", "parking", "health_booking", "tuition")

# Default ports of the embedded profile; every one can be overridden by environment.
DEFAULT_PORTS: dict[str, int] = {
    "gateway": 8000,
    "identity": 8101,
    "payments": 8102,
    "parking": 8103,
    "health_booking": 8104,
    "tuition": 8105,
    "sandbox_provider": 8199,
}

# Placeholder secrets are fine on a laptop and refused by the prod profile.
PLACEHOLDER_PREFIX = "dev-insecure-"


class Profile(StrEnum):
    dev = "dev"
    prod = "prod"


class ConfigError(RuntimeError):
    """The configuration is unsafe or inconsistent; the process must not start."""


def var_dir() -> Path:
    return Path(PlatformSettings().var_dir)


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_", extra="ignore")

    profile: Profile = Profile.dev
    redis_url: str | None = None
    # After startup, move everything alive (modules, the app, settings) out of the cyclic collector's
    # reach (gc.collect + gc.freeze): full collections then walk only what requests create. They used
    # to walk it all, a pause of milliseconds that was parking search's p99 (52 ms -> 18-20 ms at 16
    # connections). Off in the in-process test suite, whose fixtures rely on the collector to close
    # connections that tests abandon.
    gc_freeze_after_startup: bool = True
    # The issuer of Da Nang ID tokens and the one base URL clients use (the gateway).
    public_base_url: str = "http://127.0.0.1:8000"
    # The audience every platform access token carries (RFC 9068 "aud").
    api_audience: str = "urn:dncity:api"
    # Leeway for exp/nbf/iat checks of tokens, in seconds.
    token_leeway_s: int = 30
    jwks_cache_ttl_s: int = 300
    jwks_min_refetch_interval_s: int = 10
    # How long a service remembers a token it verified (never past its expiry); 0 verifies every use.
    verified_token_cache_s: float = 60.0
    var_dir: str = "var"
    log_level: str = "INFO"
    log_json: bool = True
    # Dev-only endpoints (the SMS outbox, event diagnostics). Off by default in prod; prod refuses them.
    dev_endpoints: bool | None = None
    # Where the other processes listen; the gateway and service-to-service clients read these.
    identity_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['identity']}"
    payments_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['payments']}"
    parking_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['parking']}"
    health_booking_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['health_booking']}"
    tuition_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['tuition']}"
    sandbox_provider_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['sandbox_provider']}"
    # Outgoing service-to-service calls.
    http_connect_timeout_s: float = 2.0
    http_read_timeout_s: float = 10.0
    http_retries: int = 2
    # Event bus tuning.
    event_poll_interval_s: float = 0.2
    event_max_deliveries: int = 5
    event_retry_base_ms: int = 500

    @property
    def dev_endpoints_enabled(self) -> bool:
        if self.dev_endpoints is None:
            return self.profile is Profile.dev
        return self.dev_endpoints

    @property
    def issuer(self) -> str:
        return self.public_base_url.rstrip("/")

    def service_url(self, name: str) -> str:
        return str(getattr(self, f"{name}_url")).rstrip("/")


class ServiceSettings(BaseSettings):
    """Base for one service's settings; subclasses set ``env_prefix`` and ``service_name``."""

    model_config = SettingsConfigDict(env_prefix="DNCITY_SERVICE_", extra="ignore")
    service_name: str = Field(default="service", exclude=True)

    database_url: str | None = None
    db_pool_size: int = 10
    # Connections opened beyond the pool under a burst (PostgreSQL); None: twice the pool. Each one is
    # closed again when returned to a full pool, so a service hit by bursts pays a server-side backend
    # start per request beyond the pool: parking sets 0 (see ParkingSettings).
    db_max_overflow: int | None = None
    db_echo: bool = False

    def resolved_database_url(self, platform: PlatformSettings) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(platform.var_dir) / (self.service_name + '.db')}"

    def secrets(self) -> dict[str, str]:
        """Name → value of every secret this service needs; subclasses extend."""
        return {}

    def check(self, platform: PlatformSettings) -> None:
        """Refuse unsafe configuration in the prod profile."""
        if platform.profile is not Profile.prod:
            return
        problems: list[str] = []
        if self.resolved_database_url(platform).startswith("sqlite"):
            problems.append(f"{self.service_name}: SQLite is for the embedded profile; set a PostgreSQL URL")
        if not platform.redis_url:
            problems.append("DNCITY_REDIS_URL must point at Redis in prod")
        if platform.dev_endpoints_enabled:
            problems.append("DNCITY_DEV_ENDPOINTS must be off in prod")
        for name, value in self.secrets().items():
            if not value or value.startswith(PLACEHOLDER_PREFIX) or len(value) < 32:
                problems.append(f"{self.service_name}: secret {name} is a default or too short")
        if problems:
            raise ConfigError("refusing to start in prod: " + "; ".join(problems))
