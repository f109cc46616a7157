"""Bad requests answered in the document's own error shape.

A document that declares its errors (Box's `ClientError`, a 422 with `errors: [...]`,
Twilio's `default`) promises its clients that shape; pwreset's `{code, message, details}`
would break every client that decodes it. So a request the mock refuses after routing (its
parameters or body break the schema, its token is missing, its media type is not taken)
gets the operation's documented response and its example, as Prism answers:

- a refused request (400): the documented 400, else 422, else `default`, with status 400;
- any other refusal (401, 403, 404, 406, 409, 415, ...): its own status, if documented, else
  `default`.

pwreset's own body stays where the document declares nothing for the status, and where the
declared schema takes pwreset's body as it is (pwreset's own spec, or any gRPC-gateway or
Connect error schema): it then says more than an example. Either way the documented
response's headers come with it. The mock's own refusals of a
`Prefer` (`MOCK-prefer`, `MOCK-code`, `MOCK-example`) are about the mock, not the API, and
keep pwreset's body too. The reason the document's example does not tell is sent in a Prism-
compatible `sl-violations` header.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from mocks.contract import Choice, Contract, Operation
from mocks.headers import DocumentedHeaders
from pwreset import errors
from pwreset.openapi_schema import Direction
from pwreset.validation import SchemaCache

ROUTING_CONTEXT = "connexion_routing"
VIOLATIONS_HEADER = "sl-violations"
MOCK_OWN_ERRORS = frozenset({"MOCK-prefer", "MOCK-code", "MOCK-example"})


class DocumentErrors:
    """ASGI middleware inside Connexion's routing (so the operation is known), around its
    security and validation layers and the mock's endpoint."""

    def __init__(
        self, app: ASGIApp, contract: Contract, headers: DocumentedHeaders, schemas: SchemaCache
    ) -> None:
        self.app = app
        self.contract = contract
        self.headers = headers
        self.schemas = schemas
        # Only operations that declare some error response can answer in a shape of their own.
        self.declaring = frozenset(
            operation_id
            for operation_id, operation in contract.operations.items()
            if any(
                response.nominal_status is None or response.nominal_status >= 400
                for response in operation.responses.values()
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation_id = (scope.get("extensions", {}).get(ROUTING_CONTEXT) or {}).get("operation_id")
        if operation_id not in self.declaring:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if not _is_refusal(exc):
                raise
            error = errors.from_exception(exc)
            if error.error_id in MOCK_OWN_ERRORS:
                raise
            answer = self._answer(self.contract.operations[operation_id], error, scope["path"])
            if answer is None:
                raise
            await _send(send, *answer)

    def _answer(
        self, operation: Operation, error: errors.ApiError, path: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        choice = _documented(operation, error.status_code)
        if choice is None:
            return None
        _, own, _ = errors.render(error, path)
        schema = choice.response.schema
        fits = schema is not None and (
            self.schemas.first_error(schema, orjson.loads(own), "the error", Direction.RESPONSE) is None
        )
        given = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()
        ]
        names = {name for name, _ in given}
        documented = self.headers.for_response(operation.operation_id, choice.response.key)
        headers = [*(header for header in documented if header[0] not in names), *given]
        if fits:  # the document's shape is pwreset's: its body says more than an example
            return choice.status, [*headers, (b"content-type", b"application/json")], own
        headers.append((VIOLATIONS_HEADER.encode(), _violations(error)))
        payload = choice.example.payload if choice.example is not None else b""
        if payload and choice.response.media_type:
            headers.append((b"content-type", choice.response.media_type.encode("latin-1")))
        return choice.status, headers, payload


def _is_refusal(exc: Exception) -> bool:
    """A client error (4xx) rather than a bug, which stays a 500 in pwreset's shape."""
    if isinstance(exc, errors.ApiError):
        return 400 <= exc.status_code < 500
    status = getattr(exc, "status_code", None)
    return isinstance(exc, UnicodeDecodeError) or (isinstance(status, int) and 400 <= status < 500)


def _documented(operation: Operation, status: int) -> Choice | None:
    """The documented response for a refusal with `status`: see the module's docstring."""
    if status == 400:
        for key in ("400", "422"):
            response = operation.responses.get(key)
            if response is not None:
                return Choice(int(key), response, response.examples[0] if response.examples else None)
    explicit = operation.responses.get(str(status))
    if explicit is not None:
        return Choice(status, explicit, explicit.examples[0] if explicit.examples else None)
    default = operation.responses.get("default")
    if default is None:
        return None
    example = next((e for e in default.examples if e.status == status), None)
    return Choice(status, default, example or (default.examples[0] if default.examples else None))


def _violations(error: errors.ApiError) -> bytes:
    """A Prism `sl-violations` value: a JSON array of `{location, severity, code, message}`,
    in ASCII (a header value cannot carry more; Prism's own crashes on it, its issue #1934)."""
    violation: dict[str, Any] = {
        "location": ["request"],
        "severity": "Error",
        "code": str(error.status_code),
        "message": error.message,
    }
    return json.dumps([violation], ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
