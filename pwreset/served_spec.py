"""The spec as served at `/openapi.json` and `/openapi.yaml`, naming this server in `servers`.

Connexion serves the spec with `servers: [{url: ""}]` (the root path), which Swagger UI's
Servers list shows as an empty entry. Here `servers` holds an absolute URL: the configured
public URL (`--public-url`) when there is one, else the scheme and `Host` of the request for
the spec. A `Host` header is the client's to choose, so it is used for this display only:
it must look like a host name or address with an optional port (else the spec's own
relative `/` is served), the answer carries `Cache-Control: no-store` (see
`pwreset.asgi.service_edge`), so no cache hands one client's `Host` to another, and
nothing else in pwreset reads `Host`. Behind a proxy that rewrites `Host`, set the public URL.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml
from starlette.types import ASGIApp, Receive, Scope, Send

SPEC_PATHS = {"/openapi.json": "json", "/openapi.yaml": "yaml"}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")


def parse_public_url(value: str) -> str:
    """`value` without a trailing slash, if it is an http(s) URL with a host and no query or
    fragment; raises `ValueError` naming `--public-url` otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or not _HOST.fullmatch(parts.netloc):
        raise ValueError(f"--public-url {value!r} is not an http:// or https:// URL with a host")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"--public-url {value!r} may have a path, but no credentials, query or fragment")
    return value.rstrip("/")


class ServedSpec:
    """Answers GET and HEAD of `/openapi.json` and `/openapi.yaml` with `spec`, its `servers`
    naming this server: `public_url`, else the request's scheme and `Host` (see above)."""

    def __init__(self, app: ASGIApp, spec: dict[str, Any], public_url: str | None = None) -> None:
        self.app = app
        self.spec = spec
        self.public_url = parse_public_url(public_url) if public_url else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        form = SPEC_PATHS.get(scope["path"]) if scope["type"] == "http" else None
        if form is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        body = self._render(self.server_url(scope), form)
        media_type = b"application/json" if form == "json" else b"text/yaml"
        headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def server_url(self, scope: Scope) -> str:
        """The URL `servers` names for a request: the public URL, else scheme://Host plus
        the root path, else `/` when the Host header is missing or not a host."""
        if self.public_url:
            return self.public_url
        host = next((value for name, value in scope["headers"] if name == b"host"), b"").decode("latin-1")
        scheme = scope.get("scheme", "http")
        if scheme not in ("http", "https") or not _HOST.fullmatch(host):
            return "/"
        return f"{scheme}://{host}{scope.get('root_path', '')}".rstrip("/") or "/"

    @functools.lru_cache(maxsize=16)  # noqa: B019 - one app per process; the cache is the point
    def _render(self, url: str, form: str) -> bytes:
        servers = [{"url": url}]
        spec = {key: servers if key == "servers" else value for key, value in self.spec.items()}
        spec.setdefault("servers", servers)
        if form == "json":
            return orjson.dumps(spec)
        return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).encode()
