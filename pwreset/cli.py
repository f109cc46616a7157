"""The `pwreset` command: a table of subcommands, each a function registered with
`set_defaults(run=...)`. Heavy modules (Connexion, the store, the mock) are imported inside
the commands that use them, so that `pwreset --help` stays fast."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pwreset import __version__
from pwreset.config import SETTINGS, Scope, Settings, settings_of
from pwreset.domain.ids import IdGenerator
from pwreset.domain.records import OutboxStatus
from pwreset.domain.timestamps import system_now_us
from pwreset.keys import SecretMismatch

if TYPE_CHECKING:
    from pwreset.store import Store

logger = logging.getLogger("pwreset")

Command = Callable[[argparse.Namespace, Settings], int]

OUTBOX_STATUSES = tuple(OutboxStatus)

# The scopes of settings each command takes as flags (see pwreset.config.Scope).
_SERVE_SCOPES = (Scope.DATABASE, Scope.SERVER, Scope.LOGGING, Scope.CONNECTION, Scope.DELIVERY)
_WORKER_SCOPES = (Scope.DATABASE, Scope.LOGGING, Scope.DELIVERY)
_FRONT_SCOPES = (Scope.LOGGING, Scope.CONNECTION)  # mock and proxy


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


def _settings_table() -> str:
    lines = ["settings (flag / environment variable / default):"]
    for item in SETTINGS:
        lines.append(f"  {item.flag or '(no flag)':28} {item.environment:34} {item.plain_default}")
        lines.append(f"      {item.plain_help}")
    return "\n".join(lines)


def _add_setting_flags(parser: argparse.ArgumentParser, *scopes: Scope, only: Collection[str] = ()) -> None:
    """A flag for each setting of `scopes` (of those named in `only`, when given), defaulting to
    None (not given: the environment's)."""
    for item in settings_of(*scopes):
        if item.flag is None or (only and item.name not in only):  # environment only, or not asked for
            continue
        help_text = f"{item.plain_help} (env {item.environment}"
        if item.kind is bool:
            parser.add_argument(
                item.flag,
                dest=item.name,
                action="store_const",
                const=True,
                default=None,
                help=help_text + "=1)",
            )
        else:
            parser.add_argument(
                item.flag,
                dest=item.name,
                type=item.kind,
                default=None,
                help=f"{help_text}, default {item.plain_default})",
            )


def _blocking(command: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]) -> Command:
    """An async command run to completion on its own event loop."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        return asyncio.run(command(args, settings))

    return run


def build_parser() -> argparse.ArgumentParser:
    """The `pwreset` parser; each (sub)command's parser sets `run`, the function `main` calls."""
    parser = argparse.ArgumentParser(
        prog="pwreset",
        description=(
            "Zitadel's User Service v2 password-reset flow, OpenAPI-first: "
            "a real server on SQLite or PostgreSQL, a mock of its spec for frontend teams, "
            "and a contract-test kit for any deployment."
        ),
        epilog=_settings_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pwreset {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the API server",
        description=(
            "Run the API server: migrate the database, create the default organization and "
            "an admin token on first start, then serve openapi.yaml with request and response "
            "validation. Swagger UI at /ui/, health at /healthz and /readyz. Each server "
            "process also delivers queued reset links (see `pwreset worker`). Prometheus metrics "
            "at /metrics, for a bearer token with the metrics.read permission on the whole "
            "instance (`pwreset token create --subject prometheus --permission metrics.read`), "
            "on the same port, summed over every --workers process. OpenTelemetry traces (a span "
            "per request and per delivery) go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set "
            "(pip install -e '.[otel]')."
        ),
    )
    _add_setting_flags(serve, *_SERVE_SCOPES)
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker",
        help="deliver queued reset links, without serving the API",
        description=(
            "Deliver the reset links waiting in the outbox by email (SMTP) and SMS (webhook), "
            "with retries and exponential backoff, until stopped. Any number of workers and "
            "servers may share one database: each message is claimed by one of them. Each "
            "delivery is traced when OTEL_EXPORTER_OTLP_ENDPOINT is set (pip install -e '.[otel]')."
        ),
    )
    _add_setting_flags(worker, *_WORKER_SCOPES)
    worker.set_defaults(run=_blocking(_worker))

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

    migrate = commands.add_parser(
        "migrate",
        help="apply database migrations and exit",
        description="Apply the database migrations not applied yet and print their versions "
        "(or that the database is already up to date).",
    )
    _add_setting_flags(migrate, Scope.DATABASE)
    migrate.set_defaults(run=_migrate)

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

    _add_mock_parser(commands)
    _add_proxy_parser(commands)

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
    _add_events_parser(commands)
    _add_templates_parser(commands)
    _add_contract_test(commands)
    return parser


