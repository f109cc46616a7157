"""`pwreset token`, `org`, `outbox`, `events` and `templates`: administration on the server's
database, which they open as it is (see `_existing_store`), never creating or migrating it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pwreset.cli.base import (
    StartupError,
    _add_setting_flags,
    _blocking,
    _check_database_url,
    _is_environment_failure,
    _startup_message,
    redact_url,
)
from pwreset.config import Scope, Settings
from pwreset.domain.ids import IdGenerator
from pwreset.domain.records import OutboxStatus
from pwreset.domain.timestamps import system_now_us

if TYPE_CHECKING:
    from pwreset.store import Store


OUTBOX_STATUSES = tuple(OutboxStatus)


_SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}



def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """token, org, outbox, events and templates."""
    _add_token_parser(commands)
    _add_org_parser(commands)
    _add_outbox_parser(commands)
    _add_events_parser(commands)
    _add_templates_parser(commands)



def _add_token_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("token", help="create or revoke API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser(
        "create",
        help="create a token and print it",
        description=(
            "Create a bearer token and print it on standard output; only its hash is stored. "
            "A service token (--subject NAME, the default) acts with its permissions only. A user "
            "token (--user USER_ID) also acts as that user ('self': read, reset, delete itself, "
            "change its password with the current one), is limited to the user's organization, "
            "and ends when the user is deleted or its password changes."
        ),
    )
    create.add_argument(
        "--permission",
        action="append",
        default=[],
        choices=_Permissions(),
        metavar="PERMISSION",
        help="a permission to grant (repeatable): %(choices)s; metrics.read allows GET /metrics only",
    )
    create.add_argument("--org", help="organization id the token is limited to (default: every organization)")
    who = create.add_mutually_exclusive_group()
    who.add_argument(
        "--subject", default="service", help="the service that uses the token: a name (default: service)"
    )
    who.add_argument("--user", metavar="USER_ID", help="make a user token that acts as this existing user")
    _add_setting_flags(create, Scope.DATABASE)
    create.set_defaults(run=_blocking(_token_create))
    revoke = token_commands.add_parser("revoke", help="revoke a token, given the token or its id")
    revoke.add_argument("token", help="the token, or the id printed when it was created")
    _add_setting_flags(revoke, Scope.DATABASE)
    revoke.set_defaults(run=_blocking(_token_revoke))



class _Permissions(Collection[str]):
    """`pwreset.auth.PERMISSIONS`, imported when argparse first reads them: pwreset.auth loads
    Connexion, which would make every `pwreset --help` several times slower."""

    def _all(self) -> tuple[str, ...]:
        from pwreset.auth import PERMISSIONS

        return PERMISSIONS

    def __contains__(self, value: object) -> bool:
        return value in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


async def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset token create`: prints the token on stdout, what it is on stderr."""
    from pwreset.auth import SubjectKind, check_permissions, create_token

    try:
        permissions = check_permissions(args.permission)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    async with _existing_store(settings) as store, store.write() as tx:
        org_id, subject, kind = args.org, args.subject, SubjectKind.SERVICE
        if args.user is not None:
            user = await tx.get_user(args.user)
            if user is None or not user.live:
                print(f"pwreset: no user with id {args.user}", file=sys.stderr)
                return 2
            if args.org and args.org != user.org_id:
                print(f"pwreset: user {args.user} is not in organization {args.org}", file=sys.stderr)
                return 2
            org_id, subject, kind = user.org_id, user.id, SubjectKind.USER
        elif args.org and not await tx.organization_exists(args.org):
            print(f"pwreset: no organization with id {args.org}", file=sys.stderr)
            return 2
        token_id = IdGenerator(system_now_us).new_id()
        token = await create_token(
            tx,
            token_id=token_id,
            subject=subject,
            org_id=org_id,
            permissions=permissions,
            now=system_now_us(),
            kind=kind,
        )
    acting = f"user {subject}" if kind is SubjectKind.USER else f"service {subject}"
    scope = f"organization {org_id}" if org_id else "every organization"
    print(
        f"token id {token_id} for {acting} in {scope}, permissions: {' '.join(permissions) or '(none)'}",
        file=sys.stderr,
    )
    print(token)
    return 0


