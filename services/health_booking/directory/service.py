"""Directory rules: a facility is managed only by the agency client that owns it."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.health_booking.directory.models import Department, Facility, Practitioner
from services.health_booking.directory.schemas import (
    DepartmentCreate,
    FacilityCreate,
    FacilityOut,
    FacilityUpdate,
    PractitionerCreate,
    PractitionerOut,
    PractitionerUpdate,
    SpecialtyOut,
)
from services.health_booking.schedules.models import Schedule
from shared.errors import NotFound, field_error


async def owned_facility(session: AsyncSession, client_id: str, facility_id: str) -> Facility:
    facility = await session.get(Facility, facility_id)
    # Another agency's facility looks exactly like a missing one (no probing of ids).
    if facility is None or facility.owner_client_id != client_id:
        raise NotFound("No such facility of yours", code="facility_not_found")
    return facility


async def owned_facility_ids(session: AsyncSession, client_id: str) -> set[str]:
    return set((await session.scalars(select(Facility.id).where(Facility.owner_client_id == client_id))).all())


async def get_facility(session: AsyncSession, facility_id: str) -> Facility:
    facility = await session.get(Facility, facility_id)
    if facility is None:
        raise NotFound("No such facility", code="facility_not_found")
    return facility


async def create_facility(session: AsyncSession, client_id: str, data: FacilityCreate) -> Facility:
    facility = Facility(owner_client_id=client_id, **data.model_dump(mode="json"))
    session.add(facility)
    await session.flush()
    return facility


async def update_facility(session: AsyncSession, facility: Facility, data: FacilityUpdate) -> Facility:
    for key, value in data.model_dump(mode="json", exclude_unset=True).items():
        if value is None and key != "phone":
            raise field_error(f"body.{key}", "must not be null")
        setattr(facility, key, value)
    await session.flush()
    return facility


async def add_department(session: AsyncSession, facility: Facility, data: DepartmentCreate) -> Department:
    department = Department(facility_id=facility.id, **data.model_dump())
    session.add(department)
    await session.flush()
    return department


async def list_departments(session: AsyncSession, facility_id: str) -> Sequence[Department]:
    return (
        await session.scalars(select(Department).where(Department.facility_id == facility_id).order_by(Department.name))
    ).all()


async def add_practitioner(session: AsyncSession, facility: Facility, data: PractitionerCreate) -> Practitioner:
    if data.department_id:
        department = await session.get(Department, data.department_id)
        if department is None or department.facility_id != facility.id:
            raise field_error("body.department_id", "No such department at this facility")
    practitioner = Practitioner(facility_id=facility.id, **data.model_dump())
    session.add(practitioner)
    await session.flush()
    return practitioner


async def owned_practitioner(session: AsyncSession, facility: Facility, practitioner_id: str) -> Practitioner:
    practitioner = await session.get(Practitioner, practitioner_id)
    if practitioner is None or practitioner.facility_id != facility.id:
        raise NotFound("No such practitioner at this facility", code="practitioner_not_found")
    return practitioner


async def update_practitioner(
    session: AsyncSession, practitioner: Practitioner, data: PractitionerUpdate
) -> Practitioner:
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is None and key != "title":
            raise field_error(f"body.{key}", "must not be null")
        setattr(practitioner, key, list(dict.fromkeys(value)) if isinstance(value, list) else value)
    await session.flush()
    return practitioner


async def specialties(session: AsyncSession) -> list[SpecialtyOut]:
    offered: dict[str, set[str]] = {}
    for facility in await search_facilities(
        session, kind=None, specialty=None, language=None, near=None, radius_km=None
    ):
        for code in facility.specialties:
            offered.setdefault(code, set()).add(facility.id)
    return [SpecialtyOut(code=code, facilities=len(ids)) for code, ids in sorted(offered.items())]


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), good to metres at city scale."""
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return round(2 * r * math.asin(math.sqrt(a)), 3)


def parse_near(near: str | None) -> tuple[float, float] | None:
    if near is None:
        return None
    try:
        lat_s, lon_s = near.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError as exc:
        raise field_error("query.near", "near is 'lat,lon', e.g. 16.0544,108.2022") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat) or math.isnan(lon):
        raise field_error("query.near", "near is out of range")
    return lat, lon


async def search_facilities(
    session: AsyncSession,
    *,
    kind: str | None,
    specialty: str | None,
    language: str | None,
    near: tuple[float, float] | None,
    radius_km: float | None,
) -> list[FacilityOut]:
    """Directory search; the directory is small (a city's facilities), so filtering happens here."""
    query = select(Facility).order_by(Facility.name, Facility.id)
    if kind:
        query = query.where(Facility.kind == kind)
    facilities = (await session.scalars(query)).all()
    ids = [f.id for f in facilities]
    specialties: dict[str, set[str]] = {i: set() for i in ids}
    languages: dict[str, set[str]] = {i: set() for i in ids}
    for schedule in (await session.scalars(select(Schedule).where(Schedule.active.is_(True)))).all():
        specialties.setdefault(schedule.facility_id, set()).add(schedule.specialty)
    for p in (await session.scalars(select(Practitioner).where(Practitioner.active.is_(True)))).all():
        specialties.setdefault(p.facility_id, set()).update(p.specialties)
        languages.setdefault(p.facility_id, set()).update(p.languages)
    out: list[FacilityOut] = []
    for facility in facilities:
        if specialty and specialty not in specialties[facility.id]:
            continue
        if language and language not in languages[facility.id]:
            continue
        item = FacilityOut.model_validate(facility).model_copy(
            update={"specialties": sorted(specialties[facility.id]), "languages": sorted(languages[facility.id])}
        )
        if near:
            item.distance_km = distance_km(near[0], near[1], facility.lat, facility.lon)
            if radius_km is not None and item.distance_km > radius_km:
                continue
        out.append(item)
    if near:
        out.sort(key=lambda f: (f.distance_km or 0.0, f.name))
    return out


async def search_practitioners(
    session: AsyncSession,
    *,
    facility_id: str | None,
    specialty: str | None,
    language: str | None,
    near: tuple[float, float] | None,
    radius_km: float | None,
) -> list[PractitionerOut]:
    query = (
        select(Practitioner, Facility)
        .join(Facility, Facility.id == Practitioner.facility_id)
        .where(Practitioner.active.is_(True))
        .order_by(Practitioner.name, Practitioner.id)
    )
    if facility_id:
        query = query.where(Practitioner.facility_id == facility_id)
    out: list[PractitionerOut] = []
    for practitioner, facility in (await session.execute(query)).all():
        if specialty and specialty not in practitioner.specialties:
            continue
        if language and language not in practitioner.languages:
            continue
        item = PractitionerOut.model_validate(practitioner)
        if near:
            item.distance_km = distance_km(near[0], near[1], facility.lat, facility.lon)
            if radius_km is not None and item.distance_km > radius_km:
                continue
        out.append(item)
    if near:
        out.sort(key=lambda p: (p.distance_km or 0.0, p.name))
    return out