_MOCK_DESCRIPTION = """\
Serve the spec without a database or handlers, for frontend teams: every operation answers
with its documented examples, after the same bearer authentication, request validation and
error bodies as the real server. Examples are checked against their schemas at start, query,
path, header and form examples decoded from their wire form first ('true' for a boolean,
'a,b' for an array); every problem is reported in one list (operation, status or parameter,
example, JSON pointer, reason) and the mock starts anyway, serving generated data in place of
an invalid example. --strict refuses to start instead (for CI); --check SPEC only prints the
report and exits 1 if there are problems. OpenAPI 3.0 and 3.1 documents are served.

Choosing the answer (Prism-compatible), per request:
  Prefer: code=404             a documented status (statuses of `default` examples count)
  Prefer: example=sendLink     a named example, of any documented response
  Prefer: dynamic=true         data generated from the response schema instead of an example
  Prefer: latency=50-200       a delay in milliseconds (N or LOW-HIGH)
  ?__code=404&__example=NAME&__dynamic=true&__latency=100
                               the same from a query string, for pages that cannot set
                               headers; removed before the request is validated
Without a preference: the success response, with the example named like the request example
the body resembles most (a `returnCode` request gets the `returnCode` answer), else the
first one. An undocumented status or example is answered 400 naming the documented ones.

Ids from the request (path parameters, body fields named like them) are copied into the
response where its schema has a field of that name.

With --stateful, what an operation whose response has links creates (AddHumanUser) can be
read, changed and deleted through the linked operations, and is listed by a list operation;
unknown and deleted ids get the documented 404. Answers carry the values the resource was
created and changed with, mapped onto the response schema by name, and the ids, change
counters (sequence, version) and times (creationDate, changeDate, ...) the mock made; the
examples give the rest. POST /__mock/reset forgets everything; --state-file PATH keeps it
across restarts.

Chaos within the contract: --latency delays the operations' answers, --fault-rate answers a
share of valid requests with a documented error status (403, 404, the statuses of `default`
examples) and its example. CORS is on for any origin unless --cors-origin or --no-cors says
otherwise; preflights are answered. Health checks at /healthz and /readyz, the spec at
/openapi.json.
"""


