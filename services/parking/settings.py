from pydantic_settings import SettingsConfigDict

from shared.settings import PLACEHOLDER_PREFIX, ServiceSettings


class ParkingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_PARKING_", extra="ignore")
    service_name: str = "parking"
    # Bookers racing for the last places: requests beyond the pool wait for a connection rather than
    # open (and then close) one each. benchmarks/parking_search.py, 100 concurrent bookings on one
    # core: p99 370 ms with no overflow, 530 ms with the default 20 (a backend start per extra request).
    db_max_overflow: int | None = 0

    # This service's own OAuth client (client credentials) for calling payments.
    client_id: str = "svc-parking"
    client_secret: str = PLACEHOLDER_PREFIX + "parking-client-secret"
    # Signs quotes so a client can book at the quoted price while the quote is valid.
    quote_secret: str = PLACEHOLDER_PREFIX + "parking-quote-secret"
    quote_ttl_s: int = 300
    # A hold lasts as long as its payment may be approved, then lapses and frees the space.
    hold_ttl_s: int = 600
    expiry_sweep_interval_s: float = 15.0
    max_unpaid_holds: int = 3
    max_duration_minutes: int = 72 * 60
    min_duration_minutes: int = 15
    max_advance_days: int = 60
    # A start this far in the past is still accepted (clock skew, "park now").
    start_grace_s: int = 300
    early_check_in_minutes: int = 30

    def secrets(self) -> dict[str, str]:
        return {"client_secret": self.client_secret, "quote_secret": self.quote_secret}
