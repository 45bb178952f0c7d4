"""Request dependencies for identity's own endpoints: the signed-in account and the client IP."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.identity.accounts import config
from services.identity.accounts.models import Account, AccountStatus
from shared.auth import Principal, RequireUser
from shared.db import SessionDep
from shared.errors import Forbidden


def _trusted(address: str | None) -> bool:
    """Whether an address is one of settings.trusted_proxies (addresses or CIDR ranges)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in config.settings().trusted_proxies:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_ip(request: Request) -> str | None:
    """The caller's IP: the peer, or the last hop before our trusted proxies in X-Forwarded-For.

    Per-IP lockout depends on it: behind the gateway, the gateway's address must be trusted
    (DNCITY_IDENTITY_TRUSTED_PROXIES), or every person would share the gateway's counter.
    """
    peer = request.client.host if request.client else None
    if not _trusted(peer):
        return peer
    forwarded = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(forwarded):
        if not _trusted(hop):
            return hop
    return peer


@dataclass(frozen=True)
class Me:
    """The person calling identity's /me endpoints: their active account and their token."""

    account: Account
    principal: Principal

    @property
    def client_id(self) -> str:
        return self.principal.client_id


async def _me(principal: Annotated[Principal, RequireUser("openid")], session: SessionDep) -> Me:
    account = await session.get(Account, principal.sub)
    # A token outlives a deletion or a disabled account by minutes at most; refuse it at once.
    if account is None or account.status != AccountStatus.active.value:
        raise Forbidden("This account is not active", code="account_not_active")
    return Me(account=account, principal=principal)


CurrentMe = Annotated[Me, Depends(_me)]
ClientIp = Annotated[str | None, Depends(client_ip)]
