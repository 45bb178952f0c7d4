"""Protocol endpoints: token, revocation, introspection, userinfo and discovery metadata."""

from __future__ import annotations

import re
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from services.identity.clients.scopes import ALL_SCOPES
from services.identity.oauth import repository
from services.identity.oauth.adapter import NO_STORE, error_response, read_request, to_response
from services.identity.oauth.claims import IDENTITY_CLAIMS, load_active_account, user_info
from services.identity.oauth.exchange import UserContext
from services.identity.oauth.repository import LazySession
from services.identity.oauth.runtime import new_exchange, redis_of, runtime
from services.identity.oauth.server import ASSERTION_ALGORITHMS, ID_TOKEN_ALG
from shared.db import SessionDep

router = APIRouter(tags=["oauth"])


class OAuthErrorBody(BaseModel):
    """RFC 6749 §5.2 error response."""

    error: str
    error_description: str | None = None
    error_uri: str | None = None


class TokenResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    access_token: str
    token_type: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None


class IntrospectionResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    active: bool


def _form_body(fields: dict[str, str], required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {name: {"type": "string", "description": d} for name, d in fields.items()},
                        "required": required,
                    }
                }
            },
        }
    }


CLIENT_AUTH_FIELDS = {
    "client_id": "client_secret_post, none (public clients), or with a client assertion",
    "client_secret": "client_secret_post",
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer (private_key_jwt)",
    "client_assertion": "a JWT signed with a key the client registered (private_key_jwt)",
}
OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorBody, "description": "OAuth error (RFC 6749 §5.2)"},
    401: {"model": OAuthErrorBody, "description": "Client authentication failed"},
}


async def _read(request: Request) -> Any:
    core = await read_request(request, runtime(request).issuer)
    duplicated = core.duplicated()
    if duplicated:
        # Name only well-formed parameters: Authlib refuses descriptions with other characters.
        named = [name for name in duplicated if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name)]
        raise InvalidRequestError(f"Repeated parameter: {', '.join(named)}" if named else "Repeated parameter")
    return core


@router.post(
    "/oauth2/token",
    response_model=TokenResponse,
    responses=OAUTH_ERRORS,
    openapi_extra=_form_body(
        {
            "grant_type": "authorization_code | refresh_token | client_credentials",
            "code": "authorization_code",
            "redirect_uri": "authorization_code",
            "code_verifier": "PKCE (RFC 7636)",
            "refresh_token": "refresh_token",
            "scope": "optional: narrow the scope",
            **CLIENT_AUTH_FIELDS,
        },
        ["grant_type"],
    ),
)
async def issue_token(request: Request) -> Response:
    """Token endpoint: authorization code (+PKCE), refresh token (rotated), client credentials."""
    rt = runtime(request)
    try:
        core = await _read(request)
    except OAuth2Error as error:
        return error_response(error)
    grant_type, form = core.form.get("grant_type"), core.form
    ex = new_exchange()
    # The request is the transaction, as with SessionDep; but a client-credentials grant for a cached
    # client needs no database at all, so the session is opened only when something reads or writes.
    async with LazySession(request.app.state.db) as session:
        await rt.gather_clients(session, ex, core)
        if grant_type == "authorization_code" and form.get("code"):
            await repository.gather_code(session, ex, form["code"])
        elif grant_type == "refresh_token" and form.get("refresh_token"):
            await repository.gather_refresh(session, ex, form["refresh_token"])
        with ex:
            result = rt.provider.create_token_response(core)
        lost = await repository.commit_exchange(session, redis_of(request), ex, rt.settings.refresh_token_ttl_s)
    if lost is not None:
        return error_response(lost)
    return to_response(result)


@router.post(
    "/oauth2/revoke",
    responses={200: {"description": "Revoked (or unknown: RFC 7009 §2.2)"}, **OAUTH_ERRORS},
    openapi_extra=_form_body(
        {"token": "the token to revoke", "token_type_hint": "access_token | refresh_token", **CLIENT_AUTH_FIELDS},
        ["token"],
    ),
)
async def revoke_token(request: Request, session: SessionDep) -> Response:
    """Token revocation (RFC 7009): a refresh token revokes its whole grant."""
    return await _token_endpoint(request, session, "revocation")


@router.post(
    "/oauth2/introspect",
    response_model=IntrospectionResponse,
    responses=OAUTH_ERRORS,
    openapi_extra=_form_body(
        {"token": "the token to examine", "token_type_hint": "access_token | refresh_token", **CLIENT_AUTH_FIELDS},
        ["token"],
    ),
)
async def introspect_token(request: Request, session: SessionDep) -> Response:
    """Token introspection (RFC 7662), for confidential clients."""
    return await _token_endpoint(request, session, "introspection")


