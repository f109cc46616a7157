"""Recursive schemas, as a tree a compiled validator can take.

Connexion resolves every `$ref` in place (`connexion.json_schema.resolve_refs`), so a schema
that refers to itself (a folder holding folders) becomes a cyclic graph of dicts, and it
attaches all of `components` to each body schema. jsonschema-rs converts a schema into its
own form eagerly and stops on such a graph with "Recursion limit reached"; this turns the
cycles back into `$ref`s to `definitions`, which every draft resolves.
"""

from __future__ import annotations

from typing import Any

_DEFINITIONS = "x-pwreset-definitions"


def acyclic(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` without cycles (each node a cycle returns to becomes a definition,
    referred to by `$ref`) and without the `components` Connexion attached to it."""
    root = {key: value for key, value in schema.items() if key != "components"}
    targets = _cycle_targets(root)
    if not targets:
        return root
    names: dict[int, str] = {}
    definitions: dict[str, Any] = {}

    def copy(node: Any) -> Any:
        if isinstance(node, list):
            return [copy(item) for item in node]
        if not isinstance(node, dict):
            return node
        if id(node) in targets:
            name = names.get(id(node))
            if name is None:
                name = names[id(node)] = f"s{len(names)}"
                definitions[name] = {key: copy(value) for key, value in node.items()}
            return {"$ref": f"#/{_DEFINITIONS}/{name}"}
        return {key: copy(value) for key, value in node.items()}

    tree = copy(root)
    tree[_DEFINITIONS] = definitions
    return tree


def _cycle_targets(root: dict[str, Any]) -> set[int]:
    """Ids of the schemas some path of subschemas leads back to."""
    targets: set[int] = set()
    done: set[int] = set()
    on_path: set[int] = set()

    def visit(node: dict[str, Any]) -> None:
        key = id(node)
        if key in on_path:
            targets.add(key)
            return
        if key in done:
            return
        on_path.add(key)
        for child in _subschemas(node):
            visit(child)
        on_path.discard(key)
        done.add(key)

    visit(root)
    return targets


_ONE = (
    "items", "additionalItems", "additionalProperties", "not", "contains", "propertyNames",
    "if", "then", "else", "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_BY_NAME = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")


def _subschemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema[key] for key in _ONE if isinstance(schema.get(key), dict)]
    for key in _MANY:
        if isinstance(schema.get(key), list):
            found += [item for item in schema[key] if isinstance(item, dict)]
    for key in _BY_NAME:
        if isinstance(schema.get(key), dict):
            found += [item for item in schema[key].values() if isinstance(item, dict)]
    return found
