"""Link-driven state: what one operation creates, the others can then find, until deleted.

The roles come from the spec's links. A link from operation A's response, filling parameter
`userId` of operation B with `$response.body#/userId`, makes A a creator of `userId`s and B a
reader of them. B deletes them when it is a DELETE, or when its operationId says so
(`...Delete...`/`...Remove...`), as POST-only surfaces such as Connect name their deletes.
The id is read from a path parameter, a query parameter or a top-level body field of the same
name, so REST routes and Connect routes (id in the JSON body) share one set of resources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mocks.contract import HTTP_METHODS, link_fields

_DELETE_NAME = re.compile(r"(?:^|[_.\-/])(?:Delete|Remove)|(?:delete|remove)[A-Z_]")
_POINTER = re.compile(r"^\$response\.body#(/.*)$")


@dataclass(frozen=True)
class Creates:
    """This operation's success response holds a new resource id at `pointer`."""

    kind: str
    pointer: tuple[str, ...]


@dataclass(frozen=True)
class Uses:
    """This operation acts on the resource whose id is in the request field `name`."""

    kind: str
    name: str
    deletes: bool


@dataclass(frozen=True)
class Roles:
    creates: Mapping[str, tuple[Creates, ...]]
    uses: Mapping[str, tuple[Uses, ...]]

    @property
    def empty(self) -> bool:
        return not self.creates and not self.uses


def roles_from_links(spec: dict) -> Roles:
    """Creators and users of resources, from every link in the spec."""
    methods = _methods_by_operation(spec)
    creates: dict[str, set[Creates]] = {}
    uses: dict[str, set[Uses]] = {}
    for source, operation in _operations(spec):
        for response in (operation.get("responses") or {}).values():
            for link in (response.get("links") or {}).values():
                target = link.get("operationId") or _operation_id_from_ref(spec, link.get("operationRef"))
                if target is None or target == source:
                    continue
                for name, expression in link_fields(link):
                    match = _POINTER.match(str(expression))
                    if not match:
                        continue
                    pointer = tuple(_unescape(token) for token in match.group(1).split("/")[1:])
                    kind = pointer[-1]
                    creates.setdefault(source, set()).add(Creates(kind, pointer))
                    deletes = methods.get(target) == "delete" or bool(_DELETE_NAME.search(target))
                    uses.setdefault(target, set()).add(Uses(kind, name, deletes))
    return Roles(
        {op: tuple(sorted(items, key=repr)) for op, items in creates.items()},
        {op: tuple(sorted(items, key=repr)) for op, items in uses.items()},
    )


def request_value(name: str, path_params: Mapping[str, Any], query: Mapping[str, Any], body: Any) -> Any:
    """The value of request field `name`: path parameter, query parameter or body field."""
    if name in path_params:
        return path_params[name]
    if name in query:
        return query[name]
    if isinstance(body, dict):
        return body.get(name)
    return None


@dataclass
class ResourceState:
    """Live and deleted ids by kind; a deleted id stays deleted (no resurrection)."""

    live: dict[str, set[str]] = field(default_factory=dict)
    deleted: dict[str, set[str]] = field(default_factory=dict)

    def exists(self, kind: str, resource_id: str) -> bool:
        return resource_id in self.live.get(kind, ())

    def known(self, kind: str, resource_id: str) -> bool:
        return self.exists(kind, resource_id) or resource_id in self.deleted.get(kind, ())

    def create(self, kind: str, resource_id: str) -> None:
        self.live.setdefault(kind, set()).add(resource_id)

    def delete(self, kind: str, resource_id: str) -> None:
        self.live.get(kind, set()).discard(resource_id)
        self.deleted.setdefault(kind, set()).add(resource_id)

    def clear(self) -> None:
        """Forget every id, as a fresh mock would."""
        self.live.clear()
        self.deleted.clear()


def _operations(spec: dict):
    for path, item in (spec.get("paths") or {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is not None:
                yield operation.get("operationId") or f"{method.upper()} {path}", operation


def _methods_by_operation(spec: dict) -> dict[str, str]:
    out = {}
    for path, item in (spec.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if method in item:
                out[item[method].get("operationId") or f"{method.upper()} {path}"] = method
    return out


def _operation_id_from_ref(spec: dict, ref: str | None) -> str | None:
    """`#/paths/~1v2~1users~1{userId}/get` → that operation's id."""
    if not ref or not ref.startswith("#/paths/"):
        return None
    tokens = [_unescape(token) for token in ref[len("#/paths/") :].split("/")]
    if len(tokens) != 2:
        return None
    path, method = tokens
    operation = ((spec.get("paths") or {}).get(path) or {}).get(method)
    return operation.get("operationId") or f"{method.upper()} {path}" if operation else None


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")
