"""Credentials in query strings are refused.

A URL is written down where a header is not: access logs, proxy logs, browser history,
`Referer` headers. Zitadel reads tokens from the `Authorization` header only, and RFC 6750
(§2.3, §5.3) advises against `?access_token=`. So a request whose query string carries a
credential is answered 401 `PWRESET-QueryToken` before it is routed, authenticated or
logged by the app, even when it also has a valid `Authorization` header: that token has
leaked, and its client must hear of it rather than have it work.

A query parameter (pairs split at `&` or `;`, percent-decoded) is a credential when its name
is one of `CREDENTIAL_NAMES` (without regard to case, `-` and `.` read as `_`), when its name
or value contains `pwr_` in any case (every pwreset token starts so), when its value holds a
`Bearer` or `Basic` credential, or when its name or value, without surrounding spaces and
quotes, is one of `known_tokens` (the mock's tokens, which may look like anything).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from pwreset import errors
from pwreset.auth import TOKEN_PREFIX
from pwreset.spec import resolve_ref

CREDENTIAL_NAMES = frozenset(
    {
        "access_token",  # RFC 6750 §2.3
        "token",
        "bearer",
        "bearer_token",
        "auth",
        "auth_token",
        "authorization",
        "api_key",
        "apikey",
        "id_token",
        "refresh_token",
        "jwt",
    }
)
QUERY_TOKEN_ERROR_ID = "PWRESET-QueryToken"
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s")
_QUOTES_AND_SPACE = " \t\r\n\"'\x00"


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


class RefuseQueryCredentials:
    """Answers 401 to a request with a credential in its query string (see the module).
    `allowed_names` are parameters a mocked spec declares itself (a query API key): those
    are passed on, as that spec asks."""

    def __init__(
        self, app: ASGIApp, *, allowed_names: Iterable[str] = (), known_tokens: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.names = CREDENTIAL_NAMES - {_normal(name) for name in allowed_names}
        self.allowed = frozenset(allowed_names)
        self.known_tokens = frozenset(known_tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string") if scope["type"] == "http" else None
        if query and self.carries_credential(query):
            await _send_refusal(scope["path"], send)
            return
        await self.app(scope, receive, send)

    def carries_credential(self, query: bytes) -> bool:
        for part in re.split("[&;]", query.decode("latin-1")):
            raw_name, _, raw_value = part.partition("=")
            name, value = unquote_plus(raw_name), unquote_plus(raw_value)
            if name in self.allowed:
                continue
            if (
                _normal(name.strip(_QUOTES_AND_SPACE)) in self.names
                or TOKEN_PREFIX in f"{name}={value}".lower()
                or _SCHEME_CREDENTIAL.search(value)
                or name.strip(_QUOTES_AND_SPACE) in self.known_tokens
                or value.strip(_QUOTES_AND_SPACE) in self.known_tokens
            ):
                return True
        return False


async def _send_refusal(path: str, send: Send) -> None:
    error = errors.unauthenticated(
        QUERY_TOKEN_ERROR_ID, "credentials are not accepted in the URL: send the Authorization header"
    )
    status, body, _ = errors.render(error, path)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def declared_query_names(spec: Mapping[str, Any]) -> set[str]:
    """Names a spec itself puts in query strings: query parameters and query API keys."""
    names = set()
    schemes = spec.get("components", {}).get("securitySchemes", {}) or {}
    for scheme in schemes.values():
        if isinstance(scheme, dict) and scheme.get("type") == "apiKey" and scheme.get("in") == "query":
            names.add(scheme.get("name", ""))
    for item in (spec.get("paths") or {}).values():
        if not isinstance(item, dict):
            continue
        operations = [item, *(op for op in item.values() if isinstance(op, dict))]
        for operation in operations:
            for parameter in operation.get("parameters", []) or []:
                parameter = resolve_ref(spec, parameter)
                if isinstance(parameter, dict) and parameter.get("in") == "query":
                    names.add(parameter.get("name", ""))
    names.discard("")
    return names
