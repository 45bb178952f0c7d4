"""Idempotent demo data for the embedded profile: OAuth clients, a demo resident and tourist, demo
parking lots, health facilities and a school.

Demo client secrets and account passwords are random, generated on the first seed and kept in
``var/demo-clients.json`` / ``var/demo-accounts.json`` (never in the repository), so reseeding prints the
same working credentials.
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
        "client_id": "demo-identity-verifier",
        "name": "Demo identity verification office (Công an phường)",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scopes": ["identity.verify"],
    },
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
                # Reuse the stored secret if the row was lost: running processes already hold it.
                secret = secret or secrets.token_urlsafe(32)
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


# ---- parking: demo lots of the demo operator, written through the parking service's own code ---------

DEMO_PARKING_OPERATOR = "demo-parking-operator"
_CAR_PER_VISIT = {"mode": "per_visit", "day_price_vnd": 30_000, "night_price_vnd": 50_000}
_MOTORBIKE_PER_VISIT = {"mode": "per_visit", "day_price_vnd": 5_000, "night_price_vnd": 10_000}
_BICYCLE_PER_VISIT = {"mode": "per_visit", "day_price_vnd": 2_000, "night_price_vnd": 3_000}
_CAR_HOURLY = {
    "mode": "hourly",
    "hourly_tiers": [{"from_hour": 0, "price_per_hour_vnd": 25_000}, {"from_hour": 2, "price_per_hour_vnd": 15_000}],
    "daily_cap_vnd": 200_000,
}

DEMO_LOTS: list[dict[str, Any]] = [
    {
        "lot": {
            "name": "Bãi đỗ xe Cầu Rồng",
            "address": "Đường Trần Hưng Đạo, An Hải Trung, Sơn Trà",
            "lat": 16.0610,
            "lon": 108.2275,
            "photo_url": "https://danang.gov.vn/parking/cau-rong.jpg",
        },
        "spaces": ("CR", 20, 2),
        "pools": {"motorbike": 300},
        "rates": {"car": _CAR_PER_VISIT, "motorbike": _MOTORBIKE_PER_VISIT},
    },
    {
        "lot": {
            "name": "Bãi xe Chợ Hàn",
            "address": "119 Trần Phú, Hải Châu",
            "lat": 16.0680,
            "lon": 108.2240,
            "opens_at": "05:30:00",
            "closes_at": "22:00:00",
        },
        "spaces": None,
        "pools": {"motorbike": 500, "bicycle": 50},
        "rates": {"motorbike": _MOTORBIKE_PER_VISIT, "bicycle": _BICYCLE_PER_VISIT},
    },
    {
        "lot": {
            "name": "Bãi đỗ xe biển Mỹ Khê",
            "address": "Võ Nguyên Giáp, Phước Mỹ, Sơn Trà",
            "lat": 16.0614,
            "lon": 108.2468,
            "cancellation_cutoff_minutes": 60,
        },
        "spaces": ("MK", 30, 3),
        "large_spaces": ("MKL", 5),
        "pools": {"motorbike": 400},
        "rates": {
            "car": _CAR_HOURLY,
            "motorbike": _MOTORBIKE_PER_VISIT,
            "large_vehicle": {"mode": "per_visit", "day_price_vnd": 100_000, "night_price_vnd": 150_000},
        },
    },
    {
        "lot": {
            "name": "Bãi đỗ xe tự động Vĩnh Trung",
            "address": "Đường Hàm Nghi, Vĩnh Trung, Thanh Khê",
            "lat": 16.0620,
            "lon": 108.2100,
        },
        "spaces": ("VT", 40, 4),
        "pools": {},
        "rates": {"car": _CAR_HOURLY},
    },
]


async def seed_parking(url: str) -> list[dict[str, Any]]:
    """The demo operator's lots, created once (matched by name) through the parking service's code."""
    from sqlalchemy import select

    from services.parking.app import create_app  # noqa: F401  (registers every parking model)
    from services.parking.lots import service as lots
    from services.parking.lots.models import Lot
    from services.parking.lots.schemas import LotCreate, PoolCreate, RateIn, SpaceCreate, SpacesCreate
    from shared.db import Database

    db = Database(url)
    shown: list[dict[str, Any]] = []
    try:
        async with db.sessionmaker() as session, session.begin():
            for spec in DEMO_LOTS:
                data = LotCreate(**spec["lot"])
                lot = (
                    await session.execute(
                        select(Lot).where(Lot.operator_id == DEMO_PARKING_OPERATOR, Lot.name == data.name)
                    )
                ).scalar_one_or_none()
                if lot is None:
                    lot = await lots.create_lot(session, DEMO_PARKING_OPERATOR, data)
                    spaces = []
                    if spec.get("spaces"):
                        prefix, count, accessible = spec["spaces"]
                        spaces += [
                            SpaceCreate(label=f"{prefix}{i + 1:03d}", vehicle_type="car", accessible=i < accessible)
                            for i in range(count)
                        ]
                    if spec.get("large_spaces"):
                        prefix, count = spec["large_spaces"]
                        spaces += [
                            SpaceCreate(label=f"{prefix}{i + 1:02d}", vehicle_type="large_vehicle")
                            for i in range(count)
                        ]
                    if spaces:
                        await lots.add_spaces(session, lot, SpacesCreate(spaces=spaces))
                    for vehicle, capacity in spec["pools"].items():
                        await lots.add_pool(session, lot, PoolCreate(vehicle_type=vehicle, capacity=capacity))
                    for vehicle, rate in spec["rates"].items():
                        await lots.put_rate(session, lot, vehicle, RateIn(**rate))
                shown.append({"id": lot.id, "name": lot.name, "lat": lot.lat, "lon": lot.lon})
    finally:
        await db.dispose()
    return shown


# ---- tuition: the demo school's students, fee items, a collection round and its invoices ---------------

DEMO_SCHOOL = "demo-school"
DEMO_TERM = "2025-2026/HK1"
DEMO_STUDENTS: list[dict[str, Any]] = [
    {
        "student_code": "DS-2025-0001",
        "personal_id": "048214000101",
        "full_name": "Nguyễn Minh Anh",
        "date_of_birth": "2013-03-14",
        "grade": "6",
        "class_name": "6A",
    },
    {
        "student_code": "DS-2025-0002",
        "personal_id": "048214000102",
        "full_name": "Nguyễn Minh Khang",
        "date_of_birth": "2010-11-02",
        "grade": "9",
        "class_name": "9B",
    },
    {
        "student_code": "DS-2025-0003",
        "personal_id": "048214000103",
        "full_name": "Trần Thị Bảo Ngọc",
        "date_of_birth": "2013-07-21",
        "grade": "6",
        "class_name": "6A",
    },
    {
        "student_code": "DS-2025-0004",
        "personal_id": "048214000104",
        "full_name": "Lê Hoàng Phúc",
        "date_of_birth": "2010-01-30",
        "grade": "9",
        "class_name": "9B",
    },
]
# A private lower-secondary school: public-school tuition is free from 2025-26 (Resolution 217/2025/QH15).
DEMO_FEE_ITEMS: list[dict[str, Any]] = [
    *[
        {"code": f"HP{g}", "name": f"Học phí khối {g} HK1", "kind": "tuition", "grade": g, "amount_vnd": a}
        for g, a in (("6", 4_500_000), ("9", 5_000_000))
    ],
    *[
        {"code": f"BT{g}", "name": "Bán trú (ăn trưa) HK1", "kind": "meals", "grade": g, "amount_vnd": 1_800_000}
        for g in ("6", "9")
    ],
    *[
        {
            "code": f"BHYT{g}",
            "name": "Bảo hiểm y tế học sinh",
            "kind": "health_insurance",
            "grade": g,
            "amount_vnd": 884_520,
        }
        for g in ("6", "9")
    ],
]


async def seed_tuition(url: str) -> dict[str, Any]:
    """The demo school's pupils, fee items, a two-instalment round and its invoices, through the tuition
    service's own code. Safe to run again: every step matches what exists (codes) and adds only what lacks."""
    from datetime import date, timedelta

    from sqlalchemy import select

    from services.tuition.app import create_app  # noqa: F401  (registers every tuition model)
    from services.tuition.billing import service as billing
    from services.tuition.billing.models import CollectionRound, Exemption, FeeItem
    from services.tuition.billing.schemas import ExemptionCreate, FeeItemCreate, RoundCreate
    from services.tuition.students.service import import_students
    from shared.db import Database

    db = Database(url)
    try:
        async with db.sessionmaker() as session, session.begin():
            report = await import_students(session, DEMO_SCHOOL, DEMO_STUDENTS, "all_or_nothing")
            ids = {r.key: r.id for r in report.rows}
            existing = set(
                (
                    await session.execute(
                        select(FeeItem.code).where(FeeItem.school_id == DEMO_SCHOOL, FeeItem.term == DEMO_TERM)
                    )
                )
                .scalars()
                .all()
            )
            for item in DEMO_FEE_ITEMS:
                if item["code"] not in existing:
                    await billing.create_fee_item(session, DEMO_SCHOOL, FeeItemCreate(term=DEMO_TERM, **item))
            round_ = (
                await session.execute(
                    select(CollectionRound).where(
                        CollectionRound.school_id == DEMO_SCHOOL, CollectionRound.code == "2025-HK1"
                    )
                )
            ).scalar_one_or_none()
            if round_ is None:
                today = date.today()
                round_ = await billing.create_round(
                    session,
                    DEMO_SCHOOL,
                    RoundCreate(
                        code="2025-HK1",
                        name="Đợt thu học kỳ I 2025-2026",
                        term=DEMO_TERM,
                        due_dates=[today + timedelta(days=14), today + timedelta(days=60)],
                    ),
                )
            near_poor = ids["DS-2025-0003"]
            if (
                near_poor
                and (await session.execute(select(Exemption.id).where(Exemption.student_id == near_poor))).first()
                is None
            ):
                await billing.grant_exemption(
                    session,
                    DEMO_SCHOOL,
                    near_poor,
                    ExemptionCreate(
                        category="near_poor_household", evidence_ref="GCN hộ cận nghèo số 045/2025/UBND-HC"
                    ),
                )
            generated = await billing.generate_invoices(session, DEMO_SCHOOL, round_.id)
    finally:
        await db.dispose()
    return {
        "school": DEMO_SCHOOL,
        "students": len(ids),
        "round": "2025-HK1",
        "invoices_created": generated.created,
        "link_with": [
            {"personal_id": s["personal_id"], "date_of_birth": s["date_of_birth"], "name": s["full_name"]}
            for s in DEMO_STUDENTS[:2]
        ],
    }


