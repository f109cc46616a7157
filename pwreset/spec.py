"""The OpenAPI contract, loaded once as a dict, and the helpers that read any OpenAPI document.

Connexion renders spec *files* through Jinja2, which breaks on Zitadel's own URL-template
examples (`{{.UserID}}`); a dict is used as it is. The helpers below (the HTTP methods, the
operations, `$ref` and JSON pointer resolution, `Allow`, reading a JSON body) serve the real
server, the mock, the proxy and the contract kit alike: one copy of each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml
from starlette.types import Receive

SPEC_PATH = Path(__file__).resolve().parent / "openapi.yaml"


@cache
def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


def load_spec(path: Path | None = None) -> dict[str, Any]:
    """The parsed spec; a fresh deep copy is not needed, callers treat it as read-only."""
    return _load((path or SPEC_PATH).resolve())


# --- reading any OpenAPI document (ours, or one the mock serves) --------------------------

# The operations of a Path Item Object, in the order `Allow` names them.
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# How many `$ref`s in a row `resolve_ref` follows before taking the chain for a cycle.
MAX_REF_CHAIN = 32


def operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Each operation of a document as (path template, method, Operation Object), in document
    order; path items and operations that are not objects are skipped."""
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, Mapping):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                yield path, method, operation


def operation_name(path: str, method: str, operation: Mapping[str, Any]) -> str:
    """The operation's `operationId`, or `METHOD /path` for one without."""
    return str(operation.get("operationId") or f"{method.upper()} {path}")


def base_path(spec: Mapping[str, Any]) -> str:
    """The path of the first server's URL, as Connexion mounts the API under it ('' for `/`)."""
    servers = spec.get("servers") or [{"url": "/"}]
    return urlsplit(str(servers[0].get("url", "/"))).path.rstrip("/")


def escape_pointer_token(token: Any) -> str:
    """One JSON pointer reference token (RFC 6901, 3): `~` as `~0`, `/` as `~1`."""
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape_pointer_token(token: str) -> str:
    """The key a JSON pointer reference token names (RFC 6901, 4): `~1` is `/`, `~0` is `~`."""
    return token.replace("~1", "/").replace("~0", "~")


def json_pointer(document: Any, pointer: str) -> Any:
    """The value `pointer` (`/a/0/b~1c`, RFC 6901) names in `document`; list items by index.

    Raises KeyError, IndexError, ValueError or TypeError when there is none."""
    node = document
    for token in [t for t in pointer.split("/") if t]:
        token = unescape_pointer_token(token)
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def resolve_ref(root: Mapping[str, Any], node: Any) -> Any:
    """`node` with its chain of local `$ref`s (`#/components/schemas/User`) followed into
    `root`; `node` itself when it is no reference. A remote, missing or circular reference
    (a chain longer than `MAX_REF_CHAIN`) resolves to `{}`: nothing to read by."""
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or seen > MAX_REF_CHAIN:
            return {}
        target: Any = root
        for token in ref[2:].split("/"):
            token = unescape_pointer_token(token)
            if not isinstance(target, Mapping) or token not in target:
                return {}
            target = target[token]
        node = target
        seen += 1
    return node


def allowed_methods(item: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The methods a Path Item Object serves, upper case, with HEAD where GET is served (as
    Starlette answers HEAD with GET's handler)."""
    methods = tuple(method.upper() for method in HTTP_METHODS if method in (item or {}))
    return (*methods, "HEAD") if "GET" in methods and "HEAD" not in methods else methods


def allow_header(methods: Iterable[str]) -> str:
    """The `Allow` header's value (RFC 9110, 10.2.1) for these methods."""
    return ", ".join(methods)


class BodyTooLarge(Exception):
    """A request body is over the size `read_body` was given."""


async def read_body(receive: Receive, max_bytes: int | None = None) -> bytes:
    """A request's whole body, read from the ASGI channel (what came before a disconnect).
    Raises `BodyTooLarge` as soon as it is over `max_bytes` (None: no limit)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise BodyTooLarge(f"the body is over {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def parse_json_body(raw: bytes) -> Any:
    """A JSON request body; None for an empty one. Raises `orjson.JSONDecodeError`."""
    return orjson.loads(raw) if raw else None


async def read_json_body(receive: Receive) -> Any:
    """A request's whole body, parsed as JSON (None when empty). Raises
    `orjson.JSONDecodeError`."""
    return parse_json_body(await read_body(receive))
