"""Documents split over files, and hot reload (`--watch`) of all of them.

`load_document` reads an OpenAPI document and every file it references through `$ref`
(`schemas/pet.yaml`, `common.yaml#/components/responses/NotFound`), and bundles them into one
dict: each referenced part is put under the root key `x-pwreset-bundled` and the `$ref`
rewritten to point there, so references between files (cycles too) stay references, and
Connexion, the mock and the proxy see one document. Remote (`http:`) references are refused.

`Watcher` waits for a change to any of those files (the watchfiles library: inotify and the
like, directories watched so editors' save-by-rename is seen) and hands the reloaded
document to `apply`; if reading it or `apply` fails, the last good document stays and the
reason is logged. `Watched` runs the watcher for the life of an ASGI app, beside whatever
else has to live as long (the mock's gRPC port).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import watchfiles
import yaml
from starlette.types import ASGIApp, Receive, Scope, Send

from pwreset.spec import unescape_pointer_token

logger = logging.getLogger("pwreset.watch")

BUNDLE_KEY = "x-pwreset-bundled"
DEBOUNCE_MS = 150


class DocumentError(ValueError):
    """The document or a file it references cannot be read; the message names the file and,
    for YAML, the line."""


@dataclass(frozen=True)
class Document:
    spec: dict[str, Any]
    files: frozenset[Path]  # the document and every file it references, resolved


def load_document(path: Path) -> Document:
    """The document at `path` with every file it references bundled in (see the module).

    Raises DocumentError for a file that cannot be read or parsed, a remote reference, or a
    reference to a place that does not exist."""
    return _Bundler(path.resolve()).run()


class _Bundler:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[Path, Any] = {}
        self.bundled: dict[str, Any] = {}
        self.keys: dict[tuple[Path, str], str] = {}

    def run(self) -> Document:
        spec = self._rewrite(self._file(self.root), self.root)
        if not isinstance(spec, dict):
            raise DocumentError(f"{self.root}: not an OpenAPI document (a mapping at the top)")
        if self.bundled:
            spec[BUNDLE_KEY] = self.bundled
        return Document(spec, frozenset(self.files))

    def _file(self, path: Path) -> Any:
        if path not in self.files:
            try:
                with path.open(encoding="utf-8") as handle:
                    self.files[path] = yaml.safe_load(handle)
            except OSError as exc:
                raise DocumentError(f"{path}: {exc.strerror or exc}") from None
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                problem = getattr(exc, "problem", None) or exc
                raise DocumentError(f"{path}{where}: not YAML: {problem}") from None
        return self.files[path]

    def _rewrite(self, node: Any, current: Path) -> Any:
        if isinstance(node, list):
            return [self._rewrite(item, current) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            return {**{k: v for k, v in node.items() if k != "$ref"}, "$ref": self._ref(ref, current)}
        return {key: self._rewrite(value, current) for key, value in node.items()}

    def _ref(self, ref: str, current: Path) -> str:
        location, _, fragment = ref.partition("#")
        if re.match(r"^[a-z][a-z0-9+.-]*://", location, re.IGNORECASE):
            raise DocumentError(f"{current}: remote reference {ref!r} is not supported; save it as a file")
        target = (current.parent / unquote(location)).resolve() if location else current
        if target == self.root:
            return f"#{fragment}"
        key = self.keys.get((target, fragment))
        if key is None:
            key = self.keys[(target, fragment)] = self._name(target, fragment)
            self.bundled[key] = None  # claimed before descending, so cycles end here
            part = _pointer(self._file(target), fragment, f"{target}#{fragment}")
            self.bundled[key] = self._rewrite(part, target)
        return f"#/{BUNDLE_KEY}/{key}"

    def _name(self, target: Path, fragment: str) -> str:
        """A readable key of letters, digits, `_`, `.` and `-` (Connexion's resolver does not
        unescape `~1` in pointers), unique in the bundle."""
        try:
            name = str(target.relative_to(self.root.parent))
        except ValueError:
            name = str(target)
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name + fragment).strip("_")
        key, count = base, 1
        while key in self.bundled:
            count += 1
            key = f"{base}_{count}"
        return key


def _pointer(document: Any, fragment: str, where: str) -> Any:
    node = document
    for token in [t for t in fragment.split("/") if t] if fragment else []:
        token = unescape_pointer_token(unquote(token))
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise DocumentError(f"{where}: no such place (at {token!r})")
    return node


class Watcher:
    """Reloads the document at `path` when it or a file it references changes, and gives it
    to `apply`, which raises if the document cannot serve (the last good one then stays)."""

    def __init__(
        self, path: Path, apply: Callable[[dict[str, Any]], Awaitable[None] | None], files: frozenset[Path]
    ) -> None:
        self.path = path
        self.apply = apply
        self.files = files
        self.reloads = 0

    async def reload(self) -> bool:
        """Read the document again and apply it; False (logged) when it is not good."""
        try:
            document = load_document(self.path)
            applied = self.apply(document.spec)
            if applied is not None:
                await applied
        except Exception as exc:
            logger.error(
                "%s changed but cannot be served, keeping the last good document: %s", self.path, exc
            )
            return False
        self.files = document.files
        self.reloads += 1
        count = len(self.files)
        logger.warning("%s reloaded (%d file%s)", self.path, count, "" if count == 1 else "s")
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set."""
        while not stop.is_set():
            directories = sorted({str(file.parent) for file in self.files})
            async for _changes in watchfiles.awatch(
                *directories,
                stop_event=stop,
                debounce=DEBOUNCE_MS,
                recursive=False,
                watch_filter=lambda _change, path: Path(path).resolve() in self.files,
            ):
                await self.reload()
                if sorted({str(file.parent) for file in self.files}) != directories:
                    break  # the document now spans other directories: watch those


class Watched:
    """An ASGI app that serves `app` and, for the life of the server (its lifespan), runs the
    watcher and keeps `contexts` entered."""

    def __init__(
        self,
        app: ASGIApp,
        watcher: Watcher | None,
        contexts: tuple[Callable[[], AbstractAsyncContextManager[Any]], ...] = (),
    ) -> None:
        self.app = app
        self.watcher = watcher
        self.contexts = contexts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        async with contextlib.AsyncExitStack() as stack:
            message = await receive()
            assert message["type"] == "lifespan.startup"
            try:
                for context in self.contexts:
                    await stack.enter_async_context(context())
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            stop = asyncio.Event()
            task = asyncio.create_task(self.watcher.run(stop)) if self.watcher else None
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            stop.set()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=5)
        await send({"type": "lifespan.shutdown.complete"})


class Swappable:
    """Serves `current`, which a reload replaces; requests under way finish on the old one."""

    def __init__(self, app: Any) -> None:
        self.current = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.current(scope, receive, send)


async def warm_up(app: ASGIApp) -> None:
    """Send `app` one request (to a path no document has), so that everything it builds on
    first use is built now; raises what building raises."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/__pwreset/warm-up",
        "raw_path": b"/__pwreset/warm-up",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    await app(scope, receive, send)
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    if start is None or start["status"] >= 500:
        raise RuntimeError(f"the new document's app answers {start['status'] if start else 'nothing'}")
