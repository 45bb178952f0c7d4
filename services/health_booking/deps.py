"""Dependency aliases declared once for every health_booking router."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.health_booking.people import People
from services.health_booking.settings import HealthBookingSettings
from shared.auth import Principal, RequireClient, RequireUser
from shared.clients.payments import PaymentsClient

PatientUser = Annotated[Principal, RequireUser("health")]
ScheduleWriter = Annotated[Principal, RequireClient("health.schedules.write")]
RecordsWriter = Annotated[Principal, RequireClient("health.records.write")]


def _now(request: Request) -> datetime:
    # app.state.clock is utcnow in production; tests move it to check cut-offs and lapsed holds.
    return request.app.state.clock()  # type: ignore[no-any-return]


def _people(request: Request, principal: PatientUser) -> People:
    return People(request, principal)


def _payments(request: Request) -> PaymentsClient:
    return request.app.state.payments  # type: ignore[no-any-return]


def _settings(request: Request) -> HealthBookingSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


Now = Annotated[datetime, Depends(_now)]
PeopleDep = Annotated[People, Depends(_people)]
PaymentsDep = Annotated[PaymentsClient, Depends(_payments)]
SettingsDep = Annotated[HealthBookingSettings, Depends(_settings)]