def _add_mock_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mock = commands.add_parser(
        "mock",
        help="serve the spec's examples, for frontend teams",
        description=_MOCK_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mock.add_argument(
        "--spec", type=Path, help="OpenAPI document to mock (default: the packaged openapi.yaml)"
    )
    mock.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    mock.add_argument("--port", type=int, help="port (default 4010; 0: any free port, printed at start)")
    mock.add_argument(
        "--grpc-port",
        type=int,
        help="port of the native gRPC listener, HTTP/2 without TLS "
        "(default 4011; 0: any free port; -1: none); "
        "gRPC-web and Connect are on --port",
    )
    mock.add_argument(
        "--token",
        action="append",
        default=[],
        help=(
            "a bearer token the mock accepts, also as API key, basic-auth password or OAuth2 token "
            "for specs using those (repeatable; default: one generated and printed at start)"
        ),
    )
    mock.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="an origin allowed to call the mock from a browser (repeatable; default: any origin)",
    )
    mock.add_argument("--no-cors", action="store_true", help="send no CORS headers; answer no preflights")
    mock.add_argument("--dynamic", action="store_true", help="answer with generated data instead of examples")
    mock.add_argument(
        "--seed", type=int, help="seed for generated data, latency and faults (reproducible runs)"
    )
    mock.add_argument(
        "--stateful",
        action="store_true",
        help="remember what is created, with its values, and what is deleted, following the spec's links",
    )
    mock.add_argument(
        "--state-file",
        type=Path,
        metavar="PATH",
        help="keep the state in PATH across restarts, written atomically on each change (implies --stateful)",
    )
    mock.add_argument(
        "--watch",
        action="store_true",
        help="reload the spec and every file it references through $ref when one changes, on the same "
        "port, keeping the state; an edit that breaks it keeps the last good one (logged)",
    )
    mock.add_argument("--latency", metavar="MS", help="delay every answer: N or LOW-HIGH milliseconds")
    mock.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="answer this share of requests (0 to 1) with a documented error response and its example",
    )
    mock.add_argument(
        "--strict",
        action="store_true",
        help="refuse to start when any example does not match its schema (for CI)",
    )
    mock.add_argument(
        "--check",
        type=Path,
        metavar="SPEC",
        help="only check SPEC's examples: print every problem and exit 1 if there are any, 0 if none",
    )
    _add_setting_flags(mock, *_FRONT_SCOPES)
    mock.set_defaults(run=mock_command)


def check_spec(path: Path) -> int:
    """`pwreset mock --check SPEC`: 0 without problems, 1 with, 2 for an unreadable document."""
    import yaml

    from mocks.contract import prepare
    from mocks.report import InvalidDocument, check_document, format_report

    try:
        with path.open(encoding="utf-8") as handle:
            spec = yaml.safe_load(handle)
        check_document(spec)
        contract = prepare(spec)
    except (InvalidDocument, OSError, yaml.YAMLError) as exc:
        print(f"pwreset mock: {path}: {exc}", file=sys.stderr)
        return 2
    print(format_report(contract.problems, str(path)))
    return 1 if contract.problems else 0


