"""The user service: Zitadel's commands and queries for the password-reset flow.

Each method runs the checks in Zitadel's order, then changes the user in one transaction.
Every change adds one to the user's `sequence`, which `Details` reports.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pwreset import errors
from pwreset.auth import Principal
from pwreset.domain.ids import IdGenerator
from pwreset.domain.password_policy import PasswordPolicy
from pwreset.domain.reset_codes import CodeCheck, StoredCode, check_code, generate_code, hash_code
from pwreset.domain.url_template import UrlTemplate, check_url_template, parse_url_template
from pwreset.keys import Keys
from pwreset.store import ConflictError, Store, Tx, UserRecord

logger = logging.getLogger("pwreset.service")

DEFAULT_ORG_SETTING = "default_org_id"


@dataclass(frozen=True)
class Details:
    sequence: int
    change_date: int
    resource_owner: str
    creation_date: int | None = None


@dataclass(frozen=True)
class NewHuman:
    """An AddHumanUser request, already in Python names."""

    given_name: str
    family_name: str
    email: str
    user_id: str | None = None
    username: str | None = None
    org_id: str | None = None
    org_domain: str | None = None
    nick_name: str = ""
    display_name: str = ""
    preferred_language: str = ""
    gender: str = "GENDER_UNSPECIFIED"
    email_verification: str = "send"  # "verified" | "unverified" | "return" | "send"
    phone: str | None = None
    phone_verification: str = "send"
    password: str | None = None
    password_change_required: bool = False


@dataclass(frozen=True)
class AddedHuman:
    user_id: str
    details: Details
    email_code: str | None
    phone_code: str | None


@dataclass(frozen=True)
class ResetMedium:
    """How to deliver a reset code: returned, or sent as a link by email or SMS."""

    return_code: bool = False
    notification: str = "email"  # "email" | "sms"
    url_template: str | None = None


@dataclass(frozen=True)
class ServiceSettings:
    code_lifetime_us: int
    code_max_attempts: int
    default_url_template: str
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    reset_rate_limit: int = 0  # reset requests per user per window; 0: no limit
    reset_rate_window_us: int = 3600 * 1_000_000


def _user_not_found_on_set_password() -> errors.ApiError:
    return errors.failed_precondition("COMMAND-G8dh3", "Password not found")


class UserService:
    def __init__(
        self,
        store: Store,
        keys: Keys,
        *,
        settings: ServiceSettings,
        hasher: PasswordHasher,
        now_us: Callable[[], int],
        rng: random.Random,
        ids: IdGenerator,
    ) -> None:
        self._store = store
        self._keys = keys
        self._settings = settings
        self._hasher = hasher
        self._now_us = now_us
        self._rng = rng
        self._ids = ids
        self._default_template = parse_url_template(settings.default_url_template)

    # -- commands ---------------------------------------------------------------------------

    async def add_human_user(self, principal: Principal, new: NewHuman) -> AddedHuman:
        if new.password is not None:
            self._settings.password_policy.check(new.password)
        password_hash = await self._hash(new.password) if new.password is not None else None
        user_id = new.user_id or self._ids.new_id()
        username = new.username or new.email
        email_code = generate_code(self._rng) if new.email_verification == "return" else None
        phone_code = generate_code(self._rng) if new.phone and new.phone_verification == "return" else None
        # Zitadel's events: human.added, then an email event unless explicitly unverified,
        # then a phone event when a phone is given.
        sequence = 1 + (new.email_verification != "unverified")
        if new.phone:
            sequence += new.phone_verification != "unverified"
        now = self._now_us()
        try:
            async with self._store.write() as tx:
                org_id = await self._target_org(tx, principal, new)
                principal.require("user.write", org_id)
                if await tx.get_user(user_id) is not None:
                    raise errors.failed_precondition("COMMAND-7yiox1isql", "Errors.User.AlreadyExisting")
                if await tx.username_taken(username):
                    raise _username_taken()
                await tx.insert_user(
                    UserRecord(
                        id=user_id,
                        org_id=org_id,
                        username=username,
                        state="active",
                        given_name=new.given_name,
                        family_name=new.family_name,
                        nick_name=new.nick_name,
                        display_name=new.display_name or f"{new.given_name} {new.family_name}",
                        preferred_language=new.preferred_language,
                        gender=new.gender,
                        email=new.email,
                        email_verified=new.email_verification == "verified",
                        phone=new.phone or None,
                        phone_verified=bool(new.phone) and new.phone_verification == "verified",
                        password_hash=password_hash,
                        password_change_required=new.password_change_required,
                        password_changed_at=now if password_hash else None,
                        sequence=sequence,
                        created_at=now,
                        changed_at=now,
                    )
                )
        except ConflictError as exc:  # a concurrent request took the id or the username
            if "username" in str(exc):
                raise _username_taken() from None
            raise errors.failed_precondition("COMMAND-7yiox1isql", "Errors.User.AlreadyExisting") from None
        return AddedHuman(user_id, Details(sequence, now, org_id), email_code, phone_code)

    async def delete_user(self, principal: Principal, user_id: str) -> Details:
        async with self._store.write() as tx:
            user = await tx.get_user(user_id, lock=True)
            if user is None or not user.live:
                raise errors.not_found("COMMAND-bd4ir1mblj", "User could not be found")
            principal.require("user.delete", user.org_id, self_user_id=user_id)
            now = self._now_us()
            sequence = await tx.bump_sequence(user_id, now)
            await tx.mark_user_deleted(user_id)
            await tx.delete_reset_code(user_id)
            await tx.supersede_pending_messages(user_id, now)
        return Details(sequence, now, user.org_id)

    async def request_password_reset(
        self, principal: Principal, user_id: str, medium: ResetMedium
    ) -> tuple[Details, str | None]:
        """Issue a new code; returns it only when the medium asks for it."""
        template: UrlTemplate = self._default_template
        if not medium.return_code and medium.url_template is not None:
            template = check_url_template(medium.url_template, user_id)
        code = generate_code(self._rng)
        async with self._store.write() as tx:
            user = await tx.get_user(user_id, lock=True)
            if user is None or not user.live:
                raise errors.not_found("COMMAND-SAF4f", "User could not be found")
            principal.require("user.write", user.org_id, self_user_id=user_id)
            recipient = user.email
            if not medium.return_code and medium.notification == "sms":
                if not user.phone:
                    raise errors.failed_precondition("PWRESET-NoPhone", "User has no phone number")
                recipient = user.phone
            now = self._now_us()
            await self._count_reset_request(tx, user_id, now)
            code_id = self._ids.new_id()
            sequence = await tx.bump_sequence(user_id, now)
            await tx.put_reset_code(
                user_id,
                code_id,
                hash_code(self._keys.code_hmac_key, user_id, code),
                now,
                now + self._settings.code_lifetime_us,
            )
            await tx.supersede_pending_messages(user_id, now)
            if not medium.return_code:
                link = template.render(user_id=user_id, code=code, org_id=user.org_id)
                await tx.add_outbox_message(
                    self._ids.new_id(),
                    user_id,
                    code_id,
                    medium.notification,
                    recipient,
                    self._keys.seal(link),
                    now,
                )
        details = Details(sequence, now, user.org_id)
        return details, (code if medium.return_code else None)

    async def set_password(
        self,
        principal: Principal,
        user_id: str,
        new_password: str | None,
        *,
        change_required: bool = False,
        verification_code: str | None = None,
        current_password: str | None = None,
    ) -> Details:
        if not new_password:
            raise errors.invalid_argument("COMMAND-Mf0sd", "Password is empty")
        async with self._store.write() as tx:
            user = await tx.get_user(user_id, lock=True)
            if user is None or not user.live:
                raise _user_not_found_on_set_password()
            wrong_code = None
            if verification_code is not None:
                wrong_code = await self._verify_code(tx, user_id, verification_code)
            elif current_password is not None:
                await self._verify_current_password(user, current_password, new_password)
            else:
                principal.require("user.write", user.org_id)
            if wrong_code is None:
                self._settings.password_policy.check(new_password)
                password_hash = await self._hash(new_password)
                now = self._now_us()
                sequence = await tx.bump_sequence(user_id, now)
                await tx.set_password(user_id, password_hash, change_required, now)
                # Any new password ends the reset: the code is single use.
                await tx.delete_reset_code(user_id)
                await tx.supersede_pending_messages(user_id, now)
        # A wrong code is answered after the transaction commits its attempt count.
        if wrong_code is not None:
            raise wrong_code
        return Details(sequence, now, user.org_id)

    # -- queries ----------------------------------------------------------------------------

    async def get_user(self, principal: Principal, user_id: str) -> UserRecord:
        async with self._store.read() as tx:
            user = await tx.get_user(user_id)
        if user is None or not user.live:
            raise errors.not_found("QUERY-Dfbg2", "User could not be found")
        principal.require("user.read", user.org_id, self_user_id=user_id)
        return user

    # -- helpers ----------------------------------------------------------------------------

    async def _target_org(self, tx: Tx, principal: Principal, new: NewHuman) -> str:
        if new.org_id is not None:
            if not await tx.organization_exists(new.org_id):
                raise _org_not_found()
            return new.org_id
        if new.org_domain is not None:
            org_id = await tx.organization_by_domain(new.org_domain)
            if org_id is None:
                raise _org_not_found()
            return org_id
        if principal.org_id is not None:
            return principal.org_id
        default = await tx.get_setting(DEFAULT_ORG_SETTING)
        if default is None:  # pragma: no cover - bootstrap always sets it
            raise errors.internal()
        return default

    async def _count_reset_request(self, tx: Tx, user_id: str, now: int) -> None:
        """Refuse the request when the user has had too many in the window; else count it.

        The count lives in the database, in the transaction that holds the user's row,
        so the limit holds across every process sharing the database."""
        limit = self._settings.reset_rate_limit
        if limit <= 0:
            return
        window = self._settings.reset_rate_window_us
        since = now - window
        count, oldest = await tx.count_reset_requests(user_id, since)
        if count >= limit:
            retry_after = max(1, -(-(oldest + window - now) // 1_000_000))
            logger.warning("password reset for user %s refused: %d requests in the window", user_id, count)
            raise errors.ApiError(
                errors.Code.RESOURCE_EXHAUSTED,
                "Too many password reset requests",
                "PWRESET-Rate1",
                headers={"Retry-After": str(retry_after)},
            )
        await tx.record_reset_request(user_id, now, since)

    async def _verify_code(self, tx: Tx, user_id: str, candidate: str) -> errors.ApiError | None:
        """None when the code is right; else the error, after counting the failed attempt."""
        record = await tx.get_reset_code(user_id)
        if record is None:
            raise errors.failed_precondition("COMMAND-2M9fs", "Code not found")
        stored = StoredCode(record.code_hash, record.created_at, record.expires_at, record.failed_attempts)
        outcome = check_code(stored, self._keys.code_hmac_key, user_id, candidate, self._now_us())
        if outcome == CodeCheck.EXPIRED:
            raise errors.failed_precondition("CODE-QvUQ4P", "Code is expired")
        if outcome == CodeCheck.OK:
            return None
        attempts = await tx.count_failed_attempt(user_id)
        if attempts >= self._settings.code_max_attempts:
            await tx.delete_reset_code(user_id)
            logger.warning("reset code for user %s voided after %d wrong attempts", user_id, attempts)
        return errors.invalid_argument("CODE-woT0xc", "Code is invalid")

    async def _verify_current_password(self, user: UserRecord, current: str, new: str) -> None:
        if not user.password_hash:
            raise errors.failed_precondition("COMMAND-Fds3s", "User has not set a password")
        if not await self._verify(user.password_hash, current):
            raise errors.invalid_argument("COMMAND-3M0fs", "Password is invalid")
        if new == current:
            raise errors.failed_precondition(
                "COMMAND-Aesh5", "New password cannot be the same as your current password"
            )

    async def _hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await anyio.to_thread.run_sync(verify)


def _username_taken() -> errors.ApiError:
    return errors.ApiError(errors.Code.ALREADY_EXISTS, "User already exists", "V3-DKcYh")


def _org_not_found() -> errors.ApiError:
    return errors.not_found("PWRESET-Org404", "Organization could not be found")
