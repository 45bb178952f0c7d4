"""The committed OpenAPI documents (openapi/<service>.json) are exactly what the code serves."""

from __future__ import annotations

import pytest

from dncity.openapi_export import build_document, render, stale_summary
from shared.settings import SERVICE_NAMES


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_committed_openapi_document_matches_the_code(service: str) -> None:
    summary = stale_summary(service, render(build_document(service)))
    assert summary is None, (
        f"openapi/{service}.json is out of date with the code. Run `make openapi` and commit openapi/.\n{summary}"
    )


def test_export_check_mode_reports_a_stale_file(tmp_path, capsys) -> None:
    from dncity.openapi_export import main

    assert main(["--dir", str(tmp_path), "parking"]) == 0
    assert main(["--check", "--dir", str(tmp_path), "parking"]) == 0
    document = (tmp_path / "parking.json").read_text(encoding="utf-8")
    assert document.endswith("}\n")
    # A route the file lacks: the check names it and tells what to run.
    stale = document.replace('"/readyz"', '"/readyz-old"')
    (tmp_path / "parking.json").write_text(stale, encoding="utf-8")
    capsys.readouterr()
    assert main(["--check", "--dir", str(tmp_path), "parking"]) == 1
    err = capsys.readouterr().err
    assert "make openapi" in err
    assert "+ GET /readyz (in the code, not in the file)" in err
    assert "- GET /readyz-old (in the file, not in the code)" in err
    (tmp_path / "parking.json").unlink()
    assert main(["--check", "--dir", str(tmp_path), "parking"]) == 1
    assert "missing" in capsys.readouterr().err
