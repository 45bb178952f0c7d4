from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_GATEWAY_", extra="ignore")

    max_body_bytes: int = 1_048_576
    upstream_timeout_s: float = 15.0
    upstream_connect_timeout_s: float = 2.0
    max_connections_per_upstream: int = 200
    openapi_cache_s: float = 30.0
