"""Signing out of Da Nang ID from an agency's app: OpenID Connect RP-Initiated Logout 1.0.

``GET|POST /oauth2/logout`` (the ``end_session_endpoint``) takes ``id_token_hint``, ``client_id``,
``post_logout_redirect_uri``, ``state`` and ``ui_locales``:

- ``id_token_hint`` must be an ID token this provider signed (an expired one is accepted, as the
  specification allows); with ``client_id`` as well, the token must have been issued to that client.
- ``post_logout_redirect_uri`` must be registered for the client, named by ``client_id`` or by the
  hint's audience. Like Keycloak's default ("+"), the client's registered redirect URIs are its
  post-logout redirect URIs. Anything else is an error page: never a redirect to an unregistered URI.
- With a valid hint for the person signed in here (or nobody signed in), the session ends at once.
  Otherwise the person confirms on a page (CSRF-protected), so a link on another site cannot sign
  them out.

Ending the session deletes it server-side (Redis) and clears the cookie; access and refresh tokens
already issued to apps live on until they expire or are revoked (``/oauth2/revoke``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jwt import PyJWK

from services.identity.keys.service import ID_TOKEN_ALG
from services.identity.oauth.i18n import TEXT, choose_language
from services.identity.oauth.pages import browser_state, error_page, page
from services.identity.oauth.runtime import runtime
from shared.db import SessionDep

router = APIRouter(tags=["oauth"])
CSRF_PURPOSE = "logout"
PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")

LOGOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A page: confirm signing out, or signed out", "content": {"text/html": {}}},
    302: {"description": "Signed out; back to the client's post_logout_redirect_uri (with state)"},
    400: {
        "description": "An error page: a bad id_token_hint, unknown client or unregistered URI",
        "content": {"text/html": {}},
    },
    403: {"description": "The confirmation form was not this browser's", "content": {"text/html": {}}},
}


class LogoutError(Exception):
    pass


def _hint_claims(request: Request, hint: str) -> dict[str, Any]:
    """The claims of an ID token this provider signed (signature, algorithm and issuer checked)."""
    rt = runtime(request)
    try:
        header = jwt.get_unverified_header(hint)
        keys = {k.get("kid"): k for k in request.app.state.keyring.published().get("keys", [])}
        jwk = keys.get(header.get("kid"))
        if header.get("alg") != ID_TOKEN_ALG or jwk is None:
            raise LogoutError("id_token_hint is not an ID token of this provider")
        return dict(
            jwt.decode(
                hint,
                PyJWK(jwk).key,
                algorithms=[ID_TOKEN_ALG],
                issuer=rt.issuer,
                options={"verify_aud": False, "verify_exp": False, "require": ["iss", "sub", "aud"]},
            )
        )
    except jwt.PyJWTError as exc:
        raise LogoutError("id_token_hint is not a valid ID token of this provider") from exc


async def _params(request: Request) -> dict[str, str]:
    source: Any = request.query_params
    if request.method == "POST":
        source = await request.form()
    values = {name: str(source.get(name, "")).strip() for name in (*PARAMS, "csrf_token", "confirm")}
    for name in PARAMS:
        if len(values[name]) > 4096:
            raise LogoutError(f"{name} is too long")
    return values


async def _validate(request: Request, session: SessionDep, p: dict[str, str]) -> tuple[str | None, str | None, str]:
    """(sub named by the hint, redirect URI to use, client id): every check of the specification."""
    sub = None
    audiences: list[str] = []
    if p["id_token_hint"]:
        claims = _hint_claims(request, p["id_token_hint"])
        sub = str(claims["sub"])
        aud = claims["aud"]
        audiences = [aud] if isinstance(aud, str) else [str(a) for a in aud]
        if p["client_id"] and p["client_id"] not in audiences:
            raise LogoutError("id_token_hint was not issued to this client_id")
    client_id = p["client_id"] or (audiences[0] if len(audiences) == 1 else "")
    redirect = None
    if p["post_logout_redirect_uri"]:
        if not client_id:
            raise LogoutError("post_logout_redirect_uri needs client_id or id_token_hint")
        client = await runtime(request).clients.get(session, client_id)
        if client is None:
            raise LogoutError("unknown client_id")
        if not client.check_redirect_uri(p["post_logout_redirect_uri"]):
            raise LogoutError("post_logout_redirect_uri is not registered for this client")
        redirect = p["post_logout_redirect_uri"]
    elif p["client_id"] and await runtime(request).clients.get(session, p["client_id"]) is None:
        raise LogoutError("unknown client_id")
    return sub, redirect, client_id


def _done(request: Request, lang: str, redirect: str | None, state: str) -> Response:
    if redirect:
        target = redirect + (("&" if "?" in redirect else "?") + urlencode({"state": state}) if state else "")
        return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
    return page(request, "logout.html", lang, title=TEXT[lang]["title_signed_out"], done=True)


@router.get(
    "/oauth2/logout",
    response_class=HTMLResponse,
    responses=LOGOUT_RESPONSES,
    summary="End the Da Nang ID session (OpenID Connect RP-Initiated Logout 1.0)",
)
async def logout(request: Request, session: SessionDep) -> Response:
    """Parameters in the query: id_token_hint, client_id, post_logout_redirect_uri, state, ui_locales."""
    return await _logout(request, session)


@router.post(
    "/oauth2/logout",
    response_class=HTMLResponse,
    responses=LOGOUT_RESPONSES,
    summary="End the Da Nang ID session (form post; also the confirmation page's form)",
)
async def logout_post(request: Request, session: SessionDep) -> Response:
    """The same parameters as a form; the confirmation form adds csrf_token and confirm=yes."""
    return await _logout(request, session)


async def _logout(request: Request, session: SessionDep) -> Response:
    lang = choose_language(request.query_params.get("ui_locales"), request.headers.get("accept-language"))
    try:
        p = await _params(request)
        lang = choose_language(p["ui_locales"], request.headers.get("accept-language"))
        hinted_sub, redirect, client_id = await _validate(request, session, p)
    except LogoutError as exc:
        return error_page(request, lang, f"{TEXT[lang]['err_logout']} ({exc})", 400)
    state = browser_state(request)
    signed_in = await state.signed_in(request)
    confirmed = request.method == "POST" and p["confirm"] == "yes"
    if confirmed and not state.check_csrf(request, CSRF_PURPOSE, p["csrf_token"]):
        return error_page(request, lang, TEXT[lang]["err_csrf"], 403)
    # Without a hint naming the person signed in here, ask them: a link elsewhere must not sign them out.
    if signed_in is not None and not confirmed and hinted_sub != signed_in.sub:
        browser = state.ensure_browser(request)
        return page(
            request,
            "logout.html",
            lang,
            title=TEXT[lang]["title_signout"],
            done=False,
            csrf=state.csrf_token(browser, CSRF_PURPOSE),
            fields={
                k: v
                for k, v in [
                    ("client_id", client_id),
                    ("post_logout_redirect_uri", redirect or ""),
                    ("state", p["state"]),
                    ("ui_locales", p["ui_locales"]),
                ]
                if v
            },
        )
    response = _done(request, lang, redirect, p["state"])
    await state.end_session(request, response)
    return response
