"""The innermost ASGI app of the mock: Connexion has routed, authenticated and validated the
request; this reads it and sends the responder's answer, with the headers its documented
response declares (`mocks.headers`). Requests Connexion could not route
get the same 404/405 (with `Allow`) as the real server, raised into the shared error path."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from mocks import preferences
from mocks.contract import Contract, Operation
from mocks.headers import DocumentedHeaders
from mocks.responder import Responder
from pwreset import errors
from pwreset.paths import RouteTable
from pwreset.spec import read_body
from pwreset.validation import MAX_JSON_DEPTH, nested_too_deep

ROUTING_CONTEXT = "connexion_routing"


class MockEndpoint:
    """Answers every operation of the spec; Connexion routes to it through `resolver()`."""

    def __init__(
        self, contract: Contract, responder: Responder, routes: RouteTable, headers: DocumentedHeaders
    ) -> None:
        self.contract = contract
        self.responder = responder
        self.routes = routes
        self.headers = headers
        self._headers_by_status: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        routing = scope.get("extensions", {}).get(ROUTING_CONTEXT) or {}
        operation_id = routing.get("operation_id")
        if operation_id is None:
            raise self._unrouted(scope["method"], scope["path"])
        operation = self.contract.operations[operation_id]
        try:
            prefer = [value.decode("latin-1") for name, value in scope["headers"] if name == b"prefer"]
            wanted = preferences.parse(prefer, scope.get(preferences.SCOPE_KEY, {}))
        except preferences.PreferenceError as exc:
            raise errors.invalid_argument("MOCK-prefer", f"invalid preference: {exc}") from None
        content_type = next((value for name, value in scope["headers"] if name == b"content-type"), b"")
        body = await _json_body(receive) if b"json" in content_type.lower() else None
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        status, media_type, payload = await self.responder.respond(
            operation, scope.get("path_params") or {}, query, body, wanted
        )
        headers = [
            *self._documented_headers(operation, status),
            (b"content-length", str(len(payload)).encode()),
        ]
        if media_type and payload:
            headers.append((b"content-type", media_type.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _documented_headers(self, operation: Operation, status: int) -> list[tuple[bytes, bytes]]:
        """The headers the response answering with `status` declares (worked out once per
        operation and status)."""
        key = (operation.operation_id, status)
        headers = self._headers_by_status.get(key)
        if headers is None:
            choice = operation.for_status(status)
            found = self.headers.for_response(operation.operation_id, choice.response.key) if choice else []
            headers = self._headers_by_status[key] = found
        return headers

    def resolver(self) -> Resolver:
        """A resolver naming each operation as `mocks.contract` does (operationId, else
        `METHOD /path`), router controllers aside, with this endpoint as its function."""
        endpoint = self

        class MockResolver(Resolver):  # type: ignore[misc]  # connexion ships no types
            def resolve_operation_id(self, operation) -> str:  # type: ignore[no-untyped-def]
                return operation.operation_id or f"{operation.method.upper()} {operation.path}"

        return MockResolver(function_resolver=lambda _operation_id: endpoint)

    def _unrouted(self, method: str, path: str) -> HTTPException:
        allow = self.allow_header(path)
        # A documented method here means a path Connexion's router cannot match (a newline in
        # an id): not found, as the real server answers.
        if allow is None or method in allow.split(", "):
            return HTTPException(404)
        return HTTPException(405, headers={"Allow": allow})

    def allow_header(self, path: str) -> str | None:
        """The methods of the most concrete path template matching `path` (with HEAD for
        GET, as served); None when none matches."""
        return self.routes.allow(path)


async def _json_body(receive: Receive) -> object:
    raw = await read_body(receive)
    if not raw.strip():
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.invalid_input("invalid request body: not JSON") from None
    if nested_too_deep(body):
        raise errors.invalid_input(f"invalid request body: nested more than {MAX_JSON_DEPTH} levels deep")
    return body
