"""What the OpenID provider remembers: authorization codes, grants (token families), refresh tokens,
issued user access tokens, explicit revocations and consents.

Codes and refresh tokens are stored only as SHA-256 hashes: a copy of the database does not yield a
usable credential. Client-credentials access tokens are not stored at all (they are short-lived JWTs
verified by signature); a revoked one is remembered by its ``jti`` until it would have expired.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.db import Base
from shared.db import UTCDateTime, utcnow


class AuthorizationCode(Base):
    __tablename__ = "oauth_authorization_codes"

    code_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    sub: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[int] = mapped_column()
    acr: Mapped[str] = mapped_column(String(40))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set on first redemption; a second redemption revokes the grant created by the first.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    grant_id: Mapped[str | None] = mapped_column(String(32))


class OAuthGrant(Base):
    """One authorization of a client by a person: every token issued from one code (a token family)."""

    __tablename__ = "oauth_grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    sub: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    auth_time: Mapped[int] = mapped_column()
    acr: Mapped[str] = mapped_column(String(40))
    code_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (Index("ix_oauth_grants_sub_client", "sub", "client_id"),)


class RefreshToken(Base):
    __tablename__ = "oauth_refresh_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when exchanged for a new one; presenting it again is reuse and revokes the grant.
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IssuedAccessToken(Base):
    """A person's access token (by jti), so revoking its grant makes it fail at userinfo/introspection."""

    __tablename__ = "oauth_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RevokedToken(Base):
    """An access token revoked by RFC 7009, remembered until it would have expired anyway."""

    __tablename__ = "oauth_revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Consent(Base):
    """The scopes a person agreed to give a client; asked again only for scopes not yet agreed."""

    __tablename__ = "oauth_consents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sub: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("sub", "client_id", name="uq_oauth_consents_sub_client"),)
