"""Which path template a request path matches, by the OpenAPI Paths Object's rule: "concrete
(non-templated) paths are matched before their templated counterparts".

Connexion hands the spec's paths to Starlette's router in document order, and Starlette takes
the first template that matches with the request's method. A document that declares
`/queues/{id}` before `/queues/statistics` would send every `GET /queues/statistics` to the
first; one with `POST /files/{file_id}` (JSON) before `POST /files/content` (a multipart
upload) would refuse every upload with 415. `by_specificity` puts the paths in matching order
once, before Connexion sees them; `RouteTable` answers `Allow` by the same order.
"""

from __future__ import annotations

import re
from typing import Any

from pwreset.spec import allow_header, allowed_methods, base_path

_PARAMETER = re.compile(r"\{[^/{}]+\}")


def specificity(template: str) -> tuple[int, ...]:
    """A sort key, segment by segment from the left: 0 for a fixed segment, 1 for one partly
    templated (`{name}.json`), 2 for a whole parameter (`{id}`). Of two templates that match
    one path, the smaller key is the more concrete."""
    key = []
    for segment in template.strip("/").split("/"):
        if not _PARAMETER.search(segment):
            key.append(0)
        elif _PARAMETER.fullmatch(segment):
            key.append(2)
        else:
            key.append(1)
    return tuple(key)


def by_specificity(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with its `paths` in matching order: each template before every less concrete one
    that can match the same paths, document order otherwise (so a document without such
    pairs keeps its order, and its routing its cost). A shallow copy sharing every path item;
    `spec` itself when nothing moves."""
    paths = spec.get("paths") or {}
    templates = list(paths)
    keys = [specificity(template) for template in templates]
    # must_follow[j]: the templates that have to come before template j
    must_follow: list[set[int]] = [set() for _ in templates]
    for j, later in enumerate(templates):
        for i, earlier in enumerate(templates):
            if keys[i] < keys[j] and len(keys[i]) == len(keys[j]) and _may_overlap(earlier, later):
                must_follow[j].add(i)
    placed: set[int] = set()
    ordered: list[int] = []
    while len(ordered) < len(templates):  # the first in document order whose betters are placed
        j = next(j for j in range(len(templates)) if j not in placed and must_follow[j] <= placed)
        ordered.append(j)
        placed.add(j)
    if ordered == list(range(len(templates))):
        return spec
    return {**spec, "paths": {templates[j]: paths[templates[j]] for j in ordered}}


def _may_overlap(first: str, second: str) -> bool:
    """Whether some path can match both templates: as many segments, and no two fixed ones
    that differ (a partly templated segment is taken to match anything)."""
    a, b = first.strip("/").split("/"), second.strip("/").split("/")
    if len(a) != len(b):
        return False
    return all(x == y or _PARAMETER.search(x) or _PARAMETER.search(y) for x, y in zip(a, b, strict=True))


class RouteTable:
    """The spec's path templates as regular expressions, in matching order, compiled once."""

    def __init__(self, spec: dict[str, Any]) -> None:
        prefix = base_path(spec)
        self._routes: list[tuple[re.Pattern[str], tuple[str, ...]]] = []
        for template, item in by_specificity(spec).get("paths", {}).items():
            methods = allowed_methods(item)
            parts = re.split(r"(\{[^/{}]+\})", prefix + template)
            pattern = "".join("[^/]+" if _PARAMETER.fullmatch(part) else re.escape(part) for part in parts)
            self._routes.append((re.compile(pattern), methods))

    def allow(self, path: str) -> str | None:
        """The `Allow` value for `path` (None when no template matches it): the methods of the
        most concrete template matching it (`pwreset.spec.allowed_methods`).
        (A method only a less concrete template has is still routed there, as Starlette and
        Zitadel's gateway do, but the resource `path` names is the concrete one.)"""
        for pattern, methods in self._routes:
            if pattern.fullmatch(path):
                return allow_header(methods)
        return None
