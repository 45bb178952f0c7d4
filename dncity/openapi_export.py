"""Export every service's OpenAPI document to ``openapi/<service>.json`` (``make openapi``).

The committed files are the published contract: clients and QA teams read them, and
``tests/contract/test_openapi_files.py`` fails when the code and the files differ. Documents are built
from each service's ``create_app().openapi()`` with the dev profile (dev-only routes included, so the
file describes everything the embedded platform serves) and with ``DNCITY_*`` variables of the calling
shell ignored, so the output depends on the code alone.

``python -m dncity.openapi_export --check`` writes nothing and exits 1 with a summary when a file is
stale or missing.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.settings import SERVICE_NAMES, PlatformSettings, Profile

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_DIR = ROOT / "openapi"


@contextmanager
def _without_dncity_env() -> Iterator[None]:
    """Settings read the environment; the document must not depend on the shell it is built in."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("DNCITY_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def build_document(service: str) -> dict[str, Any]:
    """The OpenAPI document of one service, as its code describes it (dev profile)."""
    module = importlib.import_module(f"services.{service}.app")
    with _without_dncity_env():
        # log_level WARNING: building an app (re)configures logging; keep it as quiet as the test suite.
        platform = PlatformSettings(profile=Profile.dev, dev_endpoints=True, log_level="WARNING")
        app = module.create_app(platform=platform)
        return dict(app.openapi())


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def path_for(service: str, directory: Path = OPENAPI_DIR) -> Path:
    return directory / f"{service}.json"


def _operations(document: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    }


def stale_summary(service: str, expected: str, directory: Path = OPENAPI_DIR) -> str | None:
    """None when the committed file matches ``expected``; otherwise a short human summary."""
    target = path_for(service, directory)
    if not target.exists():
        return f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: missing"
    current = target.read_text(encoding="utf-8")
    if current == expected:
        return None
    lines = [f"{target.name}: differs from the code"]
    try:
        old_ops, new_ops = _operations(json.loads(current)), _operations(json.loads(expected))
        for op in sorted(new_ops - old_ops):
            lines.append(f"  + {op} (in the code, not in the file)")
        for op in sorted(old_ops - new_ops):
            lines.append(f"  - {op} (in the file, not in the code)")
    except json.JSONDecodeError:
        lines.append("  (the committed file is not valid JSON)")
    diff = list(
        difflib.unified_diff(
            current.splitlines(),
            expected.splitlines(),
            f"committed/{target.name}",
            f"code/{target.name}",
            n=1,
            lineterm="",
        )
    )
    shown = diff[:40]
    lines.extend("  " + line for line in shown)
    if len(diff) > len(shown):
        lines.append(f"  … {len(diff) - len(shown)} more diff lines")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is stale")
    parser.add_argument("--dir", type=Path, default=OPENAPI_DIR, help="output directory (default: openapi/)")
    parser.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help=f"only these services (default: all of {', '.join(SERVICE_NAMES)})",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(SERVICE_NAMES))
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(SERVICE_NAMES)}")
    services: list[str] = list(args.services) or list(SERVICE_NAMES)
    stale: list[str] = []
    for service in services:
        expected = render(build_document(service))
        if args.check:
            summary = stale_summary(service, expected, args.dir)
            if summary:
                stale.append(summary)
            continue
        args.dir.mkdir(parents=True, exist_ok=True)
        target = path_for(service, args.dir)
        changed = not target.exists() or target.read_text(encoding="utf-8") != expected
        target.write_text(expected, encoding="utf-8")
        print(f"{'wrote' if changed else 'unchanged'} {target}")
    if stale:
        print("OpenAPI documents are stale; run `make openapi` and commit openapi/:\n", file=sys.stderr)
        print("\n\n".join(stale), file=sys.stderr)
        return 1
    if args.check:
        print(f"openapi/ is up to date ({', '.join(services)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