async def _token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset token revoke`: 1 when no live token matches."""
    from pwreset.auth import hash_token
    from pwreset.domain.events import EventKind

    now = system_now_us()
    async with _existing_store(settings) as store, store.write() as tx:
        revoked = await tx.revoke_token(args.token, hash_token(args.token), now)
        if revoked is not None:  # by an operator: no token acted, no client address
            user_id = revoked.subject if revoked.subject_kind == "user" else None
            await tx.add_event(
                EventKind.TOKEN_REVOKED, now, user_id=user_id, org_id=revoked.org_id, actor=None,
                address=None, details={"token_id": revoked.id, "via": "cli"},
            )
    if revoked is None:
        print("pwreset: no live token matches", file=sys.stderr)
        return 1
    print("revoked", file=sys.stderr)
    return 0



def _add_org_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    org = commands.add_parser("org", help="create organizations, set their reset-link origins")
    org_commands = org.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    org_create = org_commands.add_parser("create", help="create an organization and print its id")
    org_create.add_argument("name")
    org_create.add_argument("--domain", help="its domain (default: NAME.localhost)")
    org_create.add_argument(
        "--link-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="an origin reset links for its users may point to, e.g. https://app.example (repeatable; "
        "default: the instance's PWRESET_LINK_ORIGINS)",
    )
    org_create.add_argument(
        "--password-policy",
        choices=_policy_names(),
        help="its password policy (default: the instance's PWRESET_PASSWORD_POLICY)",
    )
    _add_setting_flags(org_create, Scope.DATABASE)
    org_create.set_defaults(run=_blocking(_org_create))
    origins = org_commands.add_parser(
        "link-origins",
        help="show or set the origins an organization's reset links may point to",
        description=(
            "Without options, print the organization's allowed reset-link origins, one a line. "
            "--origin (repeatable) replaces the list; --clear removes it, so the instance's "
            "PWRESET_LINK_ORIGINS applies. A reset request whose urlTemplate points elsewhere is "
            "refused with 400 PWRESET-LinkOrigin."
        ),
    )
    origins.add_argument("org_id", metavar="ORG_ID")
    change = origins.add_mutually_exclusive_group()
    change.add_argument(
        "--origin", action="append", default=[], metavar="ORIGIN", help="an allowed origin (repeatable)"
    )
    change.add_argument("--clear", action="store_true", help="remove the organization's own list")
    _add_setting_flags(origins, Scope.DATABASE)
    origins.set_defaults(run=_blocking(_org_link_origins))
    policy = org_commands.add_parser(
        "password-policy",
        help="show or set an organization's password policy",
        description=(
            "Without options, print the organization's password policy (zitadel or nist). "
            "POLICY sets it; --clear removes it, so the instance's PWRESET_PASSWORD_POLICY applies."
        ),
    )
    policy.add_argument("org_id", metavar="ORG_ID")
    policy_change = policy.add_mutually_exclusive_group()
    policy_change.add_argument("policy", nargs="?", choices=_policy_names(), metavar="POLICY")
    policy_change.add_argument("--clear", action="store_true", help="remove the organization's own policy")
    _add_setting_flags(policy, Scope.DATABASE)
    policy.set_defaults(run=_blocking(_org_password_policy))



def _policy_names() -> tuple[str, ...]:
    """The password policies an organization may have (pwreset.domain.password_policy)."""
    from pwreset.domain.password_policy import PolicyName

    return tuple(name.value for name in PolicyName)


def _origins(values: Sequence[str]) -> list[str] | None:
    """Link origins in normal form; None (and a message) when one is not an allowed origin."""
    from pwreset.domain.url_template import parse_origin

    try:
        return [parse_origin(value) for value in values]
    except ValueError as exc:
        print(f"pwreset: link origin {exc}", file=sys.stderr)
        return None


async def _org_create(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset org create`: prints the new organization's id."""
    from pwreset.unit_of_work import ConflictError

    origins = _origins(args.link_origin)
    if origins is None:
        return 2
    org_id = IdGenerator(system_now_us).new_id()
    domain = args.domain or f"{args.name}.localhost"
    async with _existing_store(settings) as store:
        try:
            async with store.write() as tx:
                await tx.insert_organization(org_id, args.name, domain, system_now_us())
                if origins:
                    await tx.set_link_origins(org_id, origins)
                if args.password_policy:
                    await tx.set_organization_password_policy(org_id, args.password_policy)
        except ConflictError:
            async with store.read() as tx:
                existing = await tx.organization_by_domain(domain)
            print(
                f"pwreset: the organization with domain {domain} exists already, id {existing}; "
                "give another name or --domain for a new one",
                file=sys.stderr,
            )
            return 2
    print(org_id)
    return 0


