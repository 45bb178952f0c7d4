from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ParkingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_PARKING_", extra="ignore")
    service_name: str = "parking"
