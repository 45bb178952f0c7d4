"""Settings of the sandbox mobile-money provider (env prefix ``DNCITY_SANDBOX_``).

The API key and webhook secret are shared with the payments service: each also reads the payments
service's variable (DNCITY_PAYMENTS_PROVIDER_API_KEY, DNCITY_PAYMENTS_WEBHOOK_SECRET), so one setting
configures both sides. The prod profile refuses placeholders.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import PLACEHOLDER_PREFIX, ConfigError, PlatformSettings, Profile


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_SANDBOX_", extra="ignore", populate_by_name=True)

    # A SQLite file (state survives restarts) or ":memory:" (tests, benchmarks). Relative paths are
    # under PlatformSettings.var_dir.
    database: str = "sandbox_provider.db"
    api_key: str = Field(
        default=PLACEHOLDER_PREFIX + "sandbox-provider-api-key",
        validation_alias=AliasChoices("DNCITY_SANDBOX_API_KEY", "DNCITY_PAYMENTS_PROVIDER_API_KEY", "api_key"),
    )
    webhook_secret: str = Field(
        default=PLACEHOLDER_PREFIX + "sandbox-webhook-signing-secret",
        validation_alias=AliasChoices(
            "DNCITY_SANDBOX_WEBHOOK_SECRET", "DNCITY_PAYMENTS_WEBHOOK_SECRET", "webhook_secret"
        ),
    )
    # Where webhooks go (None → the payments service's /v1/payments/webhooks/sandbox).
    webhook_url: str | None = None
    # The base URL payers' browsers reach the wallet page at (None → PlatformSettings.sandbox_provider_url).
    public_url: str | None = None
    default_expires_in_s: int = 15 * 60
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 8
    webhook_backoff_base_s: float = 1.0
    webhook_backoff_max_s: float = 300.0
    sweep_interval_s: float = 0.2
    # Initial test behaviours (changeable at runtime through PUT /v1/sandbox/behaviour).
    confirm_delay_s: float = 0.0
    decline_all: bool = False

    def database_path(self, platform: PlatformSettings) -> str:
        if self.database == ":memory:" or Path(self.database).is_absolute():
            return self.database
        return str(Path(platform.var_dir) / self.database)

    def check(self, platform: PlatformSettings) -> None:
        if platform.profile is not Profile.prod:
            return
        for name, value in {"api_key": self.api_key, "webhook_secret": self.webhook_secret}.items():
            if not value or value.startswith(PLACEHOLDER_PREFIX) or len(value) < 32:
                raise ConfigError(f"refusing to start in prod: sandbox secret {name} is a default or too short")
