"""The prod profile refuses the placeholder client secret of the health service's payments client."""

from __future__ import annotations

import pytest

from services.health_booking.settings import HealthBookingSettings
from shared.settings import ConfigError, PlatformSettings


def prod() -> PlatformSettings:
    return PlatformSettings(profile="prod", redis_url="redis://redis:6379/0", dev_endpoints=False)


def test_prod_refuses_the_placeholder_client_secret() -> None:
    settings = HealthBookingSettings(database_url="postgresql+asyncpg://db/health")
    with pytest.raises(ConfigError, match="client_secret"):
        settings.check(prod())
    assert settings.client_id == "svc-health_booking"


def test_prod_accepts_a_real_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCITY_HEALTH_BOOKING_CLIENT_SECRET", "s" * 40)
    HealthBookingSettings(database_url="postgresql+asyncpg://db/health").check(prod())
