"""Refuse request input that would crash the database layer, as a 422 naming the field.

- NUL characters: PostgreSQL cannot store U+0000 in text columns (asyncpg raises, the request would end
  in a 500), and no legitimate value in this platform contains one. Checked in path parameters, declared
  query parameters and JSON/form body fields.
- Date-times: the platform stores only timezone-aware UTC (shared.db.UTCDateTime raises on a naive value),
  and converting e.g. 0001-01-01T00:00:00+14:00 to UTC overflows. A declared datetime query parameter or
  JSON body field must carry a zone and lie, in UTC, within years 2..9998 (a year of margin each way,
  so services' own date arithmetic cannot overflow either).
The rule for bad input is a 4xx problem naming the field. (A middleware cannot see a route's declared
inputs; an app-wide dependency runs after routing and body parsing, before the endpoint's own dependencies.)
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.errors import FieldError, Unprocessable

_NUL = "\x00"


def _find_nul(value: Any, loc: tuple[str, ...]) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return loc if _NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _NUL in str(key):
                return (*loc, str(key).replace(_NUL, "\\u0000"))
            found = _find_nul(item, (*loc, str(key)))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, (*loc, str(index)))
            if found:
                return found
    return None


def _body_nul_field(body: Any) -> tuple[str, ...] | None:
    return _find_nul(body, ("body",))


_DATETIME = TypeAdapter(datetime)
_EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _datetime_problem(raw: Any) -> str | None:
    """Why a raw date-time value is unusable, or None (also when it does not parse: validation answers)."""
    if not isinstance(raw, str):
        return None  # numbers are Unix times (UTC, in range): nothing to add
    try:
        value = _DATETIME.validate_python(raw)
    except ValidationError:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        return "Give a time zone, e.g. 2026-01-01T08:00:00+07:00"
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return "The time is out of range"
    if not _EARLIEST <= utc < _LATEST:
        return "The time is out of range"
    return None


def _walk_datetimes(annotation: Any, value: Any, loc: tuple[str, ...]) -> tuple[tuple[str, ...], str] | None:
    """The first date-time field in a JSON value (typed by ``annotation``) that _datetime_problem refuses."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _walk_datetimes(get_args(annotation)[0], value, loc)
    if annotation is datetime:
        problem = _datetime_problem(value)
        return (loc, problem) if problem else None
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is not type(None) and (found := _walk_datetimes(arg, value, loc)):
                return found
        return None
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        for index, item in enumerate(value):
            item_type = args[min(index, len(args) - 1)] if args else Any
            if found := _walk_datetimes(item_type, item, (*loc, str(index))):
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, dict):
        for name, info in annotation.model_fields.items():
            key = info.alias or name
            if key in value and (found := _walk_datetimes(info.annotation, value[key], (*loc, key))):
                return found
    return None


def _body_params(route: APIRoute) -> list[Any]:
    from fastapi.dependencies import utils

    flat = getattr(utils, "_get_flat_body_params", None)
    return list(flat(route.dependant)) if flat else list(route.dependant.body_params)


def _mentions_datetime(annotation: Any, seen: set[int] | None = None) -> bool:
    seen = set() if seen is None else seen
    if annotation is datetime:
        return True
    if id(annotation) in seen:
        return False
    seen.add(id(annotation))
    if any(_mentions_datetime(arg, seen) for arg in get_args(annotation)):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_mentions_datetime(f.annotation, seen) for f in annotation.model_fields.values())
    return False


@dataclass(frozen=True)
class _RouteInputs:
    declared: frozenset[str]  # every declared parameter name (query names among them)
    datetime_queries: tuple[tuple[str, Any], ...]
    body_params: tuple[Any, ...]
    embed: bool
    body_has_datetime: bool


def _inputs(route: APIRoute) -> _RouteInputs:
    """What a route declares, computed once per route (the guard runs on every request)."""
    found: _RouteInputs | None = getattr(route, "_dncity_inputs", None)
    if found is None:
        params = get_flat_params(route.dependant)
        body = tuple(_body_params(route)) if route.body_field is not None else ()
        found = _RouteInputs(
            declared=frozenset(p.alias for p in params),
            datetime_queries=tuple(
                (p.alias, p.field_info.annotation) for p in params if _mentions_datetime(p.field_info.annotation)
            ),
            body_params=body,
            embed=len(body) > 1 or any(getattr(p.field_info, "embed", False) for p in body),
            body_has_datetime=any(_mentions_datetime(p.field_info.annotation) for p in body),
        )
        route._dncity_inputs = found  # type: ignore[attr-defined]  # routes are unhashable: kept on the route
    return found


async def reject_nul(request: Request) -> None:
    """App-wide dependency: 422 naming the field for NUL in a path parameter, a declared query
    parameter or a JSON/form body field, or for an unusable date-time (see the module docstring).
    It runs after routing, so it sees the route's declared inputs."""
    field: tuple[str, ...] | None = None
    for name, value in request.path_params.items():
        if isinstance(value, str) and _NUL in value:
            field = ("path", name)
            break
    route = request.scope.get("route")
    if field is None and "%00" in request.url.query:
        declared = _inputs(route).declared if isinstance(route, APIRoute) else frozenset()
        for key, value in request.query_params.multi_items():
            if key in declared and _NUL in value:
                field = ("query", key)
                break
    if field is None and isinstance(route, APIRoute) and route.body_field is not None:
        content_type = request.headers.get("content-type", "").lower()
        if "json" in content_type:
            body = await request.body()  # already read (and cached) by FastAPI before dependencies run
            if b"\x00" in body or b"\\u0000" in body.lower():
                try:
                    field = _body_nul_field(json.loads(body))
                except ValueError:
                    field = None  # not JSON: the normal validation answers it
        elif "application/x-www-form-urlencoded" in content_type or "multipart/form-data" in content_type:
            form = await request.form()
            for key, value in form.multi_items():
                if _NUL in key or (isinstance(value, str) and _NUL in value):
                    field = ("body", key.replace(_NUL, "\\u0000"))
                    break
    if field is None and isinstance(route, APIRoute):
        await _check_datetimes(request, route)
    if field is not None:
        raise Unprocessable(
            "Invalid value for " + ".".join(field),
            code="validation_error",
            title="Invalid request",
            errors=[FieldError(field=".".join(field), message="Must not contain NUL characters", type="string_nul")],
        )


async def _check_datetimes(request: Request, route: APIRoute) -> None:
    inputs = _inputs(route)
    found: tuple[tuple[str, ...], str] | None = None
    for alias, annotation in inputs.datetime_queries:
        raw = request.query_params.get(alias)
        if raw is not None and (found := _walk_datetimes(annotation, raw, ("query", alias))):
            break
    if found is None and inputs.body_has_datetime:
        if "json" not in request.headers.get("content-type", "").lower():
            return
        try:
            body = json.loads(await request.body())
        except ValueError:
            return  # not JSON: the normal validation answers it
        for param in inputs.body_params:
            loc: tuple[str, ...]
            if inputs.embed:
                if not isinstance(body, dict) or param.alias not in body:
                    continue
                value, loc = body[param.alias], ("body", param.alias)
            else:
                value, loc = body, ("body",)
            if found := _walk_datetimes(param.field_info.annotation, value, loc):
                break
    if found is not None:
        loc, message = found
        name = ".".join(loc)
        raise Unprocessable(
            "Invalid value for " + name,
            code="validation_error",
            title="Invalid request",
            errors=[FieldError(field=name, message=message, type="datetime_invalid")],
        )
