"""Dependency aliases of the parking service, declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.parking.settings import ParkingSettings
from shared.auth import Principal, RequireClient, RequireUser


async def _settings(request: Request) -> ParkingSettings:
    # async: FastAPI runs a plain def dependency in a worker thread, a thread hop on every request.
    settings: ParkingSettings = request.app.state.settings
    return settings


Settings = Annotated[ParkingSettings, Depends(_settings)]
# Residents and tourists: a person's token with the "parking" scope.
Person = Annotated[Principal, RequireUser("parking")]
# Lot operators: an agency's client-credentials token; its client_id is the operator.
Operator = Annotated[Principal, RequireClient("parking.lots.write")]
