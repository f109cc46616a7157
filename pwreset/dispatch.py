"""The innermost ASGI app: calls the handler of the operation Connexion routed the request to.

Connexion's own app wraps every handler in a fresh decorator stack and inspects its signature
on every request. Here each operation's call is prepared once, at start: which path
parameters, whether a body, whether the caller's token info. Routing, security and
validation stay Connexion's (`ConnexionMiddleware` around this app); only the last step,
calling the function and encoding its dict, is ours.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from pwreset.spec import operations, read_json_body, resolve_ref

Handler = Callable[..., Awaitable[dict[str, Any]]]
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _PreparedCall:
    """One operation's handler, with how to build its arguments worked out in advance."""

    def __init__(self, handler: Handler, path_parameters: Iterable[str]) -> None:
        self.handler = handler
        accepted = set(inspect.signature(handler).parameters)
        self.path_parameters = [(name, _snake(name)) for name in path_parameters if _snake(name) in accepted]
        self.wants_body = "body" in accepted
        self.wants_token_info = "token_info" in accepted

    async def __call__(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        path_params = scope.get("path_params", {})
        for name, argument in self.path_parameters:
            kwargs[argument] = path_params[name]
        if self.wants_body:
            kwargs["body"] = await read_json_body(receive)
        if self.wants_token_info:
            context = scope.get("extensions", {}).get("connexion_context", {})
            if "token_info" not in context:
                # Connexion's router matched a path its other layers did not (a trailing
                # newline in an id): no authentication ran, so the request goes nowhere.
                raise HTTPException(status_code=404)
            kwargs["token_info"] = context["token_info"]
        return await self.handler(**kwargs)


class OperationDispatcher:
    """Dispatches by Connexion's routed operationId to prepared handler calls."""

    def __init__(self, spec: dict[str, Any], resolve: Callable[[str], Handler]) -> None:
        self._calls: dict[str, _PreparedCall] = {}

        def path_parameters(node: dict[str, Any]) -> list[str]:
            resolved = (resolve_ref(spec, p) for p in node.get("parameters", []))
            return [p["name"] for p in resolved if p.get("in") == "path"]

        for path, _method, operation in operations(spec):
            names = path_parameters(spec["paths"][path]) + path_parameters(operation)
            self._calls[operation["operationId"]] = _PreparedCall(resolve(operation["operationId"]), names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is Connexion's
            return
        operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
        if operation_id is None:  # no operation in the spec matches the path
            raise HTTPException(status_code=404)
        result = await self._calls[operation_id](scope, receive)
        payload = orjson.dumps(result)
        headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
