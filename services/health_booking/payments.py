"""This service's payments client (the shared contract) with its own client-credentials token."""

from __future__ import annotations

from fastapi import FastAPI, Request

from services.health_booking.settings import HealthBookingSettings
from shared.clients.payments import PaymentsClient
from shared.service_auth import ServiceTokenProvider
from shared.settings import PlatformSettings


def build_payments_client(app: FastAPI, tokens: ServiceTokenProvider | None = None) -> PaymentsClient:
    settings: HealthBookingSettings = app.state.settings
    platform: PlatformSettings = app.state.platform
    http = app.state.http
    tokens = tokens or ServiceTokenProvider.client_credentials(
        http,
        platform.service_url("identity") + "/oauth2/token",
        settings.client_id,
        settings.client_secret,
        "payments.write",
    )
    return PaymentsClient(http, platform.service_url("payments"), tokens)


def payments_of(request: Request) -> PaymentsClient:
    return request.app.state.payments  # type: ignore[no-any-return]


def payment_key(appointment_id: str) -> str:
    return f"health-appointment-{appointment_id}"


def refund_key(appointment_id: str, n: int = 1) -> str:
    return f"health-refund-{appointment_id}-{n}"
