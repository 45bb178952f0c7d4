"""The tuition service's own secret: fine on a laptop, refused in prod while it is a placeholder."""

from __future__ import annotations

import pytest

from services.tuition.settings import TuitionSettings
from shared.settings import ConfigError, PlatformSettings, Profile

PG = "postgresql+asyncpg://db/tuition"


def prod() -> PlatformSettings:
    return PlatformSettings(profile=Profile.prod, redis_url="redis://r:6379/0", dev_endpoints=False)


def test_prod_refuses_the_placeholder_client_secret() -> None:
    with pytest.raises(ConfigError, match="DNCITY_TUITION_CLIENT_SECRET"):
        TuitionSettings(database_url=PG).check(prod())


def test_prod_accepts_a_real_client_secret_and_dev_accepts_the_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCITY_TUITION_CLIENT_SECRET", "s" * 40)
    settings = TuitionSettings(database_url=PG)
    assert settings.client_id == "svc-tuition"
    settings.check(prod())
    TuitionSettings().check(PlatformSettings(profile=Profile.dev))
