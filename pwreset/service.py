"""The user service: Zitadel's commands and queries for the password-reset flow.

Each method runs the checks in Zitadel's order, then changes the user in one transaction.
Every change adds one to the user's `sequence`, which `Details` reports.

Who sees whom: a token scoped to one organization sees only that organization's users. To
it, a user of another organization and a user that does not exist are the same answer,
404 `AUTHZ-cdgFk` ("membership not found"), given at the same step; an instance-wide token
gets each operation's own not-found error for a missing user, as in Zitadel.

argon2 never runs inside a write transaction: a password is verified or hashed between two
short transactions, in a bounded number of threads, so guessers cannot hold the database
lock (SQLite) or the connection pool (PostgreSQL) while other users wait.

The service knows persistence only through `pwreset.unit_of_work` (Cosmic Python's service
layer over a unit of work): `pwreset.store.Store` in the server, an in-memory fake in
tests/unit, where these rules are tested without a database.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, TypeVarTuple

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pwreset import errors, limits
from pwreset.auth import Principal, membership_not_found
from pwreset.domain.blocklist import CommonPasswords, blocklist_violation, breached, personal_parts
from pwreset.domain.contacts import normalize_email, normalize_phone
from pwreset.domain.events import EventKind
from pwreset.domain.identifiers import check_username
from pwreset.domain.ids import IdGenerator
from pwreset.domain.password_policy import NIST_MIN_LENGTH, PasswordPolicy, PolicyName
from pwreset.domain.records import Medium, MessageKind, UserRecord
from pwreset.domain.reset_codes import CodeCheck, StoredCode, check_code, generate_code, hash_code
from pwreset.domain.url_template import UrlTemplate, check_link, check_url_template, parse_url_template
from pwreset.keys import Keys
from pwreset.metrics import Metrics
from pwreset.pwned import PwnedPasswords
from pwreset.unit_of_work import ConflictError, UnitOfWork, UserReads, UserTx

logger = logging.getLogger("pwreset.service")

_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")

DEFAULT_ORG_SETTING = "default_org_id"


@dataclass(frozen=True)
class Details:
    """Zitadel's `Details` of a change or a read: the user's sequence, times in µs since the
    epoch, and the owning organization."""

    sequence: int
    change_date: int
    resource_owner: str
    creation_date: int | None = None


class Verification(enum.StrEnum):
    """What to do with a new user's email or phone (AddHumanUser's `isVerified`,
    `returnCode` and `sendCode`): take it as verified or unverified, or issue a verification
    code, returned in the answer or sent."""

    VERIFIED = "verified"
    UNVERIFIED = "unverified"
    RETURN = "return"
    SEND = "send"


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
    email_verification: Verification = Verification.SEND
    phone: str | None = None
    phone_verification: Verification = Verification.SEND
    password: str | None = None
    password_change_required: bool = False


@dataclass(frozen=True)
class AddedHuman:
    """The new user's id, and the verification codes asked to be returned (else None)."""

    user_id: str
    details: Details
    email_code: str | None
    phone_code: str | None


@dataclass(frozen=True)
class ResetMedium:
    """How to deliver a reset code: returned, or sent as a link by email or SMS."""

    return_code: bool = False
    notification: Medium = Medium.EMAIL  # EMAIL or SMS (`sendLink.notificationType`)
    url_template: str | None = None


# Every text the API returns is at most this long (the spec's `maxLength` of Profile,
# SetHumanEmail and SetHumanPhone fields): stored and derived values are held to it.
MAX_TEXT = 200
# argon2's own queue: computations waiting or running, per argon2 thread in all, and per caller.
ARGON2_QUEUE_PER_THREAD = 8
ARGON2_PER_CALLER = 2


@dataclass(frozen=True)
class ServiceSettings:
    """The service's rules, from the server's settings (`pwreset.bootstrap.service_settings`); times in µs."""

    code_lifetime_us: int
    code_max_attempts: int
    default_url_template: str
    password_policy: PolicyName = PolicyName.ZITADEL  # for organizations without their own
    nist_min_length: int = NIST_MIN_LENGTH
    password_history: int = 0  # a new password may not be one of the last N; 0: no history
    rate_limits: limits.RateLimits = field(default_factory=limits.RateLimits)
    max_password_attempts: int = 0  # wrong current passwords that lock the user; 0: no lockout
    link_origins: tuple[str, ...] = ()  # instance-wide allowed reset-link origins; (): any
    argon2_concurrency: int = 0  # argon2 computations at once; 0: one less than the CPUs
    password_changed_notice: bool = False  # queue a "Your password was changed" message