def mock_command(args: argparse.Namespace, server_settings: Settings) -> int:
    """`pwreset mock`: serves until stopped; 2 for a document or setting it cannot serve."""
    import yaml

    from mocks.app import create_mock_app
    from mocks.preferences import PreferenceError, parse_latency
    from mocks.report import InvalidDocument
    from mocks.settings import MockSettings
    from mocks.state import ResourceState, StateFileError
    from mocks.watch import DocumentError, load_document
    from pwreset.auth import new_token
    from pwreset.server import ConnectionLimits, serve_on_socket
    from pwreset.spec import SPEC_PATH

    _check_connection_limits(server_settings)
    if args.check is not None:
        return check_spec(args.check)
    if not 0.0 <= args.fault_rate <= 1.0:
        print("pwreset mock: --fault-rate must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        latency = parse_latency(args.latency) if args.latency else None
    except PreferenceError as exc:
        print(f"pwreset mock: --latency: {exc}", file=sys.stderr)
        return 2
    tokens = tuple(args.token) or (new_token(),)
    settings = MockSettings(
        spec_path=args.spec,
        host=args.host or MockSettings.host,
        port=MockSettings.port if args.port is None else args.port,
        grpc_port=MockSettings.grpc_port if args.grpc_port is None else args.grpc_port,
        tokens=tokens,
        cors_origins=() if args.no_cors else tuple(args.cors_origin) or MockSettings.cors_origins,
        dynamic=args.dynamic,
        seed=args.seed,
        stateful=args.stateful or args.state_file is not None,
        latency_ms=latency,
        fault_rate=args.fault_rate,
        strict=args.strict,
    )
    limits = ConnectionLimits.from_settings(server_settings)
    spec_path = args.spec or SPEC_PATH
    try:
        document = load_document(spec_path)
        state = ResourceState.open(args.state_file) if settings.stateful else None
        # Under --watch the gRPC port outlives each document's app: it is opened once, below.
        built = replace(settings, grpc_port=-1) if args.watch else settings

        def build(spec: dict[str, Any]) -> Any:
            return create_mock_app(
                built,
                spec=spec,
                state=state,
                body_timeout=server_settings.body_timeout,
                max_concurrent_requests=server_settings.max_concurrent_requests,
                limits=limits,
            )

        app = build(document.spec)
    except (InvalidDocument, DocumentError, OSError, yaml.YAMLError, StateFileError) as exc:
        print(f"pwreset mock: {exc}", file=sys.stderr)
        return 2
    if args.watch:
        app = _watched_mock(app, build, settings, limits, state, spec_path, document.files)
    try:
        _check_port_free(settings.host, settings.grpc_port, "--grpc-port")
        sock, address = _listen(settings.host, settings.port)
    except StartupError as exc:
        print(f"pwreset mock: {exc}", file=sys.stderr)
        return 2
    print(f"pwreset mock listening on {address} (Swagger UI at /ui/)", flush=True)
    if not args.token:
        print(f"pwreset mock: no --token given; use   Authorization: Bearer {tokens[0]}", flush=True)
    serve_on_socket(
        app,
        sock,
        limits,
        log_level=server_settings.log_level.lower(),
        log_format=server_settings.log_format,
    )
    return 0


def _watched_mock(
    first: Any,
    build: Callable[[dict[str, Any]], Any],
    settings: Any,
    limits: Any,
    state: Any,
    spec_path: Path,
    files: frozenset[Path],
) -> Any:
    """The mock under --watch: each good document's app in turn, with one gRPC port and one
    state throughout; resources of kinds the new document no longer creates are dropped."""
    from mocks.state import roles_from_links
    from mocks.watch import Swappable, Watched, Watcher, warm_up
    from pwreset.asgi import grpc_port
    from pwreset.transcode import RpcTranscoder

    holder = Swappable(first)

    async def apply(spec: dict[str, Any]) -> None:
        candidate = build(spec)
        await warm_up(candidate)
        holder.current = candidate
        if state is not None:
            state.keep_kinds(roles_from_links(spec).kinds)

    async def current_json_app(scope: Any, receive: Any, send: Any) -> None:
        await holder.current.app(scope, receive, send)

    watcher = Watcher(spec_path, apply, files)
    shim = RpcTranscoder(current_json_app)
    return Watched(holder, watcher, (lambda: grpc_port(shim, settings.host, settings.grpc_port, limits),))


_PROXY_DESCRIPTION = """\
Forward every request to the upstream server and check the request and the answer against
the spec: the operation, credentials (present and well-formed; the upstream judges them),
parameters, content type and body of the request; status, documented headers, content type
and body of the answer. Each violation is reported in an `sl-violations` answer header (a
JSON array of {location, severity, code, message}, as Prism's proxy sends it), in the log,
and in a summary when the proxy stops (--report FILE writes it as JSON).

With --errors, a request that breaks the spec is answered 422 without being forwarded, and an
answer that breaks it becomes a 502 naming the violations (application/problem+json with a
`validation` array, as Prism's). An upstream that does not answer gives a 502.
"""


def _add_proxy_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    proxy = commands.add_parser(
        "proxy",
        help="a validating proxy in front of a real server: report where it breaks the spec",
        description=_PROXY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    proxy.add_argument(
        "--upstream", required=True, metavar="URL", help="the server, e.g. http://127.0.0.1:8080"
    )
    proxy.add_argument(
        "--spec", type=Path, help="OpenAPI document to check against (default: the packaged openapi.yaml)"
    )
    proxy.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    proxy.add_argument(
        "--port", type=int, default=4010, help="port (default 4010; 0: any free port, printed at start)"
    )
    proxy.add_argument(
        "--errors",
        action="store_true",
        help="answer a request that breaks the spec 422 unforwarded, and an answer that breaks it 502",
    )
    proxy.add_argument(
        "--report", type=Path, metavar="FILE", help="write the summary of violations as JSON at stop"
    )
    proxy.add_argument(
        "--watch",
        action="store_true",
        help="reload the spec and every file it references through $ref when one changes",
    )
    proxy.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the upstream (default 30)",
    )
    _add_setting_flags(proxy, *_FRONT_SCOPES)
    proxy.set_defaults(run=proxy_command)


def proxy_command(args: argparse.Namespace, server_settings: Settings) -> int:
    """`pwreset proxy`: serves until stopped; 2 for an upstream or document it cannot use."""
    from connexion.exceptions import InvalidSpecification

    from mocks.proxy import Report, ValidatingProxy, request_checker
    from mocks.watch import DocumentError, Watched, Watcher, load_document, warm_up
    from pwreset.server import ConnectionLimits, serve_on_socket
    from pwreset.spec import SPEC_PATH

    _check_connection_limits(server_settings)
    if not args.upstream.startswith(("http://", "https://")):
        print("pwreset proxy: --upstream must be an http:// or https:// URL", file=sys.stderr)
        return 2

    def write_report(report: Report) -> None:
        if args.report is not None:
            args.report.write_bytes(json.dumps(report.to_json(), indent=2).encode() + b"\n")

    spec_path = args.spec or SPEC_PATH
    try:
        document = load_document(spec_path)
        app: Any = ValidatingProxy(
            document.spec, args.upstream, errors=args.errors, on_stop=write_report, timeout=args.timeout
        )
    except (InvalidSpecification, DocumentError, OSError) as exc:
        print(f"pwreset proxy: {exc}", file=sys.stderr)
        return 2
    if args.watch:
        validating = app

        async def apply(spec: dict[str, Any]) -> None:
            await warm_up(request_checker(spec))
            validating.load(spec)

        app = Watched(validating, Watcher(spec_path, apply, document.files), (validating.lifespan,))
    try:
        sock, address = _listen(args.host, args.port)
    except StartupError as exc:
        print(f"pwreset proxy: {exc}", file=sys.stderr)
        return 2
    print(f"pwreset proxy listening on {address}, forwarding to {args.upstream}", flush=True)
    serve_on_socket(
        app,
        sock,
        ConnectionLimits.from_settings(server_settings),
        log_level=server_settings.log_level.lower(),
        log_format=server_settings.log_format,
    )
    return 0


def _add_contract_test(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    contract = commands.add_parser(
        "contract-test",
        help="run the contract suite against a live server",
        description=(
            "Run the contract suite (Schemathesis: examples, coverage, fuzzing and link-driven "
            "stateful phases, every check) against a server that claims to implement openapi.yaml, "
            "then reach each documented response; then read back boundary-value creations: each "
            "body a creating operation accepts (every string at its maxLength and minLength, "
            "optional properties present and absent, each enum value) must be readable through "
            "the spec's links to reads with a valid success, and is deleted afterwards. Fails "
            "unless every check passed and every documented response was produced and valid. "
            "It creates and deletes users on the target, with reserved addresses only (example.com, "
            "fictional phone numbers, links to https://example.com); --dry-run lists what it sends. "
            "Needs the contract extra: pip install -e '.[contract]' in the checkout."
        ),
    )
    contract.add_argument("--base-url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    contract.add_argument("--token", help="bearer token with every permission (or $PWRESET_CONTRACT_TOKEN)")
    contract.add_argument(
        "--low-privilege-token",
        help="bearer token without permissions, to reach each 403 (or $PWRESET_CONTRACT_LOW_PRIVILEGE_TOKEN)",
    )
    contract.add_argument(
        "--foreign-token",
        help=(
            "bearer token of another organization, to reach the 404 a caller without membership "
            "gets (or $PWRESET_CONTRACT_FOREIGN_TOKEN)"
        ),
    )
    contract.add_argument(
        "--max-examples", type=int, default=25, help="generated cases per operation and phase"
    )
    contract.add_argument("--seed", type=int, help="seed for generated data (default: random, printed)")
    contract.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report")
    contract.add_argument("--report", metavar="PATH", help="write the status coverage as JSON")
    contract.add_argument(
        "--allow-unreached",
        action="append",
        default=[],
        metavar="OPERATION_ID:RESPONSE",
        help="a documented response this deployment cannot produce: reported, not failed (repeatable)",
    )
    contract.add_argument("-v", "--verbose", action="store_true", help="one line per test and operation")
    contract.add_argument(
        "--dry-run",
        action="store_true",
        help=(
            "list the phases, the operations and each documented example request as it would be "
            "sent; send nothing"
        ),
    )
    contract.set_defaults(run=_contract_test)


def _contract_test(args: argparse.Namespace, _settings: Settings) -> int:
    """`pwreset contract-test`: the suite's exit status."""
    from contract_tests.runner import run
    from contract_tests.settings import KitSettings

    settings = KitSettings(
        base_url=args.base_url,
        token=args.token,
        low_privilege_token=args.low_privilege_token,
        foreign_token=args.foreign_token,
        max_examples=args.max_examples,
        report=args.report,
        allow_unreached=tuple(args.allow_unreached),
        **({"seed": args.seed} if args.seed is not None else {}),
    ).with_environment()
    if not settings.token and not args.dry_run:
        print("pwreset: contract-test needs --token or $PWRESET_CONTRACT_TOKEN", file=sys.stderr)
        return 2
    return run(settings, junit_xml=args.junit_xml, verbose=args.verbose, dry_run=args.dry_run)


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides = {item.name: getattr(args, item.name, None) for item in SETTINGS}
    return Settings.from_env().with_overrides(**overrides)


def _configure_logging(level: str, log_format: str) -> None:
    """One format for every line of every process (see `pwreset.server.log_config`); raises
    `ValueError` for an unknown format. Like `logging.basicConfig`, it leaves a root logger
    that already has handlers alone (pwreset run inside another program, or its tests)."""
    import logging.config

    from pwreset.server import log_config

    config = log_config(level, root=True, log_format=log_format)
    if not logging.getLogger().handlers:
        logging.config.dictConfig(config)
    # Connexion logs request bodies at debug level; bodies carry passwords and codes.
    logging.getLogger("connexion").setLevel(max(logging.INFO, logging.getLogger().level))
    # httpx logs every request's URL at info level; an SMS webhook URL may carry a credential.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    # watchfiles logs every change it sees, of any file in a watched directory.
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, logging.getLogger().level))
    from pwreset.server import OPERATION_LOGGER

    # Connexion warns on every request to an operation that takes more than one media type.
    logging.getLogger(OPERATION_LOGGER).setLevel(max(logging.ERROR, logging.getLogger().level))


class StartupError(Exception):
    """A start-up failure an operator can act on, told in one line without a traceback."""


def _is_environment_failure(exc: BaseException) -> bool:
    """Whether `exc` comes from the machine or the database rather than from a bug: a file or
    network error, the store's `StoreUnavailable`, or a database driver's error (asyncpg is
    imported only for PostgreSQL, so it is looked up only when loaded)."""
    import sqlite3

    from pwreset.unit_of_work import StoreUnavailable

    kinds: list[type] = [OSError, sqlite3.Error, StoreUnavailable]
    if "asyncpg" in sys.modules:
        from asyncpg.exceptions import PostgresError

        kinds.append(PostgresError)
    return isinstance(exc, tuple(kinds))


def _startup_message(settings: Settings, exc: BaseException) -> str:
    """One line naming what could not be used and the setting that chooses it."""
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename is not None:
        data_dir = settings.data_dir.resolve()
        path = Path(str(filename)).resolve()
        if path == data_dir or data_dir in path.parents:
            reason = exc.strerror or str(exc)
            return (
                f"cannot use the data directory {settings.data_dir} ({filename}: {reason}); "
                "choose another with --data-dir"
            )
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (
        f"cannot open the database {redact_url(settings.effective_database_url)}: "
        f"{lines[0] if lines else type(exc).__name__}; check --database-url"
    )


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


async def _prepare(settings: Settings) -> list[int]:
    """Prepare the data directory and the database; returns the migrations applied.
    Raises `StartupError` when either cannot be used, `SecretMismatch` on another secret."""
    from pwreset.bootstrap import prepare_database

    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise StartupError(
            f"the data directory {settings.data_dir} is not a directory; choose another with --data-dir"
        )
    try:
        boot = await prepare_database(settings)
    except SecretMismatch:
        raise
    except Exception as exc:
        if not _is_environment_failure(exc):
            raise
        raise StartupError(_startup_message(settings, exc)) from None
    if boot.migrations_applied:
        logger.info("database migrated to version %d", boot.migrations_applied[-1])
    if boot.admin_token_file:
        logger.warning(
            "first start: admin token written to %s (readable only by its owner)",
            boot.admin_token_file,
        )
    return boot.migrations_applied


def _listen(host: str, port: int, flag: str = "--port") -> tuple[socket.socket, str]:
    """A listening socket on `host:port` (port 0: any free one) and its URL, bound here so the
    real port can be printed before uvicorn starts. Raises `StartupError` naming the port and
    `flag` when it cannot listen there (in use, not allowed, no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(_bind_message(host, port, flag, exc)) from None
    sock.listen(2048)  # connections made as soon as the address is printed wait for uvicorn
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    return sock, f"http://{shown}:{bound_port}"


def _bind_message(host: str, port: int, flag: str, exc: OSError) -> str:
    import errno

    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use ({shown}); choose another with {flag}"
    if exc.errno == errno.EACCES:
        return f"port {port} is not allowed for this user ({shown}); choose another with {flag}"
    reason = exc.strerror or str(exc)
    return f"cannot listen on {shown}: {reason}; check --host and {flag}"


def _check_port_free(host: str, port: int, flag: str) -> None:
    """Raise `StartupError` unless `host:port` can be listened on now. For the ports whose
    listener is opened later (the gRPC port, inside the app; the HTTP port of `--workers`,
    by uvicorn), so that a port in use is told in one line before anything starts."""
    if port <= 0:
        return
    sock, _ = _listen(host, port, flag)
    sock.close()


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset serve`."""
    _check_database_url(settings)
    _check_service_settings(settings)
    _check_connection_limits(settings)
    serve(settings)
    return 0


def serve(settings: Settings) -> None:
    """Prepare the database, then serve until stopped; raises `StartupError` or `SecretMismatch`."""
    from pwreset.metrics import multiprocess_directory
    from pwreset.server import ConnectionLimits, serve_on_socket, serve_workers

    limits = ConnectionLimits.from_settings(settings)
    log_level = settings.log_level.lower()

    # Ports first: one in use stops the start before the database is touched.
    _check_port_free(settings.host, settings.grpc_port, "--grpc-port")
    # Made before the workers start: each of them writes its metrics where the one that
    # answers a scrape adds them all up.
    with multiprocess_directory(workers=settings.workers):
        if settings.workers > 1:
            _check_port_free(settings.host, settings.port, "--port")
            asyncio.run(_prepare(settings))
            os.environ.update(settings.to_env())
            logger.warning(
                "pwreset listening on http://%s:%d with %d workers",
                settings.host,
                settings.port,
                settings.workers,
            )
            serve_workers(
                "pwreset.app:app_from_environment",
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                limits=limits,
                log_level=log_level,
                log_format=settings.log_format,
            )
            return
        from pwreset.app import create_app

        sock, address = _listen(settings.host, settings.port)
        try:
            asyncio.run(_prepare(settings))
        except BaseException:
            sock.close()
            raise
        logger.warning("pwreset listening on %s (Swagger UI at /ui/)", address)
        serve_on_socket(
            create_app(settings), sock, limits, log_level=log_level, log_format=settings.log_format
        )


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset migrate`: the only command besides serve and worker that makes a database."""
    from pwreset.store.migrations import LATEST

    _check_database_url(settings)
    applied = asyncio.run(_prepare(settings))
    if applied:
        versions = ", ".join(str(version) for version in applied)
        print(f"applied migration{'s' if len(applied) > 1 else ''} {versions}: schema version {LATEST}")
    else:
        print(f"already up to date: schema version {LATEST}")
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


async def _worker(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset worker`: migrates like serve, then delivers until SIGINT or SIGTERM."""
    import signal

    from pwreset.keys import Keys, load_or_create_secret
    from pwreset.notify import build_worker, log_delivery_setup
    from pwreset.store import Store
    from pwreset.tracing import provider_from_environment, tracer_of

    _check_database_url(settings)
    _check_service_settings(settings)
    await _prepare(settings)
    secret = settings.secret.encode() if settings.secret else load_or_create_secret(settings.secret_file)
    provider = provider_from_environment()
    try:
        async with Store.opened(settings.effective_database_url) as store:
            worker = build_worker(
                settings, store, Keys.from_secret(secret), now_us=system_now_us, tracer=tracer_of(provider)
            )
            log_delivery_setup(settings, worker)
            if not worker.media:
                print("pwreset: nothing to deliver with: configure SMTP or an SMS webhook", file=sys.stderr)
                return 2
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            logger.warning("delivery worker %s started", worker.worker_id)
            await worker.run(stop)
    finally:
        if provider is not None:
            provider.shutdown()  # sends the spans still batched
    return 0


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


# -- audit events and message templates ------------------------------------------------------

_SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


def main(argv: Sequence[str] | None = None) -> int:
    """The `pwreset` command: 0 on success; 2, with one line on stderr, for an operator's mistake."""
    args = build_parser().parse_args(argv)
    settings = _settings_from(args)
    try:
        _configure_logging(settings.log_level, settings.log_format)
    except ValueError as exc:
        print(f"pwreset: --log-format: {exc}", file=sys.stderr)
        return 2
    run: Command = args.run
    try:
        return run(args, settings)
    except (SecretMismatch, StartupError) as exc:
        print(f"pwreset: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`pwreset events list | head`): stop quietly, as Unix tools do;
        # stdout goes to /dev/null so that flushing it at exit raises nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _check_database_url(settings: Settings) -> None:
    """Raise `StartupError` naming `--database-url` when its scheme is not one pwreset uses."""
    from pwreset.store import parse_database_url

    try:
        parse_database_url(settings.effective_database_url)
    except ValueError:
        url = redact_url(settings.effective_database_url)
        raise StartupError(
            f"unsupported database URL {url}: --database-url takes sqlite:///PATH or "
            "postgresql://USER@HOST/DB"
        ) from None


def _check_service_settings(settings: Settings) -> None:
    """Raise `StartupError` for a setting of serve or worker that cannot work: a bad setting is
    an operator's mistake, told in one line without a traceback."""
    from pwreset.bootstrap import service_settings
    from pwreset.notify import build_senders, delivery_policy
    from pwreset.served_spec import parse_public_url
    from pwreset.tracing import check_environment

    try:
        if settings.public_url:
            parse_public_url(settings.public_url)
        build_senders(settings)
        delivery_policy(settings)
        service_settings(settings)
        check_environment()
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def _check_connection_limits(settings: Settings) -> None:
    """Raise `StartupError` for a negative timeout or limit (serve, mock, proxy)."""
    from pwreset.server import ConnectionLimits

    try:
        ConnectionLimits.from_settings(settings)
    except ValueError as exc:
        raise StartupError(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
