"""The live-deployment checks stay out of the normal suite, visibly: deselected with the reason, never
silently skipped. (With --base-url they run: `make contract BASE_URL=...`.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def collect(*args: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/contract/test_live_deployment.py",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout + result.stderr


def test_without_a_base_url_the_live_checks_are_deselected_with_the_reason() -> None:
    out = collect()
    assert "deselected" in out, out
    assert "make contract BASE_URL=" in out, out
    assert "test_deployment_answers_and_every_service_is_healthy" not in out.split("deselected")[0]
