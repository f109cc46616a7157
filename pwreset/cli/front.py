"""`pwreset mock`, `proxy` and `contract-test`: the commands in place of a server or in front
of one, from the spec alone; none of them opens a database."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pwreset.cli.base import (
    StartupError,
    _add_setting_flags,
    _check_connection_limits,
    _check_port_free,
    _listen,
)
from pwreset.config import Scope, Settings

# The scopes of settings each command here takes as flags (see pwreset.config.Scope).
_FRONT_SCOPES = (Scope.LOGGING, Scope.CONNECTION)  # mock and proxy



def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """mock, proxy and contract-test."""
    _add_mock_parser(commands)
    _add_proxy_parser(commands)
    _add_contract_test(commands)



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
