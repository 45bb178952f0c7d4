from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

from services.identity.clients.scopes import ALL_SCOPES

GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]
AuthMethod = Literal["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "::1", "localhost"})


def check_redirect_uri(uri: str) -> str:
    """RFC 8252 / RFC 9700: https, loopback http, or a private-use scheme; no fragment, no wildcards."""
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ValueError("redirect URIs must not contain a fragment")
    if "*" in uri:
        raise ValueError("redirect URIs must not contain wildcards")
    if parts.scheme == "https" and parts.hostname:
        if parts.username or parts.password:
            raise ValueError("redirect URIs must not contain user information")
        return uri
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return uri
    if parts.scheme and "." in parts.scheme and not parts.netloc:
        return uri  # private-use scheme of a native app, e.g. vn.gov.danang.app:/oauth2redirect
    raise ValueError("redirect URIs must be https, http on a loopback address, or a private-use scheme")


class ClientCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    client_type: Literal["public", "confidential"]
    grant_types: list[GrantType] = Field(min_length=1)
    redirect_uris: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(min_length=1)
    token_endpoint_auth_method: AuthMethod | None = None
    logo_uri: str | None = Field(default=None, max_length=2000)
    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{3,64}$")
    # Public keys for private_key_jwt (a JWK Set); private members are refused.
    jwks: dict[str, Any] | None = None

    @field_validator("logo_uri")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("the logo must be an https URL")
        return value

    @field_validator("jwks")
    @classmethod
    def _jwks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        keys = value.get("keys")
        if not isinstance(keys, list) or not keys:
            raise ValueError("jwks must be a JWK Set with at least one key")
        for key in keys:
            if (
                not isinstance(key, dict)
                or key.get("kty") not in ("RSA", "EC")
                or any(member in key for member in ("d", "p", "q", "dp", "dq", "qi", "k"))
            ):
                raise ValueError("jwks must hold only public RSA or EC keys")
        try:
            KeySet.import_key_set(value)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise ValueError(f"jwks is not a valid JWK Set: {exc}") from exc
        return value

    @field_validator("redirect_uris")
    @classmethod
    def _redirects(cls, value: list[str]) -> list[str]:
        return [check_redirect_uri(v) for v in value]

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - ALL_SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {' '.join(unknown)}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _consistent(self) -> ClientCreate:
        if self.client_type == "public":
            if "client_credentials" in self.grant_types:
                raise ValueError("public clients cannot use client_credentials")
            if self.token_endpoint_auth_method not in (None, "none"):
                raise ValueError("public clients authenticate with 'none' (PKCE instead)")
            self.token_endpoint_auth_method = "none"  # noqa: S105
        else:
            if self.token_endpoint_auth_method in (None, "none"):
                self.token_endpoint_auth_method = "client_secret_basic"  # noqa: S105
        if "authorization_code" in self.grant_types and not self.redirect_uris:
            raise ValueError("authorization_code clients need at least one redirect URI")
        if self.token_endpoint_auth_method == "private_key_jwt" and not self.jwks:  # noqa: S105
            raise ValueError("private_key_jwt clients must register their public keys (jwks)")
        if "refresh_token" in self.grant_types and "authorization_code" not in self.grant_types:
            raise ValueError("refresh_token goes with authorization_code")
        return self


class ClientCreated(BaseModel):
    client_id: str
    client_secret: str | None
    name: str
    client_type: str
    grant_types: list[str]
    redirect_uris: list[str]
    scopes: list[str]
    token_endpoint_auth_method: str
    logo_uri: str | None = None
