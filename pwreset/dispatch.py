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

Handler = Callable[..., Awaitable[dict]]
_JSON_HEADERS = [(b"content-type", b"application/json")]


_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


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

    async def __call__(self, scope: Scope, receive: Receive) -> dict:
        kwargs: dict[str, Any] = {}
        path_params = scope.get("path_params", {})
        for name, argument in self.path_parameters:
            kwargs[argument] = path_params[name]
        if self.wants_body:
            kwargs["body"] = await _read_json(receive)
        if self.wants_token_info:
            context = scope.get("extensions", {}).get("connexion_context", {})
            if "token_info" not in context:
                # Connexion's router matched a path its other layers did not (a trailing
                # newline in an id): no authentication ran, so the request goes nowhere.
                raise HTTPException(status_code=404)
            kwargs["token_info"] = context["token_info"]
        return await self.handler(**kwargs)


async def _read_json(receive: Receive) -> Any:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    return orjson.loads(body) if body else None


class OperationDispatcher:
    """Dispatches by Connexion's routed operationId to prepared handler calls."""

    def __init__(self, spec: dict, resolve: Callable[[str], Handler]) -> None:
        self._calls: dict[str, _PreparedCall] = {}

        def path_parameters(node: dict) -> list[str]:
            resolved = (_resolve(spec, p) for p in node.get("parameters", []))
            return [p["name"] for p in resolved if p.get("in") == "path"]

        for item in spec["paths"].values():
            for method, operation in item.items():
                if method in _HTTP_METHODS:
                    names = path_parameters(item) + path_parameters(operation)
                    self._calls[operation["operationId"]] = _PreparedCall(
                        resolve(operation["operationId"]), names
                    )

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
