"""Public registration and password-reset endpoints, and the signed-in person's credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from services.identity.accounts import service
from services.identity.accounts.dependencies import ClientIp, CurrentMe
from services.identity.accounts.schemas import (
    CodeSubmission,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    PasswordResetStarted,
    Registration,
    RegistrationCreated,
    RegistrationVerified,
    TotpConfirm,
    TotpDisable,
    TotpEnabled,
    TotpEnrolment,
)
from services.identity.accounts.validators import normalise_phone
from shared.db import SessionDep
from shared.errors import field_error, problem_responses

router = APIRouter(prefix="/v1/identity", tags=["accounts"])


@router.post(
    "/registrations",
    status_code=201,
    response_model=RegistrationCreated,
    responses=problem_responses(409, 422, 429, 503),
)
async def create_registration(
    request: Request, session: SessionDep, body: Annotated[Registration, Body()]
) -> RegistrationCreated:
    """Register a citizen, foreigner or business account; a 6-digit code is sent to the phone by SMS."""
    row = await service.register(session, request.app.state.redis, request.app.state.sms_sender, body)
    return RegistrationCreated(id=row.id, phone=row.phone_e164, code_expires_at=row.expires_at)


@router.post(
    "/registrations/{registration_id}/verify",
    response_model=RegistrationVerified,
    responses=problem_responses(400, 404, 409, 422),
)
async def verify_registration(registration_id: str, session: SessionDep, body: CodeSubmission) -> RegistrationVerified:
    """Confirm the phone with the SMS code: the account becomes active at assurance level 1."""
    account = await service.verify_registration(session, registration_id, body.code)
    return RegistrationVerified(sub=account.id, level=account.level, acr=account.acr)


@router.post(
    "/registrations/{registration_id}/resend",
    response_model=RegistrationCreated,
    responses=problem_responses(404, 409, 429, 503),
)
async def resend_registration_code(registration_id: str, request: Request, session: SessionDep) -> RegistrationCreated:
    """Send a new verification code (rate-limited); the previous code stops working."""
    row = await service.resend_registration_code(
        session, request.app.state.redis, request.app.state.sms_sender, registration_id
    )
    return RegistrationCreated(id=row.id, phone=row.phone_e164, code_expires_at=row.expires_at)


@router.post(
    "/password-resets", status_code=202, response_model=PasswordResetStarted, responses=problem_responses(422, 429, 503)
)
async def request_password_reset(
    request: Request, session: SessionDep, body: PasswordResetRequest
) -> PasswordResetStarted:
    """Ask for a password-reset code by SMS; the answer does not tell whether the phone has an account."""
    try:
        phone = normalise_phone(body.phone, vietnamese_only=False)
    except ValueError as exc:
        raise field_error("body.phone", str(exc)) from exc
    reset_id, expires = await service.start_password_reset(
        session, request.app.state.redis, request.app.state.sms_sender, phone
    )
    return PasswordResetStarted(id=reset_id, code_expires_at=expires)  # type: ignore[arg-type]


@router.post(
    "/password-resets/{reset_id}/confirm",
    status_code=204,
    response_class=Response,
    responses=problem_responses(400, 422),
)
async def confirm_password_reset(
    reset_id: str, request: Request, session: SessionDep, body: PasswordResetConfirm
) -> Response:
    """Set a new password with the SMS code; the account's sign-in lockout is cleared."""
    await service.confirm_password_reset(session, request.app.state.redis, reset_id, body.code, body.new_password)
    return Response(status_code=204)


@router.post("/me/password", status_code=204, response_class=Response, responses=problem_responses(401, 403, 422, 429))
async def change_my_password(
    me: CurrentMe, ip: ClientIp, request: Request, session: SessionDep, body: PasswordChange
) -> Response:
    """Change the password (the current one is required)."""
    await service.change_password(
        session,
        request.app.state.redis,
        me.account,
        current=body.current_password,
        new=body.new_password,
        client_ip=ip,
        client_id=me.client_id,
    )
    return Response(status_code=204)


@router.post("/me/totp", response_model=TotpEnrolment, responses=problem_responses(401, 403, 409))
async def start_totp_enrolment(me: CurrentMe, session: SessionDep) -> TotpEnrolment:
    """Start enrolling an authenticator app (TOTP): returns the secret to scan."""
    secret, uri = await service.start_totp(session, me.account)
    return TotpEnrolment(secret=secret, otpauth_uri=uri)


@router.post("/me/totp/confirm", response_model=TotpEnabled, responses=problem_responses(401, 403, 409, 422))
async def confirm_totp_enrolment(me: CurrentMe, session: SessionDep, body: TotpConfirm) -> TotpEnabled:
    """Finish the enrolment with a code from the app; returns single-use recovery codes (shown once)."""
    codes = await service.confirm_totp(session, me.account, body.code, client_id=me.client_id)
    return TotpEnabled(recovery_codes=codes)


@router.post(
    "/me/totp/disable", status_code=204, response_class=Response, responses=problem_responses(401, 403, 409, 422, 429)
)
async def disable_totp(
    me: CurrentMe, ip: ClientIp, request: Request, session: SessionDep, body: TotpDisable
) -> Response:
    """Turn the second factor off (password and a current code or recovery code required)."""
    await service.disable_totp(
        session,
        request.app.state.redis,
        me.account,
        password=body.password,
        code=body.code,
        client_ip=ip,
        client_id=me.client_id,
    )
    return Response(status_code=204)
