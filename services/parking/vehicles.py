"""Vehicle types and licence plates.

Plates are kept as entered and normalised for matching at the gate: upper case, only [0-9A-ZĐ]. Vietnamese
car plates (43A-123.45, 43A-1234), motorbike plates (43-B1 123.45, 43B1-123.45, 43-AA 123.45) and
foreign or temporary plates are all accepted; a plate is never rejected by its province code.
"""

from __future__ import annotations

import re
from enum import StrEnum


class VehicleType(StrEnum):
    bicycle = "bicycle"
    motorbike = "motorbike"
    car = "car"  # up to 16 seats
    large_vehicle = "large_vehicle"  # coaches, trucks


# Letters (Latin, including Vietnamese Đ), digits and the separators people write on plates.
_ALLOWED = re.compile(r"^[0-9A-Za-zĐđ .\-/]+$")
_STRIP = re.compile(r"[^0-9A-ZĐ]")
PLATE_MIN, PLATE_MAX = 3, 12


def normalise_plate(raw: str) -> str:
    """Upper case, keep only [0-9A-ZĐ]: "43-b1 123.45" → "43B112345"."""
    return _STRIP.sub("", raw.strip().upper())


def plate_problem(raw: str) -> str | None:
    """Why a plate is not acceptable, or None. Deliberately permissive: any province, foreign plates."""
    if not raw.strip():
        return "the plate number is empty"
    if not _ALLOWED.match(raw.strip()):
        return "a plate has only letters, digits, spaces, '-', '.' or '/'"
    normalised = normalise_plate(raw)
    if not PLATE_MIN <= len(normalised) <= PLATE_MAX:
        return f"a plate has {PLATE_MIN}-{PLATE_MAX} letters and digits"
    if not any(c.isdigit() for c in normalised):
        return "a plate contains at least one digit"
    return None
