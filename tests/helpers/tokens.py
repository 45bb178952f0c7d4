"""Access tokens for tests, signed with identity's real active key (the one its JWKS publishes)."""

from __future__ import annotations

from collections.abc import Iterable

from dncity.cli import database_url
from services.identity.keys.service import Keyring
from services.identity.oauth.tokens import mint_access_token
from services.identity.settings import IdentitySettings
from shared.db import Database
from shared.settings import PlatformSettings


class TokenFactory:
    def __init__(self, keyring: Keyring, platform: PlatformSettings, ttl_s: int = 600) -> None:
        self.keyring = keyring
        self.platform = platform
        self.ttl_s = ttl_s

    @classmethod
    async def load(cls) -> TokenFactory:
        settings = IdentitySettings()
        db = Database(database_url("identity"))
        keyring = Keyring(settings.key_encryption_secret)
        async with db.sessionmaker() as session:
            await keyring.load(session)
        await db.dispose()
        return cls(keyring, PlatformSettings())

    def user(
        self,
        sub: str,
        scopes: Iterable[str] = ("openid",),
        *,
        client_id: str = "dncity-mobile",
        level: int = 1,
        **kw: object,
    ) -> str:
        token, _ = mint_access_token(
            self.keyring,
            issuer=self.platform.issuer,
            audience=self.platform.api_audience,
            client_id=client_id,
            scopes=scopes,
            ttl_s=self.ttl_s,
            sub=sub,
            acr=f"urn:dncity:loa:{level}",
            **kw,  # type: ignore[arg-type]
        )
        return token

    def client(self, client_id: str, scopes: Iterable[str], **kw: object) -> str:
        token, _ = mint_access_token(
            self.keyring,
            issuer=self.platform.issuer,
            audience=self.platform.api_audience,
            client_id=client_id,
            scopes=scopes,
            ttl_s=self.ttl_s,
            **kw,  # type: ignore[arg-type]
        )
        return token

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}
