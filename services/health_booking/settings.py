from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class HealthBookingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_HEALTH_BOOKING_", extra="ignore")
    service_name: str = "health_booking"
