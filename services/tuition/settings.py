from pydantic_settings import SettingsConfigDict

from shared.settings import PLACEHOLDER_PREFIX, ServiceSettings


class TuitionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_TUITION_", extra="ignore")
    service_name: str = "tuition"

    # The service's own OAuth client (client credentials, scope payments.write) for calling payments.
    client_id: str = "svc-tuition"
    client_secret: str = PLACEHOLDER_PREFIX + "tuition-client-secret"
    # Link codes a school hands to a guardian expire after this many hours and work once.
    link_code_ttl_hours: int = 72
    # Reminders: one "due soon" this many days before a due date, one "overdue" after it.
    reminder_days_before: int = 3
    # How often the background reminder sweep runs; 0 turns the background task off.
    reminder_interval_s: float = 300.0
    # Where the sandbox wallet page sends the guardian back after approving (optional).
    payment_return_url: str | None = None

    def secrets(self) -> dict[str, str]:
        return {"DNCITY_TUITION_CLIENT_SECRET": self.client_secret}
