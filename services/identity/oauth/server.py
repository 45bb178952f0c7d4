"""Da Nang ID's OAuth 2.0 / OpenID Connect server: Authlib's core, configured strictly.

Authlib decides the protocol (grant rules, client authentication, PKCE, OpenID code flow, revocation,
introspection); this module supplies its storage callbacks, which read the data gathered beforehand
and record writes on the current :class:`~services.identity.oauth.exchange.Exchange`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import rfc6749, rfc7009, rfc7523, rfc7636, rfc7662, rfc9207
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, InvalidScopeError
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode, OpenIDToken
from authlib.oidc.core.grants.util import create_half_hash
from joserfc.jwk import KeySet

from services.identity.clients.models import OAuthClient
from services.identity.clients.scopes import ALL_SCOPES
from services.identity.keys.service import ACCESS_TOKEN_ALG, ID_TOKEN_ALG, Keyring
from services.identity.oauth.exchange import (
    AccessTokenInfo,
    NewCode,
    RefreshTokenInfo,
    UserContext,
    current,
)
from services.identity.oauth.tokens import mint_access_token

CODE_TTL_S = 60
ASSERTION_ALGORITHMS = ["RS256", "PS256", "ES256"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ALL_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
# RFC 8252 §7.3: for a loopback IP literal the port may vary (a native app picks a free one).
_LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?(/[^?#]*)?(\?[^#]*)?$")


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact string comparison; only the port of a loopback IP redirect may differ."""
    if hmac.compare_digest(registered.encode(), presented.encode()):
        return True
    a, b = _LOOPBACK.match(registered), _LOOPBACK.match(presented)
    if not a or not b:
        return False
    port = b.group(2)
    if port is not None and not 0 < int(port) < 65536:
        return False
    parts = urlsplit(presented)
    if parts.username or parts.password or parts.fragment:
        return False
    return (a.group(1), a.group(3) or "", a.group(4) or "") == (b.group(1), b.group(3) or "", b.group(4) or "")


