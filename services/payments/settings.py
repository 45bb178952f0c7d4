from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class PaymentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_PAYMENTS_", extra="ignore")
    service_name: str = "payments"