# ---- health booking: the demo hospital's facilities, practitioners and schedules -------------------------

DEMO_HOSPITAL = "demo-hospital"
_WEEKDAYS = [0, 1, 2, 3, 4]
_MORNING_AFTERNOON = {"start_time": "07:30", "end_time": "16:30", "breaks": [{"start": "11:30", "end": "13:30"}]}
DEMO_FACILITIES: list[dict[str, Any]] = [
    {
        "facility": {
            "name": "Bệnh viện Đà Nẵng",
            "kind": "hospital",
            "address": "124 Hải Phòng, Thạch Thang, Hải Châu",
            "lat": 16.0716,
            "lon": 108.2148,
            "phone": "+84 236 3821 118",
            "prepayment_required": True,
            "min_notice_minutes": 120,
            "max_days_ahead": 30,
            "max_per_patient_per_day": 2,
            "hours": [{"weekday": d, "open": "07:00", "close": "17:00"} for d in _WEEKDAYS],
        },
        "practitioners": [
            {
                "name": "BS.CKII Nguyễn Văn An",
                "title": "BS.CKII",
                "specialties": ["internal_medicine"],
                "languages": ["vi", "en"],
                "schedule": {
                    "specialty": "internal_medicine",
                    "slot_minutes": 20,
                    "fee_vnd": 150_000,
                    **_MORNING_AFTERNOON,
                },
            },
            {
                "name": "ThS.BS Trần Thị Bình",
                "title": "ThS.BS",
                "specialties": ["dermatology"],
                "languages": ["vi", "en", "ko"],
                "schedule": {
                    "specialty": "dermatology",
                    "slot_minutes": 30,
                    "fee_vnd": 200_000,
                    "mode": "telemedicine",
                    "start_time": "18:00",
                    "end_time": "21:00",
                },
            },
        ],
    },
    {
        "facility": {
            "name": "Bệnh viện Phụ sản - Nhi Đà Nẵng",
            "kind": "hospital",
            "address": "402 Lê Văn Hiến, Khuê Mỹ, Ngũ Hành Sơn",
            "lat": 16.0195,
            "lon": 108.2530,
            "prepayment_required": True,
            "max_days_ahead": 14,
            "hours": [{"weekday": d, "open": "07:00", "close": "17:00"} for d in range(6)],
        },
        "practitioners": [
            {
                "name": "BS.CKI Lê Minh Châu",
                "title": "BS.CKI",
                "specialties": ["pediatrics"],
                "languages": ["vi", "en"],
                "schedule": {"specialty": "pediatrics", "slot_minutes": 15, "fee_vnd": 120_000, **_MORNING_AFTERNOON},
            },
        ],
    },
    {
        "facility": {
            "name": "Trạm Y tế phường Hải Châu",
            "kind": "health_station",
            "address": "57 Lê Lợi, Hải Châu",
            "lat": 16.0725,
            "lon": 108.2203,
            "prepayment_required": False,
            "min_notice_minutes": 60,
            "max_days_ahead": 14,
            "max_per_patient_per_day": 1,
            "hours": [{"weekday": d, "open": "07:30", "close": "16:30"} for d in _WEEKDAYS],
        },
        "services": [
            {
                "service_name": "Tiêm chủng mở rộng (vaccination session)",
                "specialty": "vaccination",
                "slot_minutes": 60,
                "capacity": 20,
                "fee_vnd": 0,
                "start_time": "08:00",
                "end_time": "11:00",
            },
        ],
    },
]