async def _org_link_origins(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset org link-origins`: shows the list, after replacing or clearing it if asked."""
    origins = _origins(args.origin)
    if origins is None:
        return 2
    changing = args.clear or bool(origins)
    async with _existing_store(settings) as store, store.write() if changing else store.read() as tx:
        if not await tx.organization_exists(args.org_id):
            print(f"pwreset: no organization with id {args.org_id}", file=sys.stderr)
            return 2
        if args.clear:
            await tx.set_link_origins(args.org_id, None)
        elif origins:
            await tx.set_link_origins(args.org_id, origins)
        current = await tx.link_origins(args.org_id)
    if current is None:
        print("(no list of its own: PWRESET_LINK_ORIGINS applies)", file=sys.stderr)
    for origin in current or ():
        print(origin)
    return 0


async def _org_password_policy(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset org password-policy`: shows the organization's policy, after setting or
    clearing it if asked."""
    changing = args.clear or bool(args.policy)
    async with _existing_store(settings) as store, store.write() if changing else store.read() as tx:
        if not await tx.organization_exists(args.org_id):
            print(f"pwreset: no organization with id {args.org_id}", file=sys.stderr)
            return 2
        if changing:
            await tx.set_organization_password_policy(args.org_id, args.policy)
        current = await tx.organization_password_policy(args.org_id)
    if current is None:
        print("(no policy of its own: the server's PWRESET_PASSWORD_POLICY applies)", file=sys.stderr)
    else:
        print(current)
    return 0



def _add_outbox_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = commands.add_parser("outbox", help="inspect queued reset messages")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    outbox_list = outbox_commands.add_parser(
        "list",
        help="list messages, oldest first",
        description=(
            "List outbox messages, oldest first: id, creation time, medium, recipient, status, "
            "attempts, next attempt and last error. Links are never shown. Statuses: "
            + ", ".join(OUTBOX_STATUSES)
            + "."
        ),
    )
    outbox_list.add_argument(
        "--status",
        action="append",
        default=[],
        choices=OUTBOX_STATUSES,
        help="only messages in this status (repeatable)",
    )
    _add_setting_flags(outbox_list, Scope.DATABASE)
    outbox_list.set_defaults(run=_blocking(_outbox_list))



async def _outbox_list(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset outbox list`: a tab-separated table; reads only."""
    from pwreset.domain.timestamps import format_timestamp

    async with _existing_store(settings) as store, store.read() as tx:
        messages = await tx.outbox_messages(args.status)
    print("ID\tCREATED\tMEDIUM\tRECIPIENT\tSTATUS\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
    for message in messages:
        waiting = message.status in ("pending", "sending")
        next_attempt = format_timestamp(message.next_attempt_at) if waiting else "-"
        print(
            "\t".join(
                (
                    message.id,
                    format_timestamp(message.created_at),
                    message.medium,
                    message.recipient,
                    message.status,
                    str(message.attempts),
                    next_attempt,
                    (message.last_error or "-").replace("\t", " ").replace("\n", " "),
                )
            )
        )
    return 0


def _add_events_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser("events", help="read the audit events")
    events_commands = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    events_list = events_commands.add_parser(
        "list",
        help="list audit events, oldest first",
        description=(
            "List the audit events in the order they were written: time, kind, user, "
            "organization, actor (the id of the token that acted; none for the delivery "
            "worker), client address and details. No secret is ever stored in an event. "
            "Read only: the database is neither created nor migrated."
        ),
    )
    events_list.add_argument("--user", metavar="USER_ID", help="only this user's events")
    events_list.add_argument(
        "--since",
        metavar="WHEN",
        help="only events at or after WHEN: an RFC 3339 time (2026-01-31T12:00:00Z) or an age (90m, 24h, 7d)",
    )
    events_list.add_argument("--json", action="store_true", help="one JSON array of objects")
    _add_setting_flags(events_list, Scope.DATABASE)
    events_list.set_defaults(run=events_list_command)


def _parse_since(value: str, now_us: int) -> int:
    """µs since the epoch for an RFC 3339 time or an age such as `24h`; ValueError otherwise."""
    from datetime import datetime

    unit = _SINCE_UNITS.get(value[-1:])
    if unit is not None and value[:-1].isdigit():
        return now_us - int(value[:-1]) * unit * 1_000_000
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither an RFC 3339 time nor an age like 90m, 24h or 7d") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone (add Z for UTC)")
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def events_list_command(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset events list`: print the audit events, oldest first; read only."""
    try:
        since = _parse_since(args.since, system_now_us()) if args.since else None
    except ValueError as exc:
        print(f"pwreset: --since: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_events_list(settings, args.user, since, as_json=args.json))


async def _events_list(settings: Settings, user_id: str | None, since: int | None, *, as_json: bool) -> int:
    from pwreset.domain.timestamps import format_timestamp

    async with _existing_store(settings) as store, store.read() as tx:
        events = await tx.events(user_id, since)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": e.id,
                        "at": format_timestamp(e.at),
                        "kind": e.kind,
                        "userId": e.user_id,
                        "orgId": e.org_id,
                        "actor": e.actor,
                        "address": e.address,
                        "details": e.details,
                    }
                    for e in events
                ],
                indent=2,
            )
        )
        return 0
    print("ID\tAT\tKIND\tUSER\tORG\tACTOR\tADDRESS\tDETAILS")
    for e in events:
        details = json.dumps(e.details, sort_keys=True, separators=(",", ":"))
        print(
            "\t".join(
                (
                    str(e.id),
                    format_timestamp(e.at),
                    e.kind,
                    e.user_id or "-",
                    e.org_id or "-",
                    e.actor or "-",
                    e.address or "-",
                    details,
                )
            )
        )
    return 0


def _add_templates_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pwreset.domain.records import MessageKind

    templates = commands.add_parser("templates", help="preview message templates")
    templates_commands = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")
    preview = templates_commands.add_parser(
        "preview",
        help="render a sample message",
        description=(
            "Render a sample email (subject, text, HTML) and SMS of one kind in one language, "
            "from the built-in templates or --templates-dir, for a made-up user and link."
        ),
    )
    preview.add_argument(
        "--kind",
        choices=("reset", "changed"),
        default="reset",
        help=f"reset: the reset link ({MessageKind.RESET}); changed: the password changed notice",
    )
    preview.add_argument("--lang", default="", help="the user's preferredLanguage (default: the default set)")
    _add_setting_flags(preview, Scope.DELIVERY, only=("templates_dir",))
    preview.set_defaults(run=templates_preview_command)


def templates_preview_command(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset templates preview`: render a sample email and SMS; 2 for a broken template."""
    from pwreset.domain.records import MessageKind, UserRecord
    from pwreset.notify.message import Outgoing
    from pwreset.notify.templates import MessageTemplates

    kind = MessageKind.RESET if args.kind == "reset" else MessageKind.PASSWORD_CHANGED
    try:
        templates = MessageTemplates(Path(settings.templates_dir) if settings.templates_dir else None)
    except ValueError as exc:
        print(f"pwreset: {exc}", file=sys.stderr)
        return 2
    now = system_now_us()
    user = UserRecord(
        "300000000000000001",
        "200000000000000001",
        "minnie",
        "active",
        "Minnie",
        "Mouse",
        "",
        "Minnie Mouse",
        args.lang,
        "GENDER_FEMALE",
        "minnie@mouse.example",
        True,
        "+41791234567",
        True,
        None,
        False,
        now,
        1,
        now,
        now,
    )
    link = "https://app.example/password/set?code=SAMPLECODE&userId=300000000000000001"
    sample = Outgoing(
        "sample",
        "email",
        user.email,
        link if kind is MessageKind.RESET else "",
        user,
        now + 3_600_000_000 if kind is MessageKind.RESET else now,
        now,
        kind,
    )
    context = sample.template_context()
    email = templates.email(context, kind=kind, language=args.lang)
    sms = templates.sms(context, kind=kind, language=args.lang)
    print(
        f"Subject: {email.subject}\n\n--- text ---\n{email.text.rstrip()}\n\n--- html ---\n"
        f"{email.html.rstrip()}\n\n--- sms ---\n{sms}"
    )
    return 0


@asynccontextmanager
async def _existing_store(settings: Settings) -> AsyncIterator[Store]:
    """The store of a database that `pwreset migrate` or `serve` has set up, opened without
    creating or migrating anything: what the administration commands use. Raises
    `StartupError` for a missing SQLite file (or data directory), a database without
    pwreset's schema or at another version, and one that cannot be reached."""
    from pwreset.store import Store, parse_database_url

    _check_database_url(settings)
    url = settings.effective_database_url
    dialect, location = parse_database_url(url)
    if dialect == "sqlite" and not Path(location).is_file():
        raise StartupError(f"no database at {location}; run 'pwreset migrate' or 'pwreset serve' first")
    try:
        async with Store.opened(url) as store:
            await _check_schema(store, settings)
            yield store
    except Exception as exc:
        if not _is_environment_failure(exc):
            raise
        raise StartupError(_startup_message(settings, exc)) from None


async def _check_schema(store: Store, settings: Settings) -> None:
    """Raise `StartupError` unless the database is at the schema version this pwreset writes."""
    from pwreset.store.migrations import LATEST

    # Looked up in the catalog first: selecting from a missing table would abort a
    # PostgreSQL transaction.
    exists = (
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        if store.dialect == "sqlite"
        else "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename = 'schema_migrations'"
    )
    async with store.read() as tx:
        [(found,)] = await tx.fetch_all(exists, {})
        version = None
        if found:
            [(version,)] = await tx.fetch_all("SELECT max(version) FROM schema_migrations", {})
    where = redact_url(settings.effective_database_url)
    if version is None:
        raise StartupError(
            f"the database {where} has no pwreset schema; run 'pwreset migrate' or 'pwreset serve' first"
        )
    if version < LATEST:
        raise StartupError(
            f"the database {where} is at schema version {version}, this pwreset needs {LATEST}; "
            "run 'pwreset migrate' first"
        )
    if version > LATEST:
        raise StartupError(
            f"the database {where} is at schema version {version}, newer than this pwreset knows "
            f"({LATEST}); upgrade pwreset"
        )
