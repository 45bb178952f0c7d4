"""Idempotent demo data for the embedded profile: OAuth clients now; lots, facilities and schools as
their services land.

Demo client secrets are random, generated on the first seed and kept in ``var/demo-clients.json``
(never in the repository), so reseeding prints the same working credentials.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.clients.models import OAuthClient
from services.identity.clients.schemas import ClientCreate
from services.identity.clients.service import create_client

MOBILE_REDIRECTS = ["vn.gov.danang.superapp:/oauth2redirect", "http://127.0.0.1/callback"]

DEMO_CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": "dncity-mobile",
        "name": "Da Nang super-app (mobile)",
        "client_type": "public",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": MOBILE_REDIRECTS,
        "scopes": [
            "openid",
            "profile",
            "phone",
            "email",
            "address",
            "offline_access",
            "dncity.identity",
            "parking",
            "health",
            "tuition",
            "payments",
        ],
    },
    {
        "client_id": "demo-agency-portal",
        "name": "Demo agency portal (log in with Da Nang ID)",
        "client_type": "confidential",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["http://127.0.0.1:8900/callback"],
        "scopes": ["openid", "profile", "phone"],
    },
    {
        "client_id": "demo-hospital",
        "name": "Demo hospital (Bệnh viện Đà Nẵng)",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scopes": ["health.schedules.write", "health.records.write"],
    },
    {
        "client_id": "demo-school",
        "name": "Demo school (Trường THCS demo)",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scopes": ["tuition.students.write", "tuition.invoices.write"],
    },
    # The platform's own services, calling payments by client credentials.
    *[
        {
            "client_id": f"svc-{service}",
            "name": f"Platform service: {service}",
            "client_type": "confidential",
            "grant_types": ["client_credentials"],
            "scopes": ["payments.write"],
        }
        for service in ("parking", "health_booking", "tuition")
    ],
    {
        "client_id": "demo-parking-operator",
        "name": "Demo parking operator",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scopes": ["parking.lots.write"],
    },
]


def _secrets_file(var_dir: Path) -> Path:
    return var_dir / "demo-clients.json"


def service_credentials_env(var_dir: Path) -> dict[str, str]:
    """DNCITY_<SERVICE>_CLIENT_ID/SECRET for the processes `dncity run` starts."""
    path = _secrets_file(var_dir)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    env: dict[str, str] = {}
    for client_id, secret in stored.items():
        if client_id.startswith("svc-"):
            service = client_id.removeprefix("svc-").upper()
            env[f"DNCITY_{service}_CLIENT_ID"] = client_id
            env[f"DNCITY_{service}_CLIENT_SECRET"] = secret
    return env


async def seed_clients(session: AsyncSession, var_dir: Path) -> list[dict[str, Any]]:
    path = _secrets_file(var_dir)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    shown: list[dict[str, Any]] = []
    for spec in DEMO_CLIENTS:
        data = ClientCreate(**spec)
        client_id = spec["client_id"]
        existing = await session.get(OAuthClient, client_id)
        secret = stored.get(client_id)
        if existing is None:
            if data.client_type == "confidential":
                secret = secrets.token_urlsafe(32)
                stored[client_id] = secret
            await create_client(session, data, secret=secret)
        shown.append(
            {
                "client_id": client_id,
                "client_secret": secret,
                "name": spec["name"],
                "scopes": " ".join(sorted(spec["scopes"])),
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return shown