@dataclass(frozen=True)
class ClientView(rfc6749.ClientMixin):
    """An immutable snapshot of a registered client, cached in memory between requests."""

    client_id: str
    name: str
    client_type: str
    secret_sha256: str | None
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    token_endpoint_auth_method: str
    jwks: dict[str, Any] | None
    logo_uri: str | None

    @classmethod
    def of(cls, row: OAuthClient) -> ClientView:
        return cls(
            client_id=row.client_id,
            name=row.name,
            client_type=row.client_type,
            secret_sha256=row.secret_sha256,
            grant_types=tuple(row.grant_types),
            redirect_uris=tuple(row.redirect_uris),
            scopes=frozenset(row.scopes),
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            jwks=row.jwks,
            logo_uri=row.logo_uri,
        )

    @property
    def is_public(self) -> bool:
        return self.client_type == "public"

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OpenID Connect: redirect_uri is always required

    def get_allowed_scope(self, scope: str | None) -> str | None:
        requested = (scope or "").split()
        if not requested or not set(requested) <= self.scopes:
            return None  # a scope the client is not registered for: invalid_scope, never silently dropped
        return " ".join(dict.fromkeys(requested))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(r, redirect_uri) for r in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_sha256:
            return False
        return hmac.compare_digest(self.secret_sha256, sha256(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class CodeRecord:
    """Authlib's view of a stored authorization code."""

    def __init__(self, row: Any) -> None:
        self.row = row

    def get_redirect_uri(self) -> str:
        return str(self.row.redirect_uri)

    def get_scope(self) -> str:
        return str(self.row.scope)

    def get_nonce(self) -> str | None:
        return self.row.nonce  # type: ignore[no-any-return]

    def get_auth_time(self) -> int:
        return int(self.row.auth_time)

    def get_acr(self) -> str:
        return str(self.row.acr)

    def get_amr(self) -> list[str] | None:
        return list(self.row.amr) or None

    @property
    def code_challenge(self) -> str | None:
        return self.row.code_challenge  # type: ignore[no-any-return]

    @property
    def code_challenge_method(self) -> str | None:
        return self.row.code_challenge_method  # type: ignore[no-any-return]


class StrictCodeChallenge(rfc7636.CodeChallenge):
    """PKCE with S256 only; required of public clients at the authorization endpoint."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if data.get("code_challenge"):
            if data.get("code_challenge_method") != "S256":
                raise InvalidRequestError("'code_challenge_method' must be S256")
        elif grant.request.client.is_public:
            raise InvalidRequestError("PKCE (code_challenge with S256) is required for public clients")


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        current().new_code = NewCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            user=request.user,
        )

    def query_authorization_code(self, code: str, client: Any) -> CodeRecord | None:
        ex = current()
        row = ex.codes.get(sha256(code))
        if row is None or row.client_id != client.get_client_id():
            return None
        if row.used_at is not None:
            # RFC 6749 §4.1.2 / RFC 9700: a second redemption revokes what the first one issued.
            ex.revoke_code_family = row
            return None
        if row.expires_at.timestamp() <= ex.now:
            return None
        return CodeRecord(row)

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        current().redeem_code = authorization_code.row

    def authenticate_user(self, authorization_code: CodeRecord) -> UserContext | None:
        row = authorization_code.row
        user = current().users.get(row.sub)
        if user is None:
            return None
        return UserContext(sub=row.sub, acr=row.acr, auth_time=row.auth_time, account=user.account, amr=list(row.amr))


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh returns a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshTokenInfo | None:
        ex = current()
        info = ex.refresh_tokens.get(sha256(refresh_token))
        if info is None:
            return None
        if info.row.rotated_at is not None and info.grant.revoked_at is None:
            # Reuse of a rotated token: someone holds a copy. Revoke the whole family (RFC 9700 §4.14).
            ex.revoke_grant_ids[info.grant.id] = "refresh_token_reuse"
            return None
        if info.is_revoked() or info.is_expired():
            return None
        return info

    def authenticate_user(self, refresh_token: RefreshTokenInfo) -> UserContext | None:
        grant = refresh_token.grant
        user = current().users.get(grant.sub)
        if user is None:
            return None
        return UserContext(sub=grant.sub, acr=grant.acr, auth_time=grant.auth_time, account=user.account)

    def revoke_old_credential(self, refresh_token: RefreshTokenInfo) -> None:
        current().rotate_refresh = refresh_token.row


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_requested_scope(self) -> None:
        # Authlib checks only that the server knows the scope; the client must be registered for it.
        super().validate_requested_scope()
        scope = self.request.payload.scope
        if scope is not None and (not scope.split() or not set(scope.split()) <= self.request.client.scopes):
            raise InvalidScopeError("The client is not registered for the requested scope.")


class _DaNangIdTokens:
    """ID tokens signed RS256 with the identity keyring (kid in the header), for the code and refresh grants."""

    provider: Provider

    def get_client_algorithm(self, client: Any) -> str:
        return ID_TOKEN_ALG

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.provider.issuer,
            "aud": [client.get_client_id()],
            "azp": client.get_client_id(),
            "iat": now,
            "exp": now + self.provider.id_token_ttl_s,
        }

    def generate_user_info(self, user: UserContext, scope: str) -> UserInfo:
        return self.provider.user_info(user, scope)

    def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
        claims = self.get_compatible_claims(request)  # type: ignore[attr-defined]
        if request.authorization_code:
            claims.update(self.get_authorization_code_claims(request.authorization_code))  # type: ignore[attr-defined]
        else:
            # A refresh (OpenID Connect Core §12.2): same iss, sub, aud and azp, a new iat, the time and level
            # of the original authentication, and no nonce.
            claims["auth_time"] = int(request.user.auth_time)
            claims["acr"] = request.user.acr
        at_hash = create_half_hash(token["access_token"], ID_TOKEN_ALG)
        if at_hash is not None:
            claims["at_hash"] = at_hash.decode()
        claims.update(self.generate_user_info(request.user, token["scope"]))
        claims["sub"] = request.user.sub
        return self.provider.keyring.sign(claims, alg=ID_TOKEN_ALG, typ="JWT")


class DaNangOpenIDCode(_DaNangIdTokens, OpenIDCode):
    """OpenID Connect code flow."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return current().nonce_seen


class DaNangOpenIDRefresh(_DaNangIdTokens, OpenIDToken):
    """A refresh whose scope includes openid also returns a new ID token."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider


class PrivateKeyJWT(rfc7523.JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523 §2.2 / OIDC Core §9): assertion signed with a key the client registered."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, provider: Provider) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.provider = provider

    def get_audiences(self) -> list[str]:
        issuer = self.provider.issuer
        return [issuer, issuer + "/oauth2/token", issuer + "/oauth2/revoke", issuer + "/oauth2/introspect"]

    def resolve_client_public_key(self, client: Any) -> KeySet:
        if not client.jwks:
            raise InvalidClientError(description="The client registered no keys.")
        return KeySet.import_key_set(client.jwks)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="Invalid client assertion.") from exc
        exp = token.claims.get("exp")
        if not isinstance(exp, int) or exp > time.time() + 600:
            raise InvalidClientError(description="Client assertions may live at most 10 minutes.")
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        # Recorded here, made single-use (Redis SET NX) when the exchange is committed.
        current().assertion_jtis.append((str(claims["sub"]), str(jti), int(claims["exp"])))
        return True


class TokenQueryMixin:
    """Find a presented token among the ones gathered beforehand."""

    SUPPORTED_TOKEN_TYPES = ("access_token", "refresh_token")

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        ex = current()
        return ex.access_tokens.get(token_string) or ex.refresh_tokens.get(sha256(token_string))


class RevocationEndpoint(TokenQueryMixin, rfc7009.RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def revoke_token(self, token: Any, request: Any) -> None:
        ex = current()
        if isinstance(token, RefreshTokenInfo):
            # RFC 7009 §2.1: revoking a refresh token revokes its grant's access tokens too.
            ex.revoke_grant_ids[token.grant.id] = "revoked_by_client"
        else:
            ex.revoke_jtis.append((str(token.claims["jti"]), int(token.claims["exp"])))


class IntrospectionEndpoint(TokenQueryMixin, rfc7662.IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def __init__(self, server: Any, provider: Provider) -> None:
        super().__init__(server)
        self.provider = provider

    def check_permission(self, token: Any, client: Any, request: Any) -> bool:
        # Access tokens are JWTs their holders can read anyway; refresh tokens only to their own client.
        return isinstance(token, AccessTokenInfo) or bool(token.check_client(client))

    def introspect_token(self, token: Any) -> dict[str, Any]:
        if isinstance(token, AccessTokenInfo):
            claims = token.claims
            body = {"active": True, "token_type": "Bearer", "iss": claims["iss"], "aud": claims["aud"]}
            for name in ("scope", "client_id", "sub", "exp", "iat", "jti", "acr", "auth_time"):
                if name in claims:
                    body[name] = claims[name]
            return body
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": token.client_id,
            "sub": token.grant.sub,
            "scope": token.get_scope(),
            "exp": int(token.row.expires_at.timestamp()),
            "iat": int(token.row.created_at.timestamp()),
            "iss": self.provider.issuer,
        }


class IssuerParameter(rfc9207.IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response, errors included."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class Provider(rfc6749.AuthorizationServer):
    """The Authlib authorization server of Da Nang ID. Shared by all requests; per-request data lives
    in the current Exchange."""

    def __init__(
        self,
        *,
        keyring: Keyring,
        issuer: str,
        audience: str,
        access_token_ttl_s: int,
        id_token_ttl_s: int,
        refresh_token_ttl_s: int,
        claims: Any,
    ) -> None:
        super().__init__(scopes_supported=sorted(ALL_SCOPES))
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.access_token_ttl_s = access_token_ttl_s
        self.id_token_ttl_s = id_token_ttl_s
        self.refresh_token_ttl_s = refresh_token_ttl_s
        self.user_info = claims
        self.register_token_generator("default", self._generate_token)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(self))
        self.register_grant(AuthorizationCodeGrant, [StrictCodeChallenge(required=True), DaNangOpenIDCode(self)])
        self.register_grant(RefreshTokenGrant, [DaNangOpenIDRefresh(self)])
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint(self, self))
        self.register_extension(IssuerParameter(issuer))

    # -- storage callbacks ------------------------------------------------------------------------
    def query_client(self, client_id: str) -> ClientView | None:
        client = current().clients.get(client_id)
        return client if isinstance(client, ClientView) else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        ex = current()
        if request.user is None:
            return  # client credentials: a stateless JWT, nothing to store
        ex.client_id = request.client.client_id
        if request.refresh_token is not None:
            ex.grant_id = request.refresh_token.grant.id
        elif request.authorization_code is not None:
            row = request.authorization_code.row
            ex.grant_id = secrets.token_hex(16)
            ex.new_grant = {
                "id": ex.grant_id,
                "client_id": row.client_id,
                "sub": row.sub,
                "scope": token["scope"],
                "auth_time": row.auth_time,
                "acr": row.acr,
                "code_sha256": row.code_sha256,
            }
        if token.get("refresh_token"):
            ex.new_refresh_tokens.append(token["refresh_token"])

    def _generate_token(
        self,
        grant_type: str,
        client: ClientView,
        user: UserContext | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        ex = current()
        if scope is None and grant_type == "client_credentials":
            scope = " ".join(sorted(client.scopes))
        scope = scope or ""
        access_token, claims = mint_access_token(
            self.keyring,
            issuer=self.issuer,
            audience=self.audience,
            client_id=client.client_id,
            scopes=scope.split(),
            ttl_s=self.access_token_ttl_s,
            sub=user.sub if user else None,
            acr=user.acr if user else None,
            auth_time=user.auth_time if user else None,
            now=int(ex.now),
        )
        ex.minted.append(claims)
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access_token,
            "expires_in": self.access_token_ttl_s,
            "scope": claims["scope"],
        }
        if include_refresh_token and user is not None:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    # -- framework hooks --------------------------------------------------------------------------
    def create_oauth2_request(self, request: Any) -> Any:
        return request  # the adapter builds the OAuth2Request itself

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Any:
        from services.identity.oauth.adapter import CoreResponse

        return CoreResponse(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


__all__ = ["ACCESS_TOKEN_ALG", "CODE_TTL_S", "ClientView", "Provider", "redirect_uri_matches", "sha256"]
