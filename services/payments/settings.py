from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import PLACEHOLDER_PREFIX, ServiceSettings


class PaymentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_PAYMENTS_", extra="ignore")
    service_name: str = "payments"

    # The largest single payment accepted (đồng); larger amounts are refused with 422.
    max_amount_vnd: int = 100_000_000
    # How long the payer has to approve on the wallet before the payment expires.
    payment_ttl_s: int = 15 * 60
    # Wallets a caller may name in ``wallet``; each is served by the provider API below.
    wallets: list[str] = Field(default_factory=lambda: ["sandbox"])
    # The provider's API (Stripe-like). None → PlatformSettings.sandbox_provider_url.
    provider_url: str | None = None
    provider_api_key: str = PLACEHOLDER_PREFIX + "sandbox-provider-api-key"
    webhook_secret: str = PLACEHOLDER_PREFIX + "sandbox-webhook-signing-secret"
    webhook_tolerance_s: int = 300
    provider_connect_timeout_s: float = 2.0
    provider_timeout_s: float = 5.0
    # Retries of one provider call (same idempotency key every time).
    provider_retries: int = 2
    provider_backoff_s: float = 0.1
    # Background reconciler: how often it runs and how old a pending payment must be to be queried.
    reconcile_interval_s: float = 60.0
    reconcile_stuck_after_s: float = 120.0
    reconciler_enabled: bool = True

    def secrets(self) -> dict[str, str]:
        return {"provider_api_key": self.provider_api_key, "webhook_secret": self.webhook_secret}
