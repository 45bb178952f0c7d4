from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.db import Base
from shared.db import UTCDateTime


class SigningKey(Base):
    """A token-signing key. Life: next (published, not signing) → active (signing) → retired
    (published until its last token has expired) → gone from JWKS."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))  # ES256 for access tokens, RS256 for ID tokens
    status: Mapped[str] = mapped_column(String(10))  # next | active | retired
    public_jwk: Mapped[dict] = mapped_column(JSON)  # type: ignore[type-arg]
    # PEM encrypted with AES-GCM under the identity key-encryption secret.
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # After this instant no token signed by the key can still be valid: drop it from JWKS.
    unpublish_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
