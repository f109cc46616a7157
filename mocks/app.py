"""The mock server's app factory: the spec's examples behind the real server's edge.

`create_mock_app` assembles Connexion's middleware stack around `mocks.endpoint.MockEndpoint`,
with the real server's authentication (`StaticTokens` in place of a store), error bodies,
health checks, body limits and transports.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

from connexion.exceptions import InvalidSpecification
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.security import ApiKeySecurityHandler, BasicSecurityHandler, OAuthSecurityHandler
from starlette.middleware.cors import CORSMiddleware

from mocks.contract import prepare
from mocks.document import ServedDocument
from mocks.document_errors import VIOLATIONS_HEADER, DocumentErrors
from mocks.endpoint import MockEndpoint
from mocks.headers import DocumentedHeaders
from mocks.openapi31 import connexion_view, is_openapi_31
from mocks.preferences import QueryPreferences
from mocks.report import InvalidDocument, describe_invalid_document, format_report
from mocks.responder import Responder
from mocks.settings import MockSettings
from mocks.state import ResourceState, StateReset, roles_from_links
from mocks.validation31 import validator_map_31
from pwreset.asgi import WholeBodies, grpc_port, install_error_handlers, service_edge
from pwreset.auth import PERMISSIONS, Authenticator, hash_token, security_map
from pwreset.config import Settings
from pwreset.domain.records import TokenRecord
from pwreset.paths import RouteTable, by_specificity
from pwreset.query_credentials import RefuseQueryCredentials, declared_query_names
from pwreset.served_spec import ServedSpec
from pwreset.server import Admission, ConnectionLimits
from pwreset.spec import load_spec
from pwreset.transcode import ProtobufRequests, RpcTranscoder
from pwreset.validation import SchemaCache, reads_protojson, validator_map

logger = logging.getLogger("pwreset")


class StaticTokens:
    """The mock's token store: a fixed set of tokens, each with every permission. A
    `pwreset.auth.TokenSource`, so the mock checks tokens, and words its 401s, exactly as the
    real server."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._records = {
            hash_token(token): TokenRecord("mock", "mock", None, frozenset(PERMISSIONS)) for token in tokens
        }

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[StaticTokens]:
        yield self

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        return self._records.get(token_hash)


def _mock_security_map(tokens: Sequence[str]) -> dict[str, Any]:
    """Bearer tokens checked as on the real server; for other specs, API keys, basic-auth
    passwords and OAuth2 tokens are accepted when they are one of the same tokens."""
    allowed = frozenset(tokens)

    def api_key(key: str, required_scopes: Any = None) -> dict[str, Any] | None:
        return {"sub": "mock"} if key in allowed else None

    def basic(username: str, password: str, required_scopes: Any = None) -> dict[str, Any] | None:
        return {"sub": username} if password in allowed else None

    def token_info(token: str, required_scopes: Any = None) -> dict[str, Any] | None:
        return {"sub": "mock", "scope": list(required_scopes or ())} if token in allowed else None

    class ApiKey(ApiKeySecurityHandler):  # type: ignore[misc]  # connexion ships no types
        def _resolve_func(self, security_scheme: dict[str, Any]) -> Callable[..., Any]:
            return api_key

    class Basic(BasicSecurityHandler):  # type: ignore[misc]  # connexion ships no types
        def _resolve_func(self, security_scheme: dict[str, Any]) -> Callable[..., Any]:
            return basic

    class OAuth2(OAuthSecurityHandler):  # type: ignore[misc]  # connexion ships no types
        def get_tokeninfo_func(self, security_definition: dict[str, Any]) -> Callable[..., Any]:
            return token_info

    authenticate = Authenticator(StaticTokens(tokens)).authenticate
    return {**security_map(authenticate), "apiKey": ApiKey, "basic": Basic, "oauth2": OAuth2}


class AlwaysReady:
    """The mock's `pwreset.asgi.ReadinessProbe`: it has no database to wait for."""

    async def ping(self) -> None:
        return None


