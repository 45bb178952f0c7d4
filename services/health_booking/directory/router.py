from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.health_booking.deps import ScheduleWriter
from services.health_booking.directory import service
from services.health_booking.directory.schemas import (
    DepartmentCreate,
    DepartmentOut,
    FacilityCreate,
    FacilityKind,
    FacilityOut,
    FacilityPage,
    FacilityUpdate,
    PractitionerCreate,
    PractitionerOut,
    PractitionerPage,
    PractitionerUpdate,
    SpecialtyPage,
)
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/health", tags=["directory"])
agency = APIRouter(prefix="/v1/health/agency", tags=["facility administration"])

SpecialtyQ = Annotated[str | None, Query(max_length=60, pattern=r"^[a-z][a-z0-9_-]*$")]
LanguageQ = Annotated[str | None, Query(min_length=2, max_length=3, pattern=r"^[a-z]{2,3}$")]
NearQ = Annotated[str | None, Query(max_length=60, description="lat,lon to sort by distance (e.g. 16.06,108.22)")]
RadiusQ = Annotated[float | None, Query(gt=0, le=200, description="Only within this many km of near")]


@router.get("/facilities", response_model=FacilityPage, responses=problem_responses(422))
async def search_facilities(
    session: SessionDep,
    kind: FacilityKind | None = None,
    specialty: SpecialtyQ = None,
    language: LanguageQ = None,
    near: NearQ = None,
    radius_km: RadiusQ = None,
) -> FacilityPage:
    """Hospitals, clinics and health stations by kind, specialty, language spoken and distance (public)."""
    items = await service.search_facilities(
        session, kind=kind, specialty=specialty, language=language, near=service.parse_near(near), radius_km=radius_km
    )
    return FacilityPage(items=items)


@router.get("/facilities/{facility_id}", response_model=FacilityOut, responses=problem_responses(404))
async def get_facility(session: SessionDep, facility_id: str) -> FacilityOut:
    """One facility of the directory."""
    facility = await service.get_facility(session, facility_id)
    items = await service.search_facilities(
        session, kind=None, specialty=None, language=None, near=None, radius_km=None
    )
    return next(f for f in items if f.id == facility.id)


@router.get("/practitioners", response_model=PractitionerPage, responses=problem_responses(422))
async def search_practitioners(
    session: SessionDep,
    facility_id: Annotated[str | None, Query(max_length=32)] = None,
    specialty: SpecialtyQ = None,
    language: LanguageQ = None,
    near: NearQ = None,
    radius_km: RadiusQ = None,
) -> PractitionerPage:
    """Practitioners by facility, specialty, language (tourists: "en") and distance."""
    items = await service.search_practitioners(
        session,
        facility_id=facility_id,
        specialty=specialty,
        language=language,
        near=service.parse_near(near),
        radius_km=radius_km,
    )
    return PractitionerPage(items=items)


@router.get("/specialties", response_model=SpecialtyPage)
async def list_specialties(session: SessionDep) -> SpecialtyPage:
    """Specialties offered by the city's facilities, with how many facilities offer each (public)."""
    return SpecialtyPage(items=await service.specialties(session))


@agency.post("/facilities", response_model=FacilityOut, status_code=201, responses=problem_responses(401, 403, 422))
async def create_facility(session: SessionDep, principal: ScheduleWriter, body: FacilityCreate) -> FacilityOut:
    """Register a facility owned by the calling agency client."""
    facility = await service.create_facility(session, principal.client_id, body)
    return FacilityOut.model_validate(facility)


@agency.get("/facilities", response_model=FacilityPage, responses=problem_responses(401, 403))
async def list_my_facilities(session: SessionDep, principal: ScheduleWriter) -> FacilityPage:
    """The calling agency's own facilities."""
    items = await service.search_facilities(
        session, kind=None, specialty=None, language=None, near=None, radius_km=None
    )
    own = await service.owned_facility_ids(session, principal.client_id)
    return FacilityPage(items=[f for f in items if f.id in own])


@agency.patch("/facilities/{facility_id}", response_model=FacilityOut, responses=problem_responses(401, 403, 404, 422))
async def update_facility(
    session: SessionDep, principal: ScheduleWriter, facility_id: str, body: FacilityUpdate
) -> FacilityOut:
    """Change a facility's details or booking rules (notice, horizon, limits, refunds)."""
    facility = await service.owned_facility(session, principal.client_id, facility_id)
    return FacilityOut.model_validate(await service.update_facility(session, facility, body))


@agency.post(
    "/facilities/{facility_id}/departments",
    response_model=DepartmentOut,
    status_code=201,
    responses=problem_responses(401, 403, 404, 422),
)
async def create_department(
    session: SessionDep, principal: ScheduleWriter, facility_id: str, body: DepartmentCreate
) -> DepartmentOut:
    """Add a department (specialty) to the agency's facility."""
    facility = await service.owned_facility(session, principal.client_id, facility_id)
    return DepartmentOut.model_validate(await service.add_department(session, facility, body))


@router.get(
    "/facilities/{facility_id}/departments", response_model=list[DepartmentOut], responses=problem_responses(404)
)
async def list_departments(session: SessionDep, facility_id: str) -> list[DepartmentOut]:
    """A facility's departments."""
    await service.get_facility(session, facility_id)
    return [DepartmentOut.model_validate(d) for d in await service.list_departments(session, facility_id)]


@agency.post(
    "/facilities/{facility_id}/practitioners",
    response_model=PractitionerOut,
    status_code=201,
    responses=problem_responses(401, 403, 404, 422),
)
async def create_practitioner(
    session: SessionDep, principal: ScheduleWriter, facility_id: str, body: PractitionerCreate
) -> PractitionerOut:
    """Add a practitioner (name, title, specialties, languages) to the agency's facility."""
    facility = await service.owned_facility(session, principal.client_id, facility_id)
    return PractitionerOut.model_validate(await service.add_practitioner(session, facility, body))


@agency.patch(
    "/facilities/{facility_id}/practitioners/{practitioner_id}",
    response_model=PractitionerOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def update_practitioner(
    session: SessionDep, principal: ScheduleWriter, facility_id: str, practitioner_id: str, body: PractitionerUpdate
) -> PractitionerOut:
    """Change a practitioner's details or take them off the directory (active=false)."""
    facility = await service.owned_facility(session, principal.client_id, facility_id)
    practitioner = await service.owned_practitioner(session, facility, practitioner_id)
    return PractitionerOut.model_validate(await service.update_practitioner(session, practitioner, body))
