"""The identity settings the account functions read.

``authenticate`` and ``verify_totp`` have a fixed signature (the OAuth provider calls them) that carries
no settings, so ``create_app`` hands its settings here once; until then they come from the environment.
"""

from __future__ import annotations

from services.identity.settings import IdentitySettings

_settings: IdentitySettings | None = None


def configure(settings: IdentitySettings) -> None:
    global _settings
    _settings = settings


def settings() -> IdentitySettings:
    global _settings
    if _settings is None:
        _settings = IdentitySettings()
    return _settings