async def _token_endpoint(request: Request, session: Any, name: str) -> Response:
    rt = runtime(request)
    try:
        core = await _read(request)
    except OAuth2Error as error:
        return error_response(error)
    ex = new_exchange()
    await rt.gather_clients(session, ex, core)
    await rt.gather_presented_token(session, ex, core)
    with ex:
        result = rt.provider.create_endpoint_response(name, core)
    await repository.commit_exchange(session, redis_of(request), ex, rt.settings.refresh_token_ttl_s)
    response = to_response(result)
    if name == "revocation" and result.is_success:
        response = Response(status_code=200, headers=NO_STORE)
    return response


def _bearer_error(status: int, error: str, description: str) -> JSONResponse:
    header = f'Bearer error="{error}", error_description="{description}"'
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"WWW-Authenticate": header, **NO_STORE},
    )


USERINFO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Claims about the person, by the token's scopes"},
    400: {"model": OAuthErrorBody, "description": "The body is not form data"},
    401: {"model": OAuthErrorBody, "description": "Missing, invalid, expired or revoked access token"},
    403: {"model": OAuthErrorBody, "description": "The token lacks the openid scope"},
}


@router.get("/oauth2/userinfo", responses=USERINFO_RESPONSES)
async def get_userinfo(request: Request, session: SessionDep) -> Response:
    """OpenID Connect UserInfo: the signed-in person's claims, by the token's scopes."""
    return await _userinfo(request, session)


@router.post(
    "/oauth2/userinfo",
    responses=USERINFO_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"access_token": {"type": "string"}}}
                }
            },
        }
    },
)
async def post_userinfo(request: Request, session: SessionDep) -> Response:
    """OpenID Connect UserInfo by POST (token in the Authorization header or the form body)."""
    return await _userinfo(request, session)


async def _userinfo(request: Request, session: Any) -> Response:
    rt = runtime(request)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else ""
    if not token and request.method == "POST":
        try:
            core = await read_request(request, rt.issuer)
        except OAuth2Error:
            return _bearer_error(400, "invalid_request", "The body must be form data")
        token = core.form.get("access_token", "")
    if not token:
        return JSONResponse(
            {"error": "invalid_token", "error_description": "An access token is required"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="dncity"', **NO_STORE},
        )
    info = await rt.verify_access_token(session, token)
    if info is None or info.revoked:
        return _bearer_error(401, "invalid_token", "The access token is invalid, expired or revoked")
    claims = info.claims
    if claims.get("sub") == claims.get("client_id"):
        return _bearer_error(401, "invalid_token", "A client's own token has no person behind it")
    if "openid" not in str(claims.get("scope", "")).split():
        return _bearer_error(403, "insufficient_scope", "The token lacks the openid scope")
    account = await load_active_account(session, str(claims["sub"]))
    if account is None:
        return _bearer_error(401, "invalid_token", "The account is no longer active")
    user = UserContext(sub=str(claims["sub"]), acr=str(claims.get("acr", "")), auth_time=0, account=account)
    body = dict(user_info(user, str(claims["scope"])))
    return JSONResponse(body, headers=NO_STORE)


def metadata(issuer: str) -> dict[str, Any]:
    """Exactly what the provider supports (RFC 8414 and OpenID Connect Discovery 1.0)."""
    auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    confidential = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "scopes_supported": sorted(ALL_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": confidential,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "at_hash",
            "azp",
            "name",
            "birthdate",
            "locale",
            "updated_at",
            "phone_number",
            "phone_number_verified",
            "email",
            "email_verified",
            "address",
            *IDENTITY_CLAIMS,
        ],
        "acr_values_supported": ["urn:dncity:loa:1", "urn:dncity:loa:2"],
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": ["vi", "en"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "service_documentation": f"{issuer}/docs",
    }


@router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
async def openid_configuration(request: Request) -> Any:
    """OpenID Connect Discovery 1.0 provider metadata."""
    return JSONResponse(metadata(runtime(request).issuer), headers={"Cache-Control": "public, max-age=300"})


@router.get("/.well-known/oauth-authorization-server", summary="OAuth authorization server metadata")
async def oauth_authorization_server(request: Request) -> Any:
    """RFC 8414 authorization server metadata (the same document)."""
    return JSONResponse(metadata(runtime(request).issuer), headers={"Cache-Control": "public, max-age=300"})
