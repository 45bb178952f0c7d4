from pydantic_settings import SettingsConfigDict

from shared.settings import PLACEHOLDER_PREFIX, ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_IDENTITY_", extra="ignore")
    service_name: str = "identity"

    # Encrypts token-signing private keys at rest. The prod profile refuses this placeholder.
    key_encryption_secret: str = PLACEHOLDER_PREFIX + "key-encryption-secret-change-me"
    access_token_ttl_s: int = 600
    id_token_ttl_s: int = 600
    refresh_token_ttl_s: int = 30 * 24 * 3600
    keyring_reload_s: float = 30.0

    def secrets(self) -> dict[str, str]:
        return {"key_encryption_secret": self.key_encryption_secret}