def _password_not_found() -> errors.ApiError:
    return errors.failed_precondition("COMMAND-G8dh3", "Password not found")


def _password_invalid() -> errors.ApiError:
    return errors.invalid_argument("COMMAND-3M0fs", "Password is invalid")


def _password_reused() -> errors.ApiError:
    return errors.invalid_argument(errors.ErrorId.REUSED, "Password was used recently")


def _user_locked() -> errors.ApiError:
    """Zitadel's answer to a password check of a locked user (internal/command/user_human_password.go)."""
    return errors.failed_precondition("COMMAND-JLK35", "User is locked")


def _argon2_busy() -> errors.ApiError:
    return errors.ApiError(
        errors.Code.UNAVAILABLE,
        "password hashing is busy, retry later",
        "PWRESET-Busy",
        headers={"Retry-After": "1"},
    )


def _too_long(field_name: str) -> errors.ApiError:
    return errors.invalid_argument(
        "PWRESET-TooLong", f"{field_name} would be longer than {MAX_TEXT} characters"
    )


class RefusalDigest:
    """Rate-limit refusals counted per (error id, user, caller, address), so that a caller
    hammering a limit writes one `rate.limited` event a minute, not one a request: the first
    refusal of each minute is recorded with how many it stands for. Kept per process, in
    memory; at most `MAX_KEYS` keys, the oldest dropped first."""

    INTERVAL_US = 60_000_000
    MAX_KEYS = 10_000

    def __init__(self) -> None:
        # key -> (µs of the last recorded refusal, refusals not recorded since)
        self._open: dict[tuple[str, ...], tuple[int, int]] = {}

    def note(self, key: tuple[str | None, ...], now: int) -> int:
        """Count one refusal; returns the refusals to record now (0: within a recorded minute)."""
        name = tuple(part or "" for part in key)
        recorded, unrecorded = self._open.pop(name, (None, 0))
        if recorded is not None and now - recorded < self.INTERVAL_US:
            self._open[name] = (recorded, unrecorded + 1)
            return 0
        if len(self._open) >= self.MAX_KEYS:
            self._open.pop(next(iter(self._open)))
        self._open[name] = (now, 0)
        return unrecorded + 1


