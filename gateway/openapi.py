"""One OpenAPI document for the whole platform, merged from every service's own document."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                out[key] = "#/components/schemas/" + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_EDGE_ALWAYS = {
    "400": "Malformed request at the edge (e.g. an access token in the query string)",
    "429": "Rate limited (Retry-After and RateLimit headers)",
    "502": "The service is unavailable",
    "503": "Circuit open or rate limiter unavailable (Retry-After)",
    "504": "The service did not answer in time",
}
_EDGE_AUTH = {"401": "Missing or invalid access token", "403": "Insufficient scope or not a person's token"}
_BODY_METHODS = frozenset({"post", "put", "patch"})


def declare_edge_responses(doc: dict[str, Any], policy_for: Callable[[str, str], Any]) -> None:
    """Declare the statuses the gateway itself may answer on each forwarded operation (its policy)."""
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            route = policy_for(method.upper(), path)
            if route is None or getattr(route.policy, "local", False):
                continue
            extra = dict(_EDGE_ALWAYS)
            if route.policy.auth != "public":
                extra.update(_EDGE_AUTH)
            if method in _BODY_METHODS:
                extra["413"] = "Request body too large"
            for status, description in extra.items():
                operation["responses"].setdefault(status, {"description": description, "content": _PROBLEM})


def merge(documents: dict[str, dict[str, Any]], *, title: str, version: str, own: dict[str, Any]) -> dict[str, Any]:
    """Merge per-service documents; a schema name used differently by two services gets a prefix."""
    merged: dict[str, Any] = {
        "openapi": own.get("openapi", "3.1.0"),
        "info": {
            "title": title,
            "version": version,
            "description": "Every service of the Da Nang citizen super-app behind one base URL.",
        },
        "paths": copy.deepcopy(own.get("paths", {})),
        "components": {"schemas": copy.deepcopy(own.get("components", {}).get("schemas", {}))},
        "tags": list(own.get("tags", [])),
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    for service, doc in sorted(documents.items()):
        renames: dict[str, str] = {}
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            if name in schemas and json.dumps(schemas[name], sort_keys=True) != json.dumps(schema, sort_keys=True):
                renames[name] = f"{service}__{name}"
        doc = _rewrite_refs(doc, renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(renames.get(name, name) if name in renames else name, schema)
        for path, item in doc.get("paths", {}).items():
            if path in OPS_PATHS:
                continue
            for operation in item.values():
                if isinstance(operation, dict):
                    operation.setdefault("tags", [service])
            merged["paths"][path] = item
        for tag in doc.get("tags", []) or []:
            if tag not in merged["tags"]:
                merged["tags"].append(tag)
        for name, scheme in doc.get("components", {}).get("securitySchemes", {}).items():
            merged["components"].setdefault("securitySchemes", {})[name] = scheme
    return merged
