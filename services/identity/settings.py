from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_IDENTITY_", extra="ignore")
    service_name: str = "identity"