class UserService:
    """Zitadel's UserService v2 commands and queries of the reset flow, over a `UnitOfWork`.

    Each method takes the caller's `Principal` and raises `errors.ApiError` with Zitadel's
    error ids; time (`now_us`), randomness (`rng`, `ids`) and argon2 (`hasher`) are passed in."""

    def __init__(
        self,
        uow: UnitOfWork,
        keys: Keys,
        *,
        settings: ServiceSettings,
        hasher: PasswordHasher,
        now_us: Callable[[], int],
        rng: random.Random,
        ids: IdGenerator,
        metrics: Metrics | None = None,
        common_passwords: CommonPasswords | None = None,
        pwned: PwnedPasswords | None = None,
    ) -> None:
        self._uow = uow
        self._common_passwords = common_passwords or CommonPasswords()
        self._pwned = pwned
        self._metrics = metrics or Metrics()
        self._keys = keys
        self._settings = settings
        self._hasher = hasher
        self._now_us = now_us
        self._rng = rng
        self._ids = ids
        self._default_template = parse_url_template(settings.default_url_template)
        self._default_origin = check_link(settings.default_url_template, self._default_template)
        self._argon2_threads = settings.argon2_concurrency or max(1, (os.cpu_count() or 2) - 1)
        self._argon2_limiter: anyio.CapacityLimiter | None = None
        self._argon2_pending = 0
        self._argon2_by_caller: dict[str, int] = {}
        self._next_rate_purge_us = 0
        self._refusals = RefusalDigest()

    # -- commands ---------------------------------------------------------------------------

    async def add_human_user(self, principal: Principal, new: NewHuman) -> AddedHuman:
        """Create an active human user; see the spec's UserService_AddHumanUser for the errors."""
        email = normalize_email(new.email)
        phone = normalize_phone(new.phone) if new.phone else None
        username = new.username or email
        username_key = check_username(username)
        display_name = new.display_name or f"{new.given_name} {new.family_name}"
        for name, value in (("email", email), ("phone", phone or ""), ("username", username),
                            ("displayName", display_name)):
            if len(value) > MAX_TEXT:
                raise _too_long(name)
        async with self._uow.read() as tx:
            try:
                org_id = await self._target_org(tx, principal, new)
            except errors.ApiError:
                if new.password is not None:  # the password's rules come first, as in Zitadel
                    self._policy(None).check(new.password)
                raise
            org_policy = await tx.organization_password_policy(org_id)
        if new.password is not None:
            facts = personal_parts(
                username, email, new.given_name, new.family_name, new.nick_name, display_name
            )
            self._check_password_text(self._policy(org_policy), new.password, facts)
        # The caller's right to the organization first: no argon2 work for refused callers.
        principal.require("user.write", org_id)
        password_hash = (
            await self._hash_new_password(principal, new.password, ()) if new.password is not None else None
        )
        user_id = new.user_id or self._ids.new_id()
        email_code = generate_code(self._rng) if new.email_verification is Verification.RETURN else None
        phone_code = (
            generate_code(self._rng) if phone and new.phone_verification is Verification.RETURN else None
        )
        # Zitadel's events: human.added, then an email event unless explicitly unverified,
        # then a phone event when a phone is given.
        sequence = 1 + (new.email_verification is not Verification.UNVERIFIED)
        if phone:
            sequence += new.phone_verification is not Verification.UNVERIFIED
        now = self._now_us()
        try:
            async with self._uow.write() as tx:
                org_id = await self._target_org(tx, principal, new)
                if await tx.get_user(user_id) is not None:
                    raise errors.failed_precondition("COMMAND-7yiox1isql", "Errors.User.AlreadyExisting")
                if await tx.username_taken(org_id, username_key):
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
                        display_name=display_name,
                        preferred_language=new.preferred_language,
                        gender=new.gender,
                        email=email,
                        email_verified=new.email_verification is Verification.VERIFIED,
                        phone=phone,
                        phone_verified=bool(phone) and new.phone_verification is Verification.VERIFIED,
                        password_hash=password_hash,
                        password_change_required=new.password_change_required,
                        password_changed_at=now if password_hash else None,
                        sequence=sequence,
                        created_at=now,
                        changed_at=now,
                        username_key=username_key,
                    )
                )
        except ConflictError as exc:  # a concurrent request took the id or the username
            if "username" in str(exc):
                raise _username_taken() from None
            raise errors.failed_precondition("COMMAND-7yiox1isql", "Errors.User.AlreadyExisting") from None
        return AddedHuman(user_id, Details(sequence, now, org_id), email_code, phone_code)

    async def delete_user(self, principal: Principal, user_id: str) -> Details:
        """Delete the user; its reset code, waiting messages and self tokens end with it."""
        async with self._uow.write() as tx:
            user = await tx.get_user(user_id, lock=True)
            user = _visible(principal, user, _user_not_found_on_delete)
            principal.require("user.delete", user.org_id, self_user_id=user_id)
            now = self._now_us()
            sequence = await tx.bump_sequence(user_id, now)
            await tx.mark_user_deleted(user_id)
            await tx.delete_password_history(user_id)
            await tx.delete_reset_code(user_id)
            await tx.supersede_pending_messages(user_id, now)
            for token_id in await tx.revoke_self_tokens(user_id, now):
                await self._event(tx, EventKind.TOKEN_REVOKED, principal, user, now, token_id=token_id)
        return Details(sequence, now, user.org_id)

    async def request_password_reset(
        self, principal: Principal, user_id: str, medium: ResetMedium
    ) -> tuple[Details, str | None]:
        """Issue a new code; returns it only when the medium asks for it."""
        async with self._recording_refusals(principal, user_id):
            return await self._request_password_reset(principal, user_id, medium)

    async def _request_password_reset(
        self, principal: Principal, user_id: str, medium: ResetMedium
    ) -> tuple[Details, str | None]:
        template: UrlTemplate = self._default_template
        origin = self._default_origin
        if not medium.return_code and medium.url_template is not None:
            template = check_url_template(medium.url_template, user_id)
            origin = check_link(medium.url_template, template)
        code = generate_code(self._rng)
        async with self._uow.write() as tx:
            user = await tx.get_user(user_id, lock=True)
            user = _visible(principal, user, _user_not_found_on_reset)
            principal.require("user.write", user.org_id, self_user_id=user_id)
            if not medium.return_code:  # the allow-list holds for the server's default link too
                await self._check_link_origin(tx, user.org_id, origin)
            recipient = user.email
            if not medium.return_code and medium.notification is Medium.SMS:
                if not user.phone:
                    raise errors.failed_precondition("PWRESET-NoPhone", "User has no phone number")
                recipient = user.phone
            now = self._now_us()
            reset_limits = self._settings.rate_limits.reset_buckets(
                user, principal.token_id, principal.address
            )
            await self._take_limits(tx, reset_limits, now)
            code_id = self._ids.new_id()
            sequence = await tx.bump_sequence(user_id, now)
            if await tx.get_reset_code(user_id) is not None:
                await self._event(tx, EventKind.CODE_VOIDED, principal, user, now, reason="superseded")
            sent_by = Medium.RETURN if medium.return_code else medium.notification
            await self._event(tx, EventKind.RESET_REQUESTED, principal, user, now, medium=sent_by)
            await tx.put_reset_code(
                user_id,
                code_id,
                hash_code(self._keys.code_hmac_key, user_id, code),
                now,
                now + self._settings.code_lifetime_us,
                Medium.RETURN if medium.return_code else medium.notification,
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
        self._metrics.reset_requested(Medium.RETURN if medium.return_code else medium.notification)
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
        """Set a new password, verified by a reset code, by the current password, or by the
        caller's `user.write` permission (Zitadel's three SetPassword paths)."""
        if not new_password:
            raise errors.invalid_argument("COMMAND-Mf0sd", "Password is empty")
        async with self._recording_refusals(principal, user_id):
            if verification_code is not None:
                return await self._set_password_with_code(principal, user_id, new_password, verification_code)
            if current_password is not None:
                return await self._change_password(principal, user_id, current_password, new_password)
            return await self._set_password_by_permission(principal, user_id, new_password, change_required)

    async def _set_password_by_permission(
        self, principal: Principal, user_id: str, new_password: str, change_required: bool
    ) -> Details:
        """No verification: `user.write` on the user's organization, never self (Zitadel)."""
        async with self._uow.read() as tx:
            user = _visible(principal, await tx.get_user(user_id), _password_not_found)
            org_policy = await tx.organization_password_policy(user.org_id)
            earlier = await self._earlier_hashes(tx, user, include_current=True)
        principal.require("user.write", user.org_id)
        self._check_password_text(self._policy(org_policy), new_password, _personal_parts(user))
        password_hash = await self._hash_new_password(principal, new_password, earlier)
        return await self._store_password(principal, user_id, password_hash, change_required)

    async def _set_password_with_code(
        self, principal: Principal, user_id: str, new_password: str, code: str
    ) -> Details:
        """The code is the proof: any token whose scope covers the user may use it (Zitadel
        looks the user up in the caller's organization). A wrong code counts against the
        code (void at `code_max_attempts`) and against the caller's verification limits; so
        does a code for a user that has none, else asking whether it has one would be free."""
        wrong: errors.ApiError | None = None
        expired: errors.ApiError | None = None
        voided = False
        async with self._uow.write() as tx:
            user = _visible(principal, await tx.get_user(user_id, lock=True), _password_not_found)
            now = self._now_us()
            buckets = self._verify_buckets(principal, user)
            with self._counting_refusals():
                await limits.check(tx, buckets, now)
            record = await tx.get_reset_code(user_id)
            if record is None:
                await self._take_limits(tx, buckets, now)
                await self._event(tx, EventKind.CODE_WRONG, principal, user, now, reason="no_code")
                wrong = errors.failed_precondition("COMMAND-2M9fs", "Code not found")
            else:
                stored = StoredCode(
                    record.code_hash, record.created_at, record.expires_at, record.failed_attempts
                )
                outcome = check_code(stored, self._keys.code_hmac_key, user_id, code, now)
                if outcome is CodeCheck.EXPIRED:
                    self._metrics.code_expired(record.medium)
                    # Answered after the commit, so that the event stays.
                    await self._event(tx, EventKind.CODE_VOIDED, principal, user, now, reason="expired")
                    expired = errors.failed_precondition("CODE-QvUQ4P", "Code is expired")
                elif outcome != CodeCheck.OK:
                    await self._take_limits(tx, buckets, now)
                    attempts = await tx.count_failed_attempt(user_id)
                    await self._event(tx, EventKind.CODE_WRONG, principal, user, now, attempts=attempts)
                    if attempts >= self._settings.code_max_attempts:
                        voided = True
                        await self._event(tx, EventKind.CODE_VOIDED, principal, user, now, reason="attempts")
                        await tx.delete_reset_code(user_id)
                        await tx.supersede_pending_messages(user_id, now)
                        logger.warning(
                            "reset code for user %s voided after %d wrong attempts", user_id, attempts
                        )
                    wrong = errors.invalid_argument("CODE-woT0xc", "Code is invalid")
            if wrong is None:
                org_policy = await tx.organization_password_policy(user.org_id)
                earlier = await self._earlier_hashes(tx, user, include_current=True)
        # Answered after the transaction commits what the failure counted.
        if expired is not None:
            raise expired
        if wrong is not None:
            self._metrics.wrong_code(record.medium if record is not None else Medium.NONE)
            if voided and record is not None:
                self._metrics.code_voided(record.medium)
            raise wrong
        assert record is not None
        # A valid code and a weak password: the code stays valid (Zitadel).
        self._check_password_text(self._policy(org_policy), new_password, _personal_parts(user))
        password_hash = await self._hash_new_password(principal, new_password, earlier)
        details = await self._store_password(
            principal, user_id, password_hash, False, code_id=record.code_id
        )
        self._metrics.code_used(record.medium)
        return details

    async def _change_password(
        self, principal: Principal, user_id: str, current: str, new_password: str
    ) -> Details:
        """With the current password: the user itself, or `user.write` on its organization.

        Every check that needs no argon2 comes first, so a request that cannot succeed costs
        no hashing. The attempt is then counted before argon2 runs (a failed password check,
        and one event in each verification limit) and taken back only when the password is
        changed, so parallel guesses cannot slip past the lockout or the limits."""
        lockout = self._settings.max_password_attempts
        attempt = self._ids.new_id()
        # The place in argon2's queue comes first: a request turned away as busy has
        # counted no attempt.
        async with self._argon2_slot(principal):
            async with self._uow.write() as tx:
                user = _visible(principal, await tx.get_user(user_id, lock=True), _password_not_found)
                principal.require("user.write", user.org_id, self_user_id=user_id)
                if not user.password_hash:
                    raise errors.failed_precondition("COMMAND-Fds3s", "User has not set a password")
                if lockout and (user.locked or user.failed_password_checks >= lockout):
                    raise _user_locked()
                if new_password == current:
                    raise errors.failed_precondition(
                        "COMMAND-Aesh5", "New password cannot be the same as your current password"
                    )
                org_policy = await tx.organization_password_policy(user.org_id)
                self._check_password_text(self._policy(org_policy), new_password, _personal_parts(user))
                # The current password is no candidate: the new one differs from it.
                earlier = await self._earlier_hashes(tx, user, include_current=False)
                now = self._now_us()
                await self._take_limits(tx, self._verify_buckets(principal, user), now, ref=attempt)
                if lockout:
                    await tx.add_failed_password_checks(user_id, 1)
            verified_hash = user.password_hash
            if not await self._verify(verified_hash, current):
                self._metrics.wrong_password()
                await self._wrong_password(principal, user, lockout)
                raise _password_invalid()
            try:
                await self._check_password_records(new_password, earlier)
            except errors.ApiError:  # the current password was right: the attempt is no failure
                await self._take_back_attempt(user_id, attempt)
                raise
            password_hash = await self._argon2(self._hasher.hash, new_password)
        return await self._store_password(
            principal, user_id, password_hash, False, attempt=attempt, verified_hash=verified_hash
        )

    async def _store_password(
        self,
        principal: Principal,
        user_id: str,
        password_hash: str,
        change_required: bool,
        *,
        code_id: str | None = None,
        attempt: str | None = None,
        verified_hash: str | None = None,
    ) -> Details:
        """Write a new password hash computed outside the transaction, after checking that
        what it was verified against still holds: the same code, or the same password.
        A new password ends the reset (the code is single use) and any lockout."""
        async with self._uow.write() as tx:
            user = _visible(principal, await tx.get_user(user_id, lock=True), _password_not_found)
            if attempt is not None:
                await tx.take_back_rate_events(attempt)
                if self._settings.max_password_attempts:
                    await tx.add_failed_password_checks(user_id, -1)
            record = await tx.get_reset_code(user_id)
            # A code used or replaced meanwhile:
            if code_id is not None and (record is None or record.code_id != code_id):
                raise errors.failed_precondition("COMMAND-2M9fs", "Code not found")
            if verified_hash is not None and user.password_hash != verified_hash:
                changed = True  # the password changed meanwhile: the check no longer holds
            else:
                changed = False
                now = self._now_us()
                sequence = await tx.bump_sequence(user_id, now)
                if user.password_hash:
                    await tx.add_password_history(
                        user_id, user.password_hash, now, keep=max(self._settings.password_history - 1, 0)
                    )
                await tx.set_password(user_id, password_hash, change_required, now)
                await tx.delete_reset_code(user_id)
                await tx.supersede_pending_messages(user_id, now)
                via = "code" if code_id else "current_password" if verified_hash else "admin"
                await self._password_changed(tx, principal, user, now, via, record is not None)
        if changed:
            raise _password_invalid()
        return Details(sequence, now, user.org_id)

    async def _wrong_password(self, principal: Principal, checked: UserRecord, lockout: int) -> None:
        """Record a wrong current password, and lock the user for password checks once its
        failed checks reach the lockout policy's limit (Zitadel's `maxPasswordAttempts`);
        locking is a change, so the sequence moves."""
        async with self._uow.write() as tx:
            now = self._now_us()
            await self._event(tx, EventKind.PASSWORD_WRONG, principal, checked, now)
            user = await tx.get_user(checked.id, lock=True)
            if not lockout or user is None or user.failed_password_checks < lockout:
                return
            if await tx.lock_user(user.id):
                await tx.bump_sequence(user.id, now)
                await self._event(tx, EventKind.USER_LOCKED, principal, user, now, failed_checks=lockout)
                self._metrics.user_locked()
                logger.warning("user %s locked after %d wrong passwords", user.id, lockout)

    async def _password_changed(
        self, tx: UserTx, principal: Principal, user: UserRecord, now: int, via: str, had_code: bool
    ) -> None:
        """What follows a new password, in its transaction: the events, the end of the user's
        own tokens (never a service token), and the notice."""
        if had_code:
            kind = EventKind.CODE_USED if via == "code" else EventKind.CODE_VOIDED
            await self._event(tx, kind, principal, user, now, reason="password_changed")
        if user.locked:
            await self._event(tx, EventKind.USER_UNLOCKED, principal, user, now)
        await self._event(tx, EventKind.PASSWORD_CHANGED, principal, user, now, via=via)
        for token_id in await tx.revoke_self_tokens(user.id, now):
            await self._event(tx, EventKind.TOKEN_REVOKED, principal, user, now, token_id=token_id)
        if self._settings.password_changed_notice:
            medium, recipient = ("email", user.email) if user.email else ("sms", user.phone or "")
            if recipient:
                await tx.add_notice_message(
                    self._ids.new_id(), user.id, MessageKind.PASSWORD_CHANGED, medium, recipient, now
                )

    async def _event(
        self,
        tx: UserTx,
        kind: EventKind,
        principal: Principal,
        user: UserRecord | None,
        now: int,
        *,
        user_id: str | None = None,
        **details: Any,
    ) -> None:
        """Append an audit event in `tx` about `user` (or, unread, `user_id`): the caller's
        token id and address, and `details`, which never hold a secret."""
        await tx.add_event(
            kind,
            now,
            user_id=user.id if user else user_id,
            org_id=user.org_id if user else None,
            actor=principal.token_id,
            address=principal.address,
            details=details,
        )

    @contextlib.asynccontextmanager
    async def _recording_refusals(self, principal: Principal, user_id: str) -> AsyncIterator[None]:
        """Record a rate limit's refusal (429) raised inside: its transaction rolled back, so
        the event gets one of its own."""
        try:
            yield
        except errors.ApiError as exc:
            if exc.code is errors.Code.RESOURCE_EXHAUSTED:
                now = self._now_us()
                key = (str(exc.error_id), user_id, principal.token_id, principal.address)
                refused = self._refusals.note(key, now)
                if refused:
                    async with self._uow.write() as tx:
                        await self._event(
                            tx, EventKind.RATE_LIMITED, principal, None, now,
                            user_id=user_id, error_id=exc.error_id, refusals=refused,
                        )
            raise

    # -- queries ----------------------------------------------------------------------------

    async def get_user(self, principal: Principal, user_id: str) -> UserRecord:
        """The user, for a caller with `user.read` on its organization or the user itself."""
        async with self._uow.read() as tx:
            user = await tx.get_user(user_id)
        user = _visible(principal, user, _user_not_found_on_get)
        principal.require("user.read", user.org_id, self_user_id=user_id)
        return user

    # -- helpers ----------------------------------------------------------------------------

    async def _target_org(self, tx: UserReads, principal: Principal, new: NewHuman) -> str:
        """The organization a new user goes to. A token scoped to one organization that names
        another, existing or not, gets 404 `AUTHZ-cdgFk` either way."""
        if new.org_id is not None:
            if not principal.sees(new.org_id):
                raise membership_not_found()
            if not await tx.organization_exists(new.org_id):
                raise _org_not_found()
            return new.org_id
        if new.org_domain is not None:
            org_id = await tx.organization_by_domain(new.org_domain)
            if org_id is None or not principal.sees(org_id):
                if principal.org_id is not None:
                    raise membership_not_found()
                raise _org_not_found()
            return org_id
        if principal.org_id is not None:
            return principal.org_id
        default = await tx.get_setting(DEFAULT_ORG_SETTING)
        if default is None:  # pragma: no cover - bootstrap always sets it
            raise errors.internal()
        return default

    async def _check_link_origin(self, tx: UserReads, org_id: str, origin: str) -> None:
        allowed = await tx.link_origins(org_id)
        if allowed is None:
            allowed = self._settings.link_origins
        if allowed and origin not in allowed:
            raise errors.invalid_argument(
                "PWRESET-LinkOrigin", f"Reset links may not point to {origin}"
            )

    def _verify_buckets(self, principal: Principal, user: UserRecord) -> list[limits.Bucket]:
        return self._settings.rate_limits.verify_buckets(user, principal.token_id, principal.address)

    async def _take_limits(
        self, tx: UserTx, buckets: list[limits.Bucket], now: int, *, ref: str | None = None
    ) -> None:
        """Count one event in each bucket (or refuse with 429); now and then, forget events
        older than every window."""
        with self._counting_refusals():
            await limits.take(tx, buckets, now, ref=ref)
        if now >= self._next_rate_purge_us:
            self._next_rate_purge_us = now + 60_000_000
            await tx.purge_rate_events(now - self._settings.rate_limits.longest_window_us)

    @contextlib.contextmanager
    def _counting_refusals(self) -> Iterator[None]:
        """Count a rate limit's refusal (429) raised inside."""
        try:
            yield
        except errors.ApiError as exc:
            if exc.code is errors.Code.RESOURCE_EXHAUSTED:
                self._metrics.refused_by_limit(exc.error_id)
            raise

    def _policy(self, org_policy: str | None) -> PasswordPolicy:
        """The organization's own policy (`org_policy`), else the instance's."""
        name = PolicyName(org_policy) if org_policy else self._settings.password_policy
        return PasswordPolicy.named(name, nist_min_length=self._settings.nist_min_length)

    def _check_password_text(self, policy: PasswordPolicy, password: str, personal: frozenset[str]) -> None:
        """The rules a new password's text alone decides: the policy's (400 `DOMAIN-*`), then
        the common-password list (400 `PWRESET-Breached`) and the user's names (400
        `PWRESET-Personal`). Pure and fast (microseconds)."""
        policy.check(password)
        error = blocklist_violation(password, self._common_passwords, personal)
        if error is not None:
            raise error

    async def _check_password_records(self, password: str, earlier: Sequence[str]) -> None:
        """The rules that need more than the text: the breach corpus, then the history."""
        await self._refuse_breached(password)
        await self._refuse_reused(password, earlier)

    async def _refuse_breached(self, password: str) -> None:
        """400 `PWRESET-Breached` when the configured range API lists the password (503
        `PWRESET-PwnedUnavailable` when the lookup fails closed); no lookup without one."""
        if self._pwned is not None and await self._pwned.is_breached(password):
            raise breached()

    async def _refuse_reused(self, password: str, earlier: Sequence[str]) -> None:
        """400 `PWRESET-Reused` when the password matches one of the `earlier` hashes: one
        argon2 verification each, in the argon2 threads, outside any transaction."""
        for earlier_hash in earlier:
            if await self._verify(earlier_hash, password):
                raise _password_reused()

    async def _hash_new_password(self, principal: Principal, password: str, earlier: Sequence[str]) -> str:
        """The argon2 hash of a new password whose text passed `_check_password_text`, once
        the breach corpus and the history let it through. Every path that sets a password
        calls it, except a change with the current password, which runs the same checks
        only after the current password proved right. The breach lookup waits outside
        argon2's queue."""
        await self._refuse_breached(password)
        async with self._argon2_slot(principal):
            await self._refuse_reused(password, earlier)
            password_hash: str = await self._argon2(self._hasher.hash, password)
            return password_hash

    async def _earlier_hashes(self, tx: UserReads, user: UserRecord, *, include_current: bool) -> list[str]:
        """The hashes a new password may not match: the user's last `password_history`
        passwords, the current one counted (and returned when `include_current`)."""
        keep = self._settings.password_history
        if keep <= 0:
            return []
        current = [user.password_hash] if user.password_hash else []
        return (current if include_current else []) + await tx.password_history(user.id, keep - len(current))

    async def _take_back_attempt(self, user_id: str, attempt: str) -> None:
        """Undo what a current-password attempt counted (rate events, a failed check)."""
        async with self._uow.write() as tx:
            await tx.take_back_rate_events(attempt)
            if self._settings.max_password_attempts:
                await tx.add_failed_password_checks(user_id, -1)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await self._argon2(verify)

    async def _argon2(self, work: Callable[[*_Args], _T], *args: *_Args) -> _T:
        """Run argon2 `work` in one of the argon2 threads (hold an `_argon2_slot`)."""
        if self._argon2_limiter is None:  # made on first use: it belongs to the running loop
            self._argon2_limiter = anyio.CapacityLimiter(self._argon2_threads)
        return await anyio.to_thread.run_sync(work, *args, limiter=self._argon2_limiter)

    @contextlib.asynccontextmanager
    async def _argon2_slot(self, principal: Principal) -> AsyncIterator[None]:
        """A place in argon2's own queue, bounded in all (`ARGON2_QUEUE_PER_THREAD` per
        thread) and per caller (`ARGON2_PER_CALLER`, a token from one address): beyond,
        503 `PWRESET-Busy` at once, so that requests waiting for argon2 neither pile up nor
        keep others' requests out, and one caller cannot take the whole queue."""
        caller = f"{principal.token_id}:{limits.address_key(principal.address)}"
        mine = self._argon2_by_caller.get(caller, 0)
        queue = self._argon2_threads * ARGON2_QUEUE_PER_THREAD
        if self._argon2_pending >= queue or mine >= ARGON2_PER_CALLER:
            raise _argon2_busy()
        self._argon2_pending += 1
        self._argon2_by_caller[caller] = mine + 1
        try:
            yield
        finally:
            self._argon2_pending -= 1
            left = self._argon2_by_caller[caller] - 1
            if left:
                self._argon2_by_caller[caller] = left
            else:
                del self._argon2_by_caller[caller]


def _visible(
    principal: Principal, user: UserRecord | None, not_found: Callable[[], errors.ApiError]
) -> UserRecord:
    """The user, when it exists and the caller's scope covers its organization.

    Otherwise: a token scoped to one organization gets 404 `AUTHZ-cdgFk` whether the user is
    in another organization or nowhere, so it cannot tell the two apart; an instance-wide
    token gets the operation's own not-found error (`not_found`)."""
    if user is None or not user.live or not principal.sees(user.org_id):
        raise membership_not_found() if principal.org_id is not None else not_found()
    return user


def _personal_parts(user: UserRecord) -> frozenset[str]:
    """What a user's password may not contain (see `personal_parts`)."""
    return personal_parts(
        user.username, user.email, user.given_name, user.family_name, user.nick_name, user.display_name
    )


def _user_not_found_on_get() -> errors.ApiError:
    return errors.not_found("QUERY-Dfbg2", "User could not be found")


def _user_not_found_on_delete() -> errors.ApiError:
    return errors.not_found("COMMAND-bd4ir1mblj", "User could not be found")


def _user_not_found_on_reset() -> errors.ApiError:
    return errors.not_found("COMMAND-SAF4f", "User could not be found")


def _username_taken() -> errors.ApiError:
    return errors.ApiError(errors.Code.ALREADY_EXISTS, "User already exists", "V3-DKcYh")


def _org_not_found() -> errors.ApiError:
    return errors.not_found("PWRESET-Org404", "Organization could not be found")