def create_mock_app(
    mock: MockSettings,
    *,
    spec: dict[str, Any] | None = None,
    rng: random.Random | None = None,
    state: ResourceState | None = None,
    body_timeout: float = Settings.body_timeout,
    max_concurrent_requests: int = Settings.max_concurrent_requests,
    limits: ConnectionLimits | None = None,
) -> RpcTranscoder:
    """The mock server as an ASGI app: the spec's examples behind the real server's
    authentication (only `mock.tokens`), request validation, error bodies, health checks,
    refusal of credentials in query strings (but for query parameters and API keys the spec
    declares), body deadline (`body_timeout` seconds, 0: none) and admission limit.
    Examples that do not match their schemas are reported in one warning and served as
    generated data. Raises `mocks.report.InvalidDocument` (one line) for a document that is
    not OpenAPI, and `mocks.contract.InvalidExample` (the whole report) for invalid examples
    when `mock.strict`."""
    spec = spec if spec is not None else load_spec(mock.spec_path)
    source = str(mock.spec_path or "the spec")
    contract = prepare(spec, strict=mock.strict, source=source)
    if contract.problems:
        logger.warning("%s", format_report(contract.problems, source))
    # The caller may keep a handle on `state`, to reset it between tests or keep it on reload.
    responder = Responder(
        contract,
        roles_from_links(spec),
        mock,
        rng=rng or random.Random(mock.seed),
        generator=contract.generator,
        state=state,
    )
    headers = DocumentedHeaders(spec, seed=mock.seed or 0)
    endpoint = MockEndpoint(contract, responder, RouteTable(spec), headers)
    schemas = SchemaCache()
    limits = limits or ConnectionLimits(
        body_timeout=body_timeout, max_concurrent_requests=max_concurrent_requests
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        async with grpc_port(outer, mock.host, mock.grpc_port, limits):
            yield

    # Connexion's middleware stack (routing, security, validation, errors) around one plain
    # ASGI endpoint: no per-request handler decoration, so about twice AsyncApp's throughput.
    app = ConnexionMiddleware(
        endpoint, import_name=__name__, security_map=_mock_security_map(mock.tokens), lifespan=lifespan
    )
    try:
        validators = validator_map(schemas, protojson=reads_protojson(spec))
        if is_openapi_31(spec):
            validators = validator_map_31(spec, validators)
        app.add_api(
            by_specificity(connexion_view(spec)), resolver=endpoint.resolver(), validator_map=validators
        )
    except InvalidSpecification as exc:
        raise InvalidDocument(describe_invalid_document(exc)) from None
    install_error_handlers(app, endpoint.allow_header)
    app.add_middleware(ProtobufRequests, position=MiddlewarePosition.BEFORE_VALIDATION)
    app.add_middleware(
        ServedDocument, position=MiddlewarePosition.BEFORE_SWAGGER, spec=spec, base_path=contract.base_path
    )
    app.add_middleware(
        DocumentErrors,
        position=MiddlewarePosition.BEFORE_SECURITY,
        contract=contract,
        headers=headers,
        schemas=schemas,
    )
    cors = None
    if mock.cors_origins:
        # Outermost, so that every answer has the headers, the errors of each protocol too:
        # a browser hides an answer without them from the page, status and all.
        cors = partial(
            CORSMiddleware,
            allow_origins=list(mock.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=True,
            # gRPC-web clients read the status from these when it comes as headers.
            expose_headers=[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                VIOLATIONS_HEADER,
                *headers.names,
            ],
        )
    if responder.state is not None:
        app.add_middleware(StateReset, position=MiddlewarePosition.BEFORE_SWAGGER, state=responder.state)
    outer = RpcTranscoder(
        RefuseQueryCredentials(
            service_edge(
                ServedSpec(
                    WholeBodies(
                        Admission(QueryPreferences(app), max_concurrent_requests), timeout=body_timeout
                    ),
                    spec,
                ),
                AlwaysReady(),
            ),
            allowed_names=declared_query_names(spec),
            known_tokens=mock.tokens,
        ),
        edge=cors,
    )
    return outer
