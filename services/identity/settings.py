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

    # --- accounts (issue 3) ---
    # Keys the one-time-code HMACs and encrypts TOTP secrets at rest. The prod profile refuses the placeholder.
    account_secret_key: str = PLACEHOLDER_PREFIX + "account-secret-key-change-me"
    code_ttl_s: int = 300
    code_max_attempts: int = 5
    code_resend_cooldown_s: int = 60
    code_max_sends_per_hour: int = 5
    # A registration never verified stops blocking its phone and identifiers after this long.
    pending_registration_ttl_s: int = 24 * 3600
    password_min_length: int = 10
    # Progressive lockout: after N failures the login (or client IP) is locked for base seconds,
    # doubling with each further lock, up to max; failure counts are forgotten after window seconds.
    lockout_account_threshold: int = 5
    lockout_ip_threshold: int = 20
    lockout_base_s: int = 60
    lockout_max_s: int = 3600
    lockout_window_s: int = 24 * 3600
    # Peers (addresses or CIDR ranges) whose X-Forwarded-For is believed: the gateway. The client IP
    # drives per-IP lockout; env as JSON, e.g. DNCITY_IDENTITY_TRUSTED_PROXIES='["10.0.0.0/8"]'.
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]
    # SMS: "dev_outbox" stores messages (read at GET /v1/dev/outbox); "http" posts to an SMS gateway.
    sms_sender: str = "dev_outbox"
    sms_gateway_url: str | None = None
    sms_gateway_token: str = PLACEHOLDER_PREFIX + "sms-gateway-token"
    totp_issuer: str = "Da Nang ID"

    # --- OAuth / OpenID provider (issue 4) ---
    # Signs the sign-in session cookie and CSRF tokens of the sign-in and consent pages.
    session_secret: str = PLACEHOLDER_PREFIX + "oauth-session-secret-change-me"
    session_ttl_s: int = 12 * 3600
    authorization_request_ttl_s: int = 600

    def secrets(self) -> dict[str, str]:
        return {
            "key_encryption_secret": self.key_encryption_secret,
            "session_secret": self.session_secret,
            "account_secret_key": self.account_secret_key,
            **({"sms_gateway_token": self.sms_gateway_token} if self.sms_sender == "http" else {}),
        }
