"""Registration, phone verification, sign-in checks, password reset and change, TOTP.

``authenticate``, ``requires_totp`` and ``verify_totp`` are what the OAuth provider's sign-in calls.

A failed attempt (wrong password, wrong code) must leave a trace that survives the error response: the
attempt counter on a code, the audit record of a failed sign-in. Those functions therefore commit the
session before raising, on purpose; callers should not hold unrelated uncommitted work at that point.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import NoReturn

import pyotp
import structlog
from redis.asyncio import Redis
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts import config, crypto, lockout, passwords
from services.identity.accounts.models import Account, AccountKind, AccountStatus, CodePurpose, PhoneCode
from services.identity.accounts.schemas import (
    BusinessRegistration,
    CitizenRegistration,
    ForeignerRegistration,
)
from services.identity.accounts.validators import try_phone
from services.identity.audit.service import record
from services.identity.sms.sender import SmsSender
from shared.db import new_id, utcnow
from shared.errors import (
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ProblemError,
    TooManyRequests,
    Unauthorized,
    field_error,
)

log = structlog.get_logger("identity.accounts")

AnyRegistration = CitizenRegistration | ForeignerRegistration | BusinessRegistration
RECOVERY_CODES = 10

_MESSAGES = {
    CodePurpose.registration.value: {
        "vi": "Ma xac thuc Da Nang ID cua ban la {code}. Ma co hieu luc {minutes} phut. Khong chia se ma nay.",
        "en": "Your Da Nang ID verification code is {code}. It expires in {minutes} minutes. Never share it.",
    },
    CodePurpose.password_reset.value: {
        "vi": "Ma dat lai mat khau Da Nang ID: {code}. Hieu luc {minutes} phut. Neu khong phai ban, hay bo qua.",
        "en": "Your Da Nang ID password reset code is {code}. It expires in {minutes} minutes. "
        "If you did not ask for it, ignore this message.",
    },
}


def invalid_credentials() -> Unauthorized:
    return Unauthorized("The login or password is wrong", code="invalid_credentials")


def not_active() -> Forbidden:
    return Forbidden("This account cannot sign in", code="account_not_active")


async def _commit_then_raise(session: AsyncSession, error: ProblemError) -> NoReturn:
    """Keep the record of a failed attempt (counter, audit) although the request ends in an error."""
    await session.commit()
    raise error


# ---------------------------------------------------------------------------------------------- codes


async def _throttle_send(redis: Redis | None, purpose: str, phone: str) -> None:
    """At most one SMS per cooldown and N per hour for a phone and purpose, whoever asks."""
    if redis is None:
        return
    cfg = config.settings()
    key = f"dncity:identity:sms:{purpose}:{hashlib.sha256(phone.encode()).hexdigest()[:32]}"
    cooldown = await redis.ttl(key + ":cooldown")
    if cooldown and cooldown > 0:
        raise TooManyRequests(
            "A code was sent moments ago; wait before asking again",
            code="resend_too_soon",
            headers={"Retry-After": str(cooldown)},
            retry_after_s=int(cooldown),
        )
    sent = await redis.incr(key + ":hour")
    if sent == 1:
        await redis.expire(key + ":hour", 3600)
    if sent > cfg.code_max_sends_per_hour:
        retry = max(1, int(await redis.ttl(key + ":hour")))
        raise TooManyRequests(
            "Too many codes were sent to this phone; try again later",
            code="too_many_codes",
            headers={"Retry-After": str(retry)},
            retry_after_s=retry,
        )
    if cfg.code_resend_cooldown_s > 0:
        await redis.set(key + ":cooldown", "1", ex=cfg.code_resend_cooldown_s)


async def _issue_code(session: AsyncSession, sender: SmsSender, row: PhoneCode, *, language: str) -> None:
    cfg = config.settings()
    code = crypto.new_sms_code()
    row.code_hmac = crypto.code_hmac(code, context=row.id)
    row.expires_at = utcnow() + timedelta(seconds=cfg.code_ttl_s)
    row.attempts = 0
    row.invalidated = False
    await session.flush()
    template = _MESSAGES[row.purpose]["en" if language == "en" else "vi"]
    body = template.format(code=code, minutes=max(1, cfg.code_ttl_s // 60))
    await sender.send(session, to=row.phone_e164, body=body, kind=f"code.{row.purpose}")


async def _check_code(session: AsyncSession, row: PhoneCode, code: str) -> None:
    """Constant-time comparison of a submitted code; wrong attempts are counted and persisted."""
    if row.invalidated:
        raise BadRequest("Too many wrong codes; ask for a new one", code="code_invalidated")
    if row.expires_at <= utcnow():
        raise BadRequest("The code has expired; ask for a new one", code="code_expired")
    if not crypto.code_matches(code.strip(), row.code_hmac, context=row.id):
        row.attempts += 1
        remaining = max(0, config.settings().code_max_attempts - row.attempts)
        row.invalidated = remaining == 0
        await record(
            session, sub=row.account_id, action=f"{row.purpose}.code_failed", details={"attempts_remaining": remaining}
        )
        if remaining == 0:
            await _commit_then_raise(
                session, BadRequest("Too many wrong codes; ask for a new one", code="code_invalidated")
            )
        await _commit_then_raise(
            session, BadRequest("The code is wrong", code="invalid_code", attempts_remaining=remaining)
        )
    row.consumed_at = utcnow()


# --------------------------------------------------------------------------------------- registration


def _personal_values(data: AnyRegistration) -> tuple[str | None, ...]:
    phone_national = "0" + data.phone[3:] if data.phone.startswith("+84") else data.phone
    return (
        data.phone,
        phone_national,
        getattr(data, "citizen_id", None),
        getattr(data, "passport_number", None),
        getattr(data, "tax_code", None),
    )


def _identifier_filters(data: AnyRegistration) -> list[tuple[str, str, object]]:
    """(field, problem code, SQL condition) for each identifier that must be unique."""
    filters: list[tuple[str, str, object]] = [("phone", "phone_taken", Account.phone_e164 == data.phone)]
    if isinstance(data, CitizenRegistration):
        filters.append(("citizen_id", "citizen_id_taken", Account.citizen_id == data.citizen_id))
    if isinstance(data, ForeignerRegistration):
        filters.append(
            (
                "passport_number",
                "passport_taken",
                and_(Account.passport_number == data.passport_number, Account.nationality == data.nationality),
            )
        )
    if isinstance(data, BusinessRegistration):
        filters.append(("tax_code", "tax_code_taken", Account.tax_code == data.tax_code))
    return filters


async def _purge_stale_pending(session: AsyncSession, conditions: list[object]) -> None:
    """A registration nobody verified in time stops blocking its phone and identifiers."""
    cutoff = utcnow() - timedelta(seconds=config.settings().pending_registration_ttl_s)
    stale = list(
        await session.scalars(
            select(Account.id).where(
                Account.status == AccountStatus.pending_verification.value,
                Account.created_at < cutoff,
                or_(*conditions),  # type: ignore[arg-type]
            )
        )
    )
    if stale:
        await session.execute(delete(PhoneCode).where(PhoneCode.account_id.in_(stale)))
        await session.execute(delete(Account).where(Account.id.in_(stale)))


async def register(session: AsyncSession, redis: Redis | None, sender: SmsSender, data: AnyRegistration) -> PhoneCode:
    """Create a pending account and text it a code. Bad or duplicate data stores nothing."""
    problem = passwords.policy_problem(data.password, personal=_personal_values(data))
    if problem:
        raise field_error("body.password", problem, "weak_password")
    filters = _identifier_filters(data)
    await _purge_stale_pending(session, [cond for _, _, cond in filters])
    for field, code, cond in filters:
        if (await session.scalar(select(Account.id).where(cond).limit(1))) is not None:  # type: ignore[arg-type]
            raise Conflict(
                f"An account with this {field.replace('_', ' ')} already exists",
                code=code,
                errors=[FieldError(field=f"body.{field}", message="already registered", type="duplicate")],
            )
    account = Account(
        id=new_id(),
        kind=data.kind,
        status=AccountStatus.pending_verification.value,
        level=0,
        phone_e164=data.phone,
        phone_verified=False,
        preferred_language=data.preferred_language,
        recovery_code_hashes=[],
    )
    if isinstance(data, CitizenRegistration | ForeignerRegistration):
        account.full_name = data.full_name
        account.date_of_birth = data.date_of_birth
    if isinstance(data, CitizenRegistration):
        account.citizen_id = data.citizen_id
    elif isinstance(data, ForeignerRegistration):
        account.passport_number = data.passport_number
        account.nationality = data.nationality
    else:
        representative = await session.scalar(
            select(Account).where(
                Account.citizen_id == data.representative_citizen_id,
                Account.kind == AccountKind.citizen.value,
                Account.status == AccountStatus.active.value,
            )
        )
        if representative is None:
            raise field_error(
                "body.representative_citizen_id",
                "no active citizen account has this personal ID",
                "unknown_representative",
            )
        account.business_name = data.business_name
        account.tax_code = data.tax_code
        account.representative_sub = representative.id
    await _throttle_send(redis, CodePurpose.registration.value, data.phone)
    account.password_hash = await passwords.hash_password(data.password)
    account.password_changed_at = utcnow()
    session.add(account)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race for an identifier
        raise Conflict("An account with these details already exists", code="duplicate_account") from exc
    row = PhoneCode(
        id=new_id(),
        account_id=account.id,
        purpose=CodePurpose.registration.value,
        phone_e164=account.phone_e164,
        code_hmac="",
        expires_at=utcnow(),
        created_at=utcnow(),
    )
    session.add(row)
    await _issue_code(session, sender, row, language=account.preferred_language)
    await record(session, sub=account.id, action="account.registered", details={"kind": account.kind})
    log.info("account_registered", kind=account.kind)
    return row


async def _registration(session: AsyncSession, registration_id: str) -> tuple[PhoneCode, Account]:
    row = await session.scalar(
        select(PhoneCode).where(PhoneCode.id == registration_id, PhoneCode.purpose == CodePurpose.registration.value)
    )
    account = await session.get(Account, row.account_id) if row else None
    if row is None or account is None:
        raise NotFound("No such registration", code="registration_not_found")
    if row.consumed_at is not None or account.status != AccountStatus.pending_verification.value:
        raise Conflict("This registration is already verified", code="already_verified")
    return row, account


async def verify_registration(session: AsyncSession, registration_id: str, code: str) -> Account:
    row, account = await _registration(session, registration_id)
    await _check_code(session, row, code)
    account.status = AccountStatus.active.value
    account.phone_verified = True
    account.level = 1
    account.activated_at = utcnow()
    await session.flush()
    await record(session, sub=account.id, action="account.verified", details={"method": "sms"})
    await record(session, sub=account.id, action="level.changed", details={"from": 0, "to": 1})
    return account


async def resend_registration_code(
    session: AsyncSession, redis: Redis | None, sender: SmsSender, registration_id: str
) -> PhoneCode:
    row, account = await _registration(session, registration_id)
    await _throttle_send(redis, CodePurpose.registration.value, row.phone_e164)
    await _issue_code(session, sender, row, language=account.preferred_language)
    await record(session, sub=account.id, action="registration.code_resent")
    return row


# -------------------------------------------------------------------------------------------- sign-in


async def find_by_login(session: AsyncSession, login: str) -> tuple[Account | None, str]:
    """The account a login names (a phone number in any accepted form, or a 12-digit personal ID)."""
    text = login.strip().replace(" ", "")
    if len(text) == 12 and text.isdigit():
        return await session.scalar(select(Account).where(Account.citizen_id == text)), text
    phone = try_phone(text)
    if phone is None:
        return None, text
    return await session.scalar(select(Account).where(Account.phone_e164 == phone)), phone


async def authenticate(
    session: AsyncSession,
    redis: Redis | None,
    *,
    login: str,
    password: str,
    client_ip: str,
    client_id: str | None,
) -> Account:
    """Check a login and password with lockout and audit.

    Raises ProblemError: invalid_credentials (401), account_locked (429 + Retry-After),
    account_not_active (403, only once the password is right).
    """
    account, normalised = await find_by_login(session, login)
    account_key = lockout.account_subject(account.id if account else None, normalised)
    ip_key = lockout.ip_subject(client_ip)
    try:
        await lockout.ensure_not_locked(redis, account_key, ip_key)
    except ProblemError:
        if account is not None:
            await record(
                session, sub=account.id, action="signin.blocked", client_id=client_id, details={"reason": "locked"}
            )
            await session.commit()
        raise
    ok = await passwords.verify_password(account.password_hash if account else None, password)
    if not ok or account is None:
        await lockout.register_failure(redis, account_key, ip_key)
        if account is not None:
            await record(
                session,
                sub=account.id,
                action="signin.failed",
                client_id=client_id,
                details={"reason": "wrong_password"},
            )
        log.info("signin_failed", known_account=account is not None)
        await _commit_then_raise(session, invalid_credentials())
    if account.status != AccountStatus.active.value:
        await record(
            session,
            sub=account.id,
            action="signin.failed",
            client_id=client_id,
            details={"reason": f"status_{account.status}"},
        )
        await _commit_then_raise(session, not_active())
    await lockout.clear_failures(redis, account_key)
    if account.password_hash and passwords.needs_rehash(account.password_hash):
        account.password_hash = await passwords.hash_password(password)
    await record(
        session,
        sub=account.id,
        action="signin.password_ok",
        client_id=client_id,
        details={"second_factor_required": requires_totp(account)},
    )
    return account


def requires_totp(account: Account) -> bool:
    return bool(account.totp_enabled and account.totp_secret_encrypted)


def _totp_step_matching(secret: str, code: str, after_step: int | None) -> int | None:
    """The time step (now ± 1) whose code this is, if not used before; pyotp computes the codes."""
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // totp.interval
    for step in (now_step - 1, now_step, now_step + 1):
        if after_step is not None and step <= after_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def _use_recovery_code(account: Account, code: str) -> bool:
    normalised = crypto.normalise_recovery_code(code)
    for stored in account.recovery_code_hashes or []:
        if crypto.code_matches(normalised, stored, context=account.id):
            account.recovery_code_hashes = [h for h in account.recovery_code_hashes if h != stored]
            return True
    return False


async def verify_totp(session: AsyncSession, redis: Redis | None, account: Account, code: str) -> bool:
    """A current TOTP code (each accepted once) or an unused recovery code.

    Failures count toward the account's lockout; while it is locked this raises account_locked (429).
    """
    subject = lockout.account_subject(account.id, "")
    await lockout.ensure_not_locked(redis, subject)
    code = code.strip().replace(" ", "")
    method = None
    if requires_totp(account):
        assert account.totp_secret_encrypted is not None
        if code.isdigit() and len(code) == 6:
            secret = crypto.decrypt_secret(account.totp_secret_encrypted, account_id=account.id)
            step = _totp_step_matching(secret, code, account.totp_last_step)
            if step is not None:
                account.totp_last_step = step
                method = "totp"
        elif _use_recovery_code(account, code):
            method = "recovery_code"
    if method is None:
        await lockout.register_failure(redis, subject)
        await record(session, sub=account.id, action="mfa.failed")
        await session.commit()
        return False
    await lockout.clear_failures(redis, subject)
    await record(
        session,
        sub=account.id,
        action="mfa.succeeded",
        details={"method": method, "recovery_codes_left": len(account.recovery_code_hashes or [])},
    )
    return True


async def check_password(
    session: AsyncSession,
    redis: Redis | None,
    account: Account,
    password: str,
    *,
    client_ip: str | None,
    client_id: str | None,
    action: str,
) -> None:
    """Password re-entry by a signed-in person (change password, TOTP off, deletion); lockout applies."""
    account_key = lockout.account_subject(account.id, "")
    ip_key = lockout.ip_subject(client_ip)
    await lockout.ensure_not_locked(redis, account_key, ip_key)
    if not await passwords.verify_password(account.password_hash, password):
        await lockout.register_failure(redis, account_key, ip_key)
        await record(session, sub=account.id, action=f"{action}.wrong_password", client_id=client_id)
        await _commit_then_raise(
            session,
            Forbidden(
                "The password is wrong",
                code="invalid_password",
                errors=[FieldError(field="body.password", message="wrong password", type="invalid")],
            ),
        )
    await lockout.clear_failures(redis, account_key)


def _personal_of(account: Account) -> tuple[str | None, ...]:
    phone = account.phone_e164
    national = "0" + phone[3:] if phone and phone.startswith("+84") else phone
    return phone, national, account.citizen_id, account.passport_number, account.tax_code


async def set_password(account: Account, new_password: str, *, field: str = "body.new_password") -> None:
    problem = passwords.policy_problem(new_password, personal=_personal_of(account))
    if problem:
        raise field_error(field, problem, "weak_password")
    account.password_hash = await passwords.hash_password(new_password)
    account.password_changed_at = utcnow()


async def change_password(
    session: AsyncSession,
    redis: Redis | None,
    account: Account,
    *,
    current: str,
    new: str,
    client_ip: str | None,
    client_id: str | None,
) -> None:
    problem = passwords.policy_problem(new, personal=_personal_of(account))
    if problem:
        raise field_error("body.new_password", problem, "weak_password")
    try:
        await check_password(
            session, redis, account, current, client_ip=client_ip, client_id=client_id, action="password.change"
        )
    except ProblemError as exc:
        if exc.errors:
            exc.errors = [FieldError(field="body.current_password", message="wrong password", type="invalid")]
        raise
    await set_password(account, new)
    await record(session, sub=account.id, action="password.changed", client_id=client_id)


# ------------------------------------------------------------------------------------ password reset


async def start_password_reset(
    session: AsyncSession, redis: Redis | None, sender: SmsSender, phone: str
) -> tuple[str, object]:
    """Text a reset code if the phone belongs to an active account; the answer is the same either way."""
    await _throttle_send(redis, CodePurpose.password_reset.value, phone)
    expires = utcnow() + timedelta(seconds=config.settings().code_ttl_s)
    account = await session.scalar(
        select(Account).where(Account.phone_e164 == phone, Account.status == AccountStatus.active.value)
    )
    if account is None:
        return new_id(), expires
    await session.execute(
        update(PhoneCode)
        .where(
            PhoneCode.account_id == account.id,
            PhoneCode.purpose == CodePurpose.password_reset.value,
            PhoneCode.consumed_at.is_(None),
        )
        .values(invalidated=True)
    )
    row = PhoneCode(
        id=new_id(),
        account_id=account.id,
        purpose=CodePurpose.password_reset.value,
        phone_e164=phone,
        code_hmac="",
        expires_at=expires,
        created_at=utcnow(),
    )
    session.add(row)
    await _issue_code(session, sender, row, language=account.preferred_language)
    await record(session, sub=account.id, action="password.reset_requested")
    return row.id, row.expires_at


async def confirm_password_reset(
    session: AsyncSession, redis: Redis | None, reset_id: str, code: str, new_password: str
) -> None:
    row = await session.scalar(
        select(PhoneCode).where(PhoneCode.id == reset_id, PhoneCode.purpose == CodePurpose.password_reset.value)
    )
    account = await session.get(Account, row.account_id) if row else None
    # An unknown id answers like a wrong code: the request step revealed nothing, neither does this one.
    if row is None or account is None or row.consumed_at is not None or not account.is_active:
        raise BadRequest("The code is wrong", code="invalid_code")
    problem = passwords.policy_problem(new_password, personal=_personal_of(account))
    if problem:
        raise field_error("body.new_password", problem, "weak_password")
    await _check_code(session, row, code)
    await set_password(account, new_password)
    await lockout.reset(redis, lockout.account_subject(account.id, ""))
    await record(session, sub=account.id, action="password.reset")


# ---------------------------------------------------------------------------------------------- TOTP


async def start_totp(session: AsyncSession, account: Account) -> tuple[str, str]:
    if account.totp_enabled:
        raise Conflict("A second factor is already enabled; disable it first", code="totp_already_enabled")
    secret = pyotp.random_base32()
    account.totp_pending_encrypted = crypto.encrypt_secret(secret, account_id=account.id)
    await session.flush()
    label = account.phone_e164 or account.id
    uri = pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=config.settings().totp_issuer)
    return secret, uri


async def confirm_totp(session: AsyncSession, account: Account, code: str, *, client_id: str | None) -> list[str]:
    if account.totp_enabled:
        raise Conflict("A second factor is already enabled", code="totp_already_enabled")
    if account.totp_pending_encrypted is None:
        raise Conflict("Start the enrolment first (POST /v1/identity/me/totp)", code="totp_not_started")
    secret = crypto.decrypt_secret(account.totp_pending_encrypted, account_id=account.id)
    step = _totp_step_matching(secret, code, None)
    if step is None:
        raise field_error("body.code", "the code does not match; check the authenticator app's clock", "invalid_code")
    recovery = [crypto.new_recovery_code() for _ in range(RECOVERY_CODES)]
    account.totp_secret_encrypted = account.totp_pending_encrypted
    account.totp_pending_encrypted = None
    account.totp_enabled = True
    account.totp_last_step = step
    account.recovery_code_hashes = [
        crypto.code_hmac(crypto.normalise_recovery_code(c), context=account.id) for c in recovery
    ]
    await session.flush()
    await record(session, sub=account.id, action="mfa.enabled", client_id=client_id)
    return recovery


async def disable_totp(
    session: AsyncSession,
    redis: Redis | None,
    account: Account,
    *,
    password: str,
    code: str,
    client_ip: str | None,
    client_id: str | None,
) -> None:
    if not account.totp_enabled:
        raise Conflict("No second factor is enabled", code="totp_not_enabled")
    await check_password(
        session, redis, account, password, client_ip=client_ip, client_id=client_id, action="mfa.disable"
    )
    if not await verify_totp(session, redis, account, code):
        raise field_error("body.code", "the code is wrong", "invalid_code")
    account.totp_enabled = False
    account.totp_secret_encrypted = None
    account.totp_pending_encrypted = None
    account.totp_last_step = None
    account.recovery_code_hashes = []
    await session.flush()
    await record(session, sub=account.id, action="mfa.disabled", client_id=client_id)