async def seed_health(url: str) -> list[dict[str, Any]]:
    """The demo hospital's facilities, practitioners and schedules, created once (matched by name) through
    the health_booking service's own code; slots are derived from today on."""
    from sqlalchemy import select

    from services.health_booking.app import create_app  # noqa: F401  (registers every model)
    from services.health_booking.common import local_date
    from services.health_booking.directory import service as directory
    from services.health_booking.directory.models import Facility, Practitioner
    from services.health_booking.directory.schemas import FacilityCreate, PractitionerCreate
    from services.health_booking.schedules import service as schedules
    from services.health_booking.schedules.schemas import ScheduleIn
    from services.health_booking.settings import HealthBookingSettings
    from shared.db import Database, utcnow

    now = utcnow()
    horizon = HealthBookingSettings().max_horizon_days
    db = Database(url)
    shown: list[dict[str, Any]] = []
    try:
        async with db.sessionmaker() as session, session.begin():
            for spec in DEMO_FACILITIES:
                data = FacilityCreate(**spec["facility"])
                facility = (
                    await session.execute(
                        select(Facility).where(Facility.owner_client_id == DEMO_HOSPITAL, Facility.name == data.name)
                    )
                ).scalar_one_or_none()
                if facility is None:
                    facility = await directory.create_facility(session, DEMO_HOSPITAL, data)
                    for person in spec.get("practitioners", []):
                        schedule = person["schedule"]
                        fields = {k: v for k, v in person.items() if k != "schedule"}
                        practitioner = await directory.add_practitioner(session, facility, PractitionerCreate(**fields))
                        await schedules.create_schedule(
                            session,
                            facility,
                            ScheduleIn(
                                practitioner_id=practitioner.id,
                                weekdays=_WEEKDAYS,
                                valid_from=local_date(now),
                                **schedule,
                            ),
                            now,
                            horizon,
                        )
                    for service in spec.get("services", []):
                        await schedules.create_schedule(
                            session,
                            facility,
                            ScheduleIn(weekdays=_WEEKDAYS, valid_from=local_date(now), **service),
                            now,
                            horizon,
                        )
                else:
                    await schedules.roll_horizons(session, now, horizon)
                names = (
                    await session.scalars(select(Practitioner.name).where(Practitioner.facility_id == facility.id))
                ).all()
                shown.append(
                    {"id": facility.id, "name": facility.name, "kind": facility.kind, "practitioners": list(names)}
                )
    finally:
        await db.dispose()
    return shown


