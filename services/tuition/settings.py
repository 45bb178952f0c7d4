from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class TuitionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_TUITION_", extra="ignore")
    service_name: str = "tuition"
