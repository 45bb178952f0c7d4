"""The FastAPI ↔ Authlib adapter: Starlette requests in, Authlib's (status, body, headers) out.

Authlib ships no FastAPI server integration. Its core is synchronous; here it is handed a request
whose form/query were already read (async) and, through the Exchange, the stored data it may look
up, so running it inline never waits on I/O (see exchange.py for why not a worker thread).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from fastapi import Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class CoreRequest(OAuth2Request):
    """An OAuth2Request over values already read from a Starlette request."""

    def __init__(
        self, method: str, uri: str, headers: Headers, query: list[tuple[str, str]], form: list[tuple[str, str]]
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = Payload(query)
        self._form = Payload(form)
        # Parameters come from the query for GET and from the body for POST, never mixed.
        self.payload = self._form if method == "POST" else self._args

    @property
    def args(self) -> dict[str, str]:
        return self._args.data

    @property
    def form(self) -> dict[str, str]:
        return self._form.data

    def duplicated(self) -> list[str]:
        return sorted(k for k, v in self.payload.datalist.items() if len(v) > 1)


@dataclass
class CoreResponse:
    """What Authlib's ``handle_response`` returns; ``location`` is writable for RFC 9207's hook."""

    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "location":
                return value
        return None

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "location"] + [("Location", value)]

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> dict[str, Any]:
        if isinstance(self.body, dict):
            return self.body
        return dict(json.loads(self.body)) if self.body else {}


async def read_request(request: Request, public_url: str) -> CoreRequest:
    """Read query and (for POST) the urlencoded body; the URI Authlib sees is the public one, so its
    https check applies to what clients really use."""
    query = parse_qsl(request.url.query, keep_blank_values=True)
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if body and content_type != FORM_MEDIA_TYPE:
            raise InvalidRequestError("The body must be application/x-www-form-urlencoded.")
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidRequestError("The body is not valid form data.") from exc
    uri = public_url.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return CoreRequest(request.method, uri, request.headers, query, form)


def to_response(result: CoreResponse, *, no_store: bool = True, redirect_status: int = 302) -> Response:
    headers = dict(result.headers)
    headers.pop("Content-Type", None)
    if no_store:
        headers.update(NO_STORE)
    if result.status in (301, 302, 303, 307) and result.location:
        location = headers.pop("Location")
        return RedirectResponse(location, status_code=redirect_status, headers=headers)
    body = result.body if isinstance(result.body, dict) else (json.loads(result.body) if result.body else {})
    return JSONResponse(body, status_code=result.status, headers=headers)


def error_response(error: OAuth2Error) -> Response:
    """An OAuth error as the JSON body RFC 6749 §5.2 describes (not problem+json: clients parse this)."""
    status, body, headers = error()
    result = CoreResponse(status, body, list(headers))
    return to_response(result)
