"""The document as written, at `{base path}/openapi.json` and `/openapi.yaml`.

Connexion serves its resolved copy of the spec there (`SwaggerUIAPI._spec_for_prefix`): for
a schema that refers to itself that copy is a cyclic graph, and every request for it fails
with "Circular reference detected"; for an OpenAPI 3.1 document it would be the 3.0 view
Connexion routes by (`mocks.openapi31`). This answers both paths first, with the document's
own text, serialized once.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from starlette.types import ASGIApp, Receive, Scope, Send


class ServedDocument:
    """ASGI middleware: GET/HEAD of the two document paths, everything else passed on."""

    def __init__(self, app: ASGIApp, spec: dict[str, Any], base_path: str) -> None:
        self.app = app
        self._bodies = {
            f"{base_path}/openapi.json": (b"application/json", orjson.dumps(spec)),
            f"{base_path}/openapi.yaml": (
                b"text/yaml",
                yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).encode(),
            ),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._bodies.get(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        media_type, body = found
        headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
