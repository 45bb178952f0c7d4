"""Consents: which scopes a person agreed to give which client (asked again only for new scopes)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.oauth import repository
from services.identity.oauth.models import Consent
from services.identity.privacy import eraser, exporter
from shared.db import new_id, utcnow


async def agreed_scopes(session: AsyncSession, *, sub: str, client_id: str) -> set[str]:
    row = await session.scalar(select(Consent).where(Consent.sub == sub, Consent.client_id == client_id))
    return set(row.scopes) if row else set()


async def grant(session: AsyncSession, *, sub: str, client_id: str, scopes: list[str]) -> None:
    from services.identity.audit.service import record

    row = await session.scalar(select(Consent).where(Consent.sub == sub, Consent.client_id == client_id))
    now = utcnow()
    if row is None:
        session.add(
            Consent(
                id=new_id(), sub=sub, client_id=client_id, scopes=sorted(set(scopes)), granted_at=now, updated_at=now
            )
        )
    else:
        row.scopes, row.updated_at = sorted(set(row.scopes) | set(scopes)), now
    await record(session, sub=sub, action="consent.granted", client_id=client_id, details={"scopes": sorted(scopes)})
    await session.flush()


async def list_for(session: AsyncSession, sub: str) -> list[Consent]:
    rows = await session.execute(select(Consent).where(Consent.sub == sub).order_by(Consent.granted_at, Consent.id))
    return list(rows.scalars())


async def withdraw(session: AsyncSession, *, sub: str, client_id: str) -> bool:
    """Withdraw a consent: the client's tokens for this person stop working too."""
    from services.identity.audit.service import record

    result = await session.execute(delete(Consent).where(Consent.sub == sub, Consent.client_id == client_id))
    revoked = await repository.revoke_grants_of(session, sub=sub, client_id=client_id, reason="consent_withdrawn")
    found = bool(result.rowcount) or revoked > 0  # type: ignore[attr-defined]
    if found:
        await record(session, sub=sub, action="consent.withdrawn", client_id=client_id)
    return found


async def erase(session: AsyncSession, sub: str) -> None:
    """Account erasure: consents gone and every grant (refresh and access tokens) revoked."""
    await session.execute(delete(Consent).where(Consent.sub == sub))
    await repository.revoke_grants_of(session, sub=sub, reason="account_erased")


async def export_consents(session: AsyncSession, sub: str) -> dict[str, object]:
    """For GET /v1/identity/me/export: consents and the authorizations (token families) given."""
    from services.identity.oauth.models import OAuthGrant

    grants = (
        await session.execute(select(OAuthGrant).where(OAuthGrant.sub == sub).order_by(OAuthGrant.created_at))
    ).scalars()
    return {
        "consents": [
            {
                "client_id": c.client_id,
                "scopes": c.scopes,
                "granted_at": c.granted_at.isoformat(),
                "updated_at": c.updated_at.isoformat(),
            }
            for c in await list_for(session, sub)
        ],
        "authorizations": [
            {
                "client_id": g.client_id,
                "scope": g.scope,
                "created_at": g.created_at.isoformat(),
                "revoked_at": g.revoked_at.isoformat() if g.revoked_at else None,
            }
            for g in grants
        ],
    }


exporter(export_consents)
eraser(erase)