class _CapturingSender:
    """Receives the demo accounts' verification SMS so the seed can verify them like a person would."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def send(self, session: AsyncSession, *, to: str, body: str, kind: str) -> None:
        self.bodies.append(body)


DEMO_ACCOUNTS: list[dict[str, Any]] = [
    {
        "kind": "citizen",
        "full_name": "Nguyễn Văn An",
        "phone": "0905000001",
        "date_of_birth": "1990-05-17",
        "citizen_id": "048090000001",
        "preferred_language": "vi",
    },
    {
        "kind": "foreigner",
        "full_name": "Emma Schmidt",
        "phone": "+4915112345678",
        "date_of_birth": "1992-08-03",
        "passport_number": "C01X00T47",
        "nationality": "DEU",
        "preferred_language": "en",
    },
]


async def seed_accounts(session: AsyncSession, var_dir: Path) -> list[dict[str, Any]]:
    """A demo resident and a demo tourist, registered and verified through identity's own code.

    Their passwords are random, made on the first seed and kept in ``var/demo-accounts.json``."""
    import re

    from pydantic import TypeAdapter

    from services.identity.accounts.schemas import Registration
    from services.identity.accounts.service import find_by_login, register, verify_registration

    path = var_dir / "demo-accounts.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    shown: list[dict[str, Any]] = []
    for spec in DEMO_ACCOUNTS:
        password = stored.get(spec["phone"]) or f"Demo {secrets.token_urlsafe(12)}"
        data = TypeAdapter(Registration).validate_python({**spec, "password": password})
        account, _ = await find_by_login(session, data.phone)
        if account is None:
            sender = _CapturingSender()
            row = await register(session, None, sender, data)  # type: ignore[arg-type]
            code = re.search(r"\b(\d{6})\b", sender.bodies[-1])
            assert code, "the registration SMS carries a 6-digit code"
            account = await verify_registration(session, row.id, code.group(1))
        elif spec["phone"] not in stored:
            continue  # registered by a person, not by this seed: leave it alone
        stored[spec["phone"]] = password
        shown.append({"kind": spec["kind"], "login": data.phone, "password": password, "sub": account.id})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return shown
