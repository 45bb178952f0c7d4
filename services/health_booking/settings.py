from pydantic_settings import SettingsConfigDict

from shared.settings import PLACEHOLDER_PREFIX, ServiceSettings


class HealthBookingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_HEALTH_BOOKING_", extra="ignore")
    service_name: str = "health_booking"

    # This service's own OAuth client (client credentials) for calling payments.
    client_id: str = "svc-health_booking"
    client_secret: str = PLACEHOLDER_PREFIX + "health-booking-client-secret"
    # How often the maintenance loop lapses holds, expires waitlist offers and rolls slot horizons.
    maintenance_interval_s: float = 30.0
    # How long the first waiting patient may book a freed slot before it goes to the next one.
    waitlist_offer_minutes: int = 15
    # Upper bound on how far ahead slots are derived, whatever a facility asks for.
    max_horizon_days: int = 90

    def secrets(self) -> dict[str, str]:
        return {"client_secret": self.client_secret}
