"""Plates: stored as entered, normalised for matching, never rejected by province code."""

from __future__ import annotations

import pytest

from services.parking.vehicles import normalise_plate, plate_problem


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("43A-123.45", "43A12345"),  # car, new format
        ("43A-1234", "43A1234"),  # car, old format
        ("43-B1 123.45", "43B112345"),  # motorbike
        ("43B1-123.45", "43B112345"),
        ("43-AA 123.45", "43AA12345"),  # two-letter series
        ("29đ-123.45", "29Đ12345"),  # Đ kept, lower case raised
        ("99Z-999.99", "99Z99999"),  # an unknown province is still a plate
        ("NG-123-45", "NG12345"),  # diplomatic / foreign style
        ("ABC 1234", "ABC1234"),  # a foreign plate
        ("T 12/34", "T1234"),  # temporary
    ],
)
def test_accepted_plates(raw: str, normalised: str) -> None:
    assert plate_problem(raw) is None
    assert normalise_plate(raw) == normalised


@pytest.mark.parametrize("raw", ["", "   ", "ABCDEF", "43A<script>", "43A_123", "1", "43A-123.45-678.90-12", "🚗123"])
def test_rejected_plates(raw: str) -> None:
    assert plate_problem(raw) is not None
