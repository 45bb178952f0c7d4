"""The authorization endpoint and the pages a person sees: sign in, two-step code, consent.

Every authorization request is validated by Authlib (client, redirect URI, response type, scope,
PKCE, nonce, prompt) each time it is evaluated — first arrival, after sign-in, after consent — so a
stored pending request can never skip a check.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts import service as accounts
from services.identity.accounts.dependencies import client_ip
from services.identity.clients.scopes import USER_SCOPES
from services.identity.oauth import consents, repository
from services.identity.oauth.adapter import CoreRequest
from services.identity.oauth.claims import load_active_account
from services.identity.oauth.exchange import UserContext
from services.identity.oauth.i18n import TEXT, choose_language
from services.identity.oauth.models import AuthorizationCode
from services.identity.oauth.runtime import OAuthRuntime, new_exchange, redis_of, runtime
from services.identity.oauth.server import ClientView
from services.identity.oauth.sessions import BrowserState, PendingRequest, SignIn, now
from shared.db import SessionDep
from shared.errors import ProblemError

router = APIRouter(tags=["oauth"])
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


def browser_state(request: Request) -> BrowserState:
    rt = runtime(request)
    return BrowserState(
        redis_of(request),
        rt.settings.session_secret,
        session_ttl_s=rt.settings.session_ttl_s,
        request_ttl_s=rt.settings.authorization_request_ttl_s,
        secure=rt.issuer.startswith("https://"),
    )


def page(request: Request, name: str, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = templates.get_template(name).render(lang=lang, t=TEXT[lang], nonce=nonce, **context)
    response = HTMLResponse(
        html,
        status_code=status,
        headers={
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' https: data:; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
    return browser_state(request).attach(request, response)


def error_page(request: Request, lang: str, message: str, status: int = 400) -> HTMLResponse:
    return page(request, "error.html", lang, status, title=TEXT[lang]["title_error"], message=message)


def _core(rt: OAuthRuntime, params: list[tuple[str, str]], headers: Any) -> CoreRequest:
    uri = f"{rt.issuer}/oauth2/authorize?{urlencode(params)}"
    return CoreRequest("GET", uri, headers, params, [])


def _redirect(location: str, after_post: bool) -> RedirectResponse:
    # 303 after a POST so the browser follows with GET and never re-posts the form (OAuth 2.1 §7.5.1).
    return RedirectResponse(location, status_code=303 if after_post else 302, headers={"Cache-Control": "no-store"})


def _error_redirect(rt: OAuthRuntime, core: CoreRequest, error: OAuth2Error, after_post: bool) -> Response:
    _status, _body, headers = error()
    location = dict(headers).get("Location")
    assert location
    location = add_params_to_uri(location, [("iss", rt.issuer)])  # RFC 9207: errors too
    return _redirect(location, after_post)


async def authorization_outcome(
    request: Request,
    session: AsyncSession,
    params: list[tuple[str, str]],
    *,
    after_post: bool,
    pending: PendingRequest | None = None,
    rid: str | None = None,
    consent_given: bool = False,
    denied: bool = False,
    sign_in: SignIn | None = None,
) -> Response:
    """Evaluate an authorization request: an error, the sign-in page, the consent page, or the code."""
    rt = runtime(request)
    state = browser_state(request)
    data = dict(params)
    lang = pending.lang if pending else choose_language(data.get("ui_locales"), request.headers.get("accept-language"))
    core = _core(rt, params, request.headers)
    ex = new_exchange()
    client_id = data.get("client_id", "")
    if client_id:
        ex.clients[client_id] = await rt.clients.get(session, client_id)
    client: ClientView | None = ex.clients.get(client_id)
    if data.get("nonce") and client is not None:
        ex.nonce_seen = bool(
            await session.scalar(
                select(
                    exists().where(AuthorizationCode.client_id == client_id, AuthorizationCode.nonce == data["nonce"])
                )
            )
        )

    # Who is signed in, and does that sign-in satisfy prompt=login and max_age?
    sign_in = sign_in or await state.signed_in(request)
    user: UserContext | None = None
    if sign_in is not None:
        account = await load_active_account(session, sign_in.sub)
        if account is not None:
            user = UserContext(
                sub=sign_in.sub,
                acr=account.acr or sign_in.acr,
                auth_time=sign_in.auth_time,
                account=account,
                amr=sign_in.amr,
            )
    fresh = user is not None and pending is not None and pending.login_sub == user.sub
    prompts = data.get("prompt", "").split()
    too_old = user is not None and data.get("max_age", "").isdigit() and now() - user.auth_time > int(data["max_age"])
    if user is not None and not fresh and ("login" in prompts or too_old):
        user = None  # OIDC Core §3.1.2.1: prompt=login and max_age demand a new sign-in

    with ex:
        try:
            if len(core.payload.datalist.get("nonce", [])) > 1 or len(core.payload.datalist.get("prompt", [])) > 1:
                raise InvalidRequestError("Repeated parameter")
            grant = rt.provider.get_consent_grant(core, end_user=user)
            if data.get("request") or data.get("request_uri"):
                raise _request_not_supported(grant.redirect_uri, data.get("state"))
            if data.get("max_age") and not data["max_age"].isdigit():
                raise InvalidRequestError(
                    "'max_age' must be a number of seconds", redirect_uri=grant.redirect_uri, state=data.get("state")
                )
        except OAuth2Error as error:
            if error.redirect_uri:
                return _error_redirect(rt, core, error, after_post)
            # Never redirect to an unverified URI: show the problem to the person instead.
            return error_page(request, lang, f"{error.error}: {error.description or ''}".strip())
    assert client is not None
    requested = (grant.request.scope or "").split()

    if user is None:
        if "none" in prompts:
            return _error_redirect(
                rt, core, LoginRequiredError(redirect_uri=grant.redirect_uri, state=data.get("state")), after_post
            )
        pending = PendingRequest(params=params, browser=state.ensure_browser(request), lang=lang)
        rid = await state.save_request(pending)
        return state.attach(request, _redirect(f"/oauth2/signin?{urlencode({'rid': rid})}", after_post))

    if not denied and not consent_given:
        agreed = await consents.agreed_scopes(session, sub=user.sub, client_id=client.client_id)
        if "consent" in prompts or not set(requested) <= agreed:
            if "none" in prompts:
                return _error_redirect(
                    rt, core, ConsentRequiredError(redirect_uri=grant.redirect_uri, state=data.get("state")), after_post
                )
            pending = pending or PendingRequest(params=params, browser=state.ensure_browser(request), lang=lang)
            pending.login_sub = user.sub
            rid = await state.save_request(pending, rid)
            return state.attach(request, _redirect(f"/oauth2/consent?{urlencode({'rid': rid})}", after_post))

    with ex:
        result = rt.provider.create_authorization_response(core, grant_user=None if denied else user, grant=grant)
    await repository.commit_exchange(session, redis_of(request), ex, rt.settings.refresh_token_ttl_s)
    if rid:
        await state.drop_request(rid)
    assert result.location
    return _redirect(result.location, after_post)


def _request_not_supported(redirect_uri: str, state: str | None) -> OAuth2Error:
    error = OAuth2Error("Request objects are not supported", redirect_uri=redirect_uri, state=state)
    error.error = "request_not_supported"
    return error


AUTHORIZE_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {"description": "To the client's redirect URI (code or error, with iss and state), or to sign-in"},
    303: {"description": "As 302, after a POST"},
    400: {
        "description": "An error shown to the person (unknown client or unregistered redirect URI)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
}


@router.get("/oauth2/authorize", response_class=HTMLResponse, responses=AUTHORIZE_RESPONSES)
async def authorize(request: Request, session: SessionDep) -> Response:
    """Authorization endpoint (code flow only; PKCE S256; OpenID Connect prompt/max_age/ui_locales)."""
    return await authorization_outcome(
        request, session, parse_qsl(request.url.query, keep_blank_values=True), after_post=False
    )


@router.post(
    "/oauth2/authorize",
    response_class=HTMLResponse,
    responses=AUTHORIZE_RESPONSES,
    openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}},
)
async def authorize_post(request: Request, session: SessionDep) -> Response:
    """Authorization endpoint by POST (OpenID Connect Core §3.1.2.1)."""
    body = (await request.body()).decode("utf-8", "replace")
    return await authorization_outcome(request, session, parse_qsl(body, keep_blank_values=True), after_post=True)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _client_display(client: ClientView | None) -> dict[str, Any]:
    return {"client_name": client.name if client else "", "client_logo": client.logo_uri if client else None}


@router.get("/oauth2/signin", response_class=HTMLResponse, include_in_schema=False)
async def signin_page(request: Request, session: SessionDep, rid: str = "") -> Response:
    state = browser_state(request)
    pending = await state.load_request(request, rid)
    if pending is None:
        lang = choose_language(None, request.headers.get("accept-language"))
        return error_page(request, lang, TEXT[lang]["err_expired"])
    client = await runtime(request).clients.get(session, pending.param.get("client_id", ""))
    return page(
        request,
        "signin.html",
        pending.lang,
        title=TEXT[pending.lang]["title_signin"],
        rid=rid,
        csrf=state.csrf_token(pending.browser, rid),
        login_hint=pending.param.get("login_hint", ""),
        error=None,
        **_client_display(client),
    )


@router.post("/oauth2/signin", response_class=HTMLResponse, include_in_schema=False)
async def signin_submit(request: Request, session: SessionDep) -> Response:
    state = browser_state(request)
    form = await _form(request)
    rid = form.get("rid", "")
    pending = await state.load_request(request, rid)
    if pending is None:
        lang = choose_language(None, request.headers.get("accept-language"))
        return error_page(request, lang, TEXT[lang]["err_expired"])
    t = TEXT[pending.lang]
    client_id = pending.param.get("client_id", "")
    client = await runtime(request).clients.get(session, client_id)

    def again(message: str, status: int = 400) -> Response:
        return page(
            request,
            "signin.html",
            pending.lang,
            status,
            title=t["title_signin"],
            rid=rid,
            csrf=state.csrf_token(pending.browser, rid),
            login_hint=form.get("login", ""),
            error=message,
            **_client_display(client),
        )

    if not state.check_csrf(request, rid, form.get("csrf_token")):
        return again(t["err_csrf"], 403)
    if not form.get("login") or not form.get("password"):
        return again(t["err_missing"])
    try:
        account = await accounts.authenticate(
            session,
            redis_of(request),
            login=form["login"],
            password=form["password"],
            client_ip=client_ip(request) or "",
            client_id=client_id,
        )
    except ProblemError as exc:
        key = {"account_locked": "err_account_locked", "account_not_active": "err_account_not_active"}.get(
            exc.code, "err_invalid_credentials"
        )
        response = again(t[key], exc.status if exc.status in (401, 403, 429) else 400)
        if "Retry-After" in exc.headers:
            response.headers["Retry-After"] = exc.headers["Retry-After"]
        return response
    if accounts.requires_totp(account):
        pending.totp_sub, pending.totp_auth_time = account.id, now()
        await state.save_request(pending, rid)
        return _redirect(f"/oauth2/signin/totp?{urlencode({'rid': rid})}", True)
    return await _signed_in(request, session, state, pending, rid, account, amr=["pwd"])


async def _signed_in(
    request: Request,
    session: AsyncSession,
    state: BrowserState,
    pending: PendingRequest,
    rid: str,
    account: Any,
    *,
    amr: list[str],
) -> Response:
    pending.login_sub, pending.totp_sub = account.id, None
    await state.save_request(pending, rid)
    sign_in = SignIn(sub=account.id, auth_time=now(), acr=account.acr or "urn:dncity:loa:1", amr=amr)
    response = await authorization_outcome(
        request, session, pending.params, after_post=True, pending=pending, rid=rid, sign_in=sign_in
    )
    await state.start_session(request, response, sign_in)
    return response


@router.get("/oauth2/signin/totp", response_class=HTMLResponse, include_in_schema=False)
async def totp_page(request: Request, rid: str = "") -> Response:
    state = browser_state(request)
    pending = await state.load_request(request, rid)
    if pending is None or not pending.totp_sub:
        lang = choose_language(None, request.headers.get("accept-language"))
        return error_page(request, lang, TEXT[lang]["err_expired"])
    return page(
        request,
        "totp.html",
        pending.lang,
        title=TEXT[pending.lang]["title_totp"],
        rid=rid,
        csrf=state.csrf_token(pending.browser, rid),
        error=None,
    )


@router.post("/oauth2/signin/totp", response_class=HTMLResponse, include_in_schema=False)
async def totp_submit(request: Request, session: SessionDep) -> Response:
    state = browser_state(request)
    form = await _form(request)
    rid = form.get("rid", "")
    pending = await state.load_request(request, rid)
    if pending is None or not pending.totp_sub or now() - (pending.totp_auth_time or 0) > 300:
        lang = choose_language(None, request.headers.get("accept-language"))
        return error_page(request, lang, TEXT[lang]["err_expired"])
    t = TEXT[pending.lang]

    def again(message: str, status: int = 400) -> Response:
        return page(
            request,
            "totp.html",
            pending.lang,
            status,
            title=t["title_totp"],
            rid=rid,
            csrf=state.csrf_token(pending.browser, rid),
            error=message,
        )

    if not state.check_csrf(request, rid, form.get("csrf_token")):
        return again(t["err_csrf"], 403)
    account = await load_active_account(session, pending.totp_sub)
    if account is None:
        return again(t["err_account_not_active"], 403)
    try:
        ok = await accounts.verify_totp(session, redis_of(request), account, form.get("code", ""))
    except ProblemError as exc:
        return again(t["err_account_locked"] if exc.status == 429 else t["err_totp"], exc.status)
    if not ok:
        return again(t["err_totp"])
    return await _signed_in(request, session, state, pending, rid, account, amr=["pwd", "otp"])


@router.get("/oauth2/consent", response_class=HTMLResponse, include_in_schema=False)
async def consent_page(request: Request, session: SessionDep, rid: str = "") -> Response:
    state = browser_state(request)
    pending = await state.load_request(request, rid)
    sign_in = await state.signed_in(request)
    if pending is None or sign_in is None or pending.login_sub != sign_in.sub:
        lang = choose_language(None, request.headers.get("accept-language"))
        return error_page(request, lang, TEXT[lang]["err_expired"])
    lang = pending.lang
    client = await runtime(request).clients.get(session, pending.param.get("client_id", ""))
    account = await load_active_account(session, sign_in.sub)
    words = [USER_SCOPES[s][lang] for s in dict.fromkeys(pending.param.get("scope", "").split()) if s in USER_SCOPES]
    person = (account.display_name or account.phone_e164 or "") if account else ""
    return page(
        request,
        "consent.html",
        lang,
        title=TEXT[lang]["title_consent"],
        rid=rid,
        csrf=state.csrf_token(pending.browser, rid),
        scopes=words,
        person=person,
        **_client_display(client),
    )


@router.post("/oauth2/consent", response_class=HTMLResponse, include_in_schema=False)
async def consent_submit(request: Request, session: SessionDep) -> Response:
    state = browser_state(request)
    form = await _form(request)
    rid = form.get("rid", "")
    pending = await state.load_request(request, rid)
    sign_in = await state.signed_in(request)
    if pending is None or sign_in is None or pending.login_sub != sign_in.sub:
        lang = choose_language(None, request.headers.get("accept-language"))
        return error_page(request, lang, TEXT[lang]["err_expired"])
    if not state.check_csrf(request, rid, form.get("csrf_token")):
        return error_page(request, pending.lang, TEXT[pending.lang]["err_csrf"], 403)
    if form.get("decision") != "allow":
        return await authorization_outcome(
            request, session, pending.params, after_post=True, pending=pending, rid=rid, denied=True
        )
    client_id = pending.param.get("client_id", "")
    client = await runtime(request).clients.get(session, client_id)
    scopes = [s for s in pending.param.get("scope", "").split() if client is not None and s in client.scopes]
    await consents.grant(session, sub=sign_in.sub, client_id=client_id, scopes=scopes)
    return await authorization_outcome(
        request, session, pending.params, after_post=True, pending=pending, rid=rid, consent_given=True
    )
