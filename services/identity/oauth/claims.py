"""Which claims about a person each scope releases (ID token and userinfo)."""

from __future__ import annotations

from typing import Any

from authlib.oidc.core import UserInfo
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts.models import Account
from services.identity.oauth.exchange import UserContext

# dncity.identity: the personal ID / passport / tax code numbers, released only with consent and only
# to clients registered for the scope.
IDENTITY_CLAIMS = ("citizen_id", "passport_number", "nationality", "tax_code")


class DaNangUserInfo(UserInfo):
    REGISTERED_CLAIMS = [*UserInfo.REGISTERED_CLAIMS, "acr", *IDENTITY_CLAIMS]
    SCOPES_CLAIMS_MAPPING = {**UserInfo.SCOPES_CLAIMS_MAPPING, "dncity.identity": list(IDENTITY_CLAIMS)}


async def load_active_account(session: AsyncSession, sub: str) -> Account | None:
    account = await session.get(Account, sub) if len(sub) <= 64 else None
    if account is None or not account.is_active:
        return None
    return account


def user_info(user: UserContext, scope: str) -> UserInfo:
    """Authlib's scope → claims filter over the account's data."""
    account = user.account
    claims: dict[str, Any] = {"sub": user.sub}
    if account is not None:
        claims.update(
            {
                "name": account.display_name,
                "birthdate": account.date_of_birth.isoformat() if account.date_of_birth else None,
                "locale": account.preferred_language,
                "updated_at": int(account.updated_at.timestamp()) if account.updated_at else None,
                "phone_number": account.phone_e164,
                "phone_number_verified": bool(account.phone_verified) if account.phone_e164 else None,
                "email": account.email,
                "email_verified": False if account.email else None,
                "address": {"formatted": account.address} if account.address else None,
                "citizen_id": account.citizen_id,
                "passport_number": account.passport_number,
                "nationality": account.nationality,
                "tax_code": account.tax_code,
            }
        )
    info = DaNangUserInfo({k: v for k, v in claims.items() if v is not None}).filter(scope)
    info["sub"] = user.sub
    return info
