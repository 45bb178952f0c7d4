"""The prod profile refuses the parking service's placeholder secrets."""

from __future__ import annotations

import pytest

from services.parking.settings import ParkingSettings
from shared.settings import ConfigError, PlatformSettings, Profile

STRONG = "x" * 40


def prod() -> PlatformSettings:
    return PlatformSettings(profile=Profile.prod, redis_url="redis://r", dev_endpoints=False)


def test_prod_refuses_placeholder_client_and_quote_secrets() -> None:
    with pytest.raises(ConfigError, match="client_secret"):
        ParkingSettings(database_url="postgresql+asyncpg://db/p", quote_secret=STRONG).check(prod())
    with pytest.raises(ConfigError, match="quote_secret"):
        ParkingSettings(database_url="postgresql+asyncpg://db/p", client_secret=STRONG).check(prod())
    ParkingSettings(database_url="postgresql+asyncpg://db/p", client_secret=STRONG, quote_secret=STRONG).check(prod())
