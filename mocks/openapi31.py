"""OpenAPI 3.1 documents, served through Connexion 3, which reads only 3.0.

Where Connexion 3.3 stops on a 3.1 document:
- `connexion.spec.Specification._validate_spec` checks every document against its bundled
  `resources/schemas/v3.0/schema.json`: `openapi: 3.1.0` fails its pattern
  `^3\\.0\\.\\d(-.+)?$`, and the Schema Object there (`additionalProperties: false`) refuses
  JSON Schema 2020-12's `type` arrays, `const`, `examples` and `$defs`. `from_dict` picks
  the specification class itself, so no subclass can be handed in.
- `connexion.utils.coerce_type` reads `type` as one string: for `type: [integer, "null"]`
  it raises TypeError inside, leaves `?limit=5` as the text "5", and validation then refuses
  it; `connexion.utils.is_nullable` knows only `nullable`/`x-nullable`.

So Connexion is given a 3.0 view of the document (`connexion_view`), which routes, coerces
and validates alike: a `type` array with `null` becomes the type and `nullable: true`, more
than one type an `anyOf`, `const` a one-value `enum`, numeric `exclusiveMinimum`/`Maximum`
3.0's `minimum` + `exclusiveMinimum: true`, `examples` the first `example`, `$defs` `x-defs`
(with the `$ref`s into them), and 3.1-only document fields (`webhooks`,
`jsonSchemaDialect`, `info.summary`, `license.identifier`) are left out. Keywords 2020-12
has and 3.0 lacks (`prefixItems`, `if`/`then`/`else`, `dependentRequired`,
`unevaluatedProperties`, `contains`, `patternProperties`, `propertyNames`) are dropped from
the view; Connexion's own checks see the view, but requests are validated against the
document's own schemas as 2020-12 (`mocks.validation31`, led there by `x-pwreset-source`).
Examples are checked and data generated from the document itself, as 2020-12
(`mocks.contract`), and /openapi.json serves the document as it was written
(`mocks.document`).
"""

from __future__ import annotations

from typing import Any

from pwreset.spec import escape_pointer_token

_SCHEMA_30_KEYS = frozenset(
    (
        *("title", "description", "format", "default", "example", "externalDocs", "deprecated", "xml"),
        *("multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
        *("maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems"),
        *("maxProperties", "minProperties", "required", "enum", "type", "not", "allOf", "oneOf"),
        *("anyOf", "items", "properties", "additionalProperties", "nullable", "discriminator"),
        *("readOnly", "writeOnly", "$ref"),
    )
)
_SCHEMA_LISTS = ("allOf", "oneOf", "anyOf")
SOURCE_KEY = "x-pwreset-source"  # in the view: where in the document the 2020-12 schema is
_SCHEMA_ONE = ("not", "items", "additionalProperties")


def is_openapi_31(spec: dict[str, Any]) -> bool:
    """Whether `spec` says it is OpenAPI 3.1 (its `openapi` field)."""
    return str(spec.get("openapi", "")).startswith("3.1")


def connexion_view(spec: dict[str, Any]) -> dict[str, Any]:
    """The document as Connexion 3 can take it: `spec` itself for 3.0, else its 3.0 view."""
    if not is_openapi_31(spec):
        return spec
    view: dict[str, Any] = _document(spec)
    view["openapi"] = "3.0.3"
    for field in ("webhooks", "jsonSchemaDialect"):
        view.pop(field, None)
    view.setdefault("paths", {})
    info = view.get("info")
    if isinstance(info, dict):
        info = view["info"] = {k: v for k, v in info.items() if k != "summary"}
        if isinstance(info.get("license"), dict):
            info["license"] = {k: v for k, v in info["license"].items() if k != "identifier"}
    components = view.get("components")
    if isinstance(components, dict):
        components.pop("pathItems", None)
        schemas = components.get("schemas")
        if isinstance(schemas, dict):
            components["schemas"] = {
                name: _marked(schema_30(sub), f"/components/schemas/{escape_pointer_token(name)}")
                for name, sub in schemas.items()
            }
    return view


def _document(node: Any, where: str = "") -> Any:
    """Walks the document's own structure, turning each `schema` it holds to 3.0, marked
    with where the original is (`SOURCE_KEY`, a JSON pointer)."""
    if isinstance(node, list):
        return [_document(item, f"{where}/{index}") for index, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        here = f"{where}/{escape_pointer_token(key)}"
        if key in ("example", "examples") and not isinstance(value, list):
            out[key] = value  # example values are data, not document
        elif key == "schema":
            out[key] = _marked(schema_30(value), here)
        elif key == "$ref" and isinstance(value, str):
            out[key] = _ref_30(value)
        else:
            out[key] = _document(value, here)
    return out


def _marked(schema: Any, where: str) -> Any:
    return {**schema, SOURCE_KEY: where} if isinstance(schema, dict) else schema


def schema_30(schema: Any) -> Any:
    """One JSON Schema 2020-12 schema as an OpenAPI 3.0 Schema Object (see the module doc)."""
    if schema is True:
        return {}
    if schema is False:
        return {"not": {}}
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-"):
            out[key] = value
        elif key == "$defs" and isinstance(value, dict):
            out["x-defs"] = {name: schema_30(sub) for name, sub in value.items()}
        elif key == "$ref" and isinstance(value, str):
            out[key] = _ref_30(value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: schema_30(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [schema_30(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            keep = key == "additionalProperties" and isinstance(value, bool)
            out[key] = value if keep else schema_30(value)
        elif key in _SCHEMA_30_KEYS and key not in ("type", "exclusiveMinimum", "exclusiveMaximum"):
            out[key] = value
    if "const" in schema:
        out["enum"] = [schema["const"]]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and "example" not in out:
        out["example"] = examples[0]
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        bound = schema.get(exclusive)
        if isinstance(bound, bool):
            out[exclusive] = bound
        elif isinstance(bound, int | float):
            current = schema.get(inclusive)
            tighter = current is None or (bound >= current if inclusive == "minimum" else bound <= current)
            if tighter:
                out[inclusive], out[exclusive] = bound, True
    _type_30(schema.get("type"), out)
    return out


def _type_30(declared: Any, out: dict[str, Any]) -> None:
    if declared is None:
        return
    kinds = declared if isinstance(declared, list) else [declared]
    concrete = [kind for kind in kinds if kind != "null"]
    if "null" in kinds:
        out["nullable"] = True
    if len(concrete) == 1:
        out["type"] = concrete[0]
    elif not concrete:
        out["enum"] = [None]
    else:
        branches = [{"type": kind} for kind in concrete]
        if "anyOf" in out:
            out["allOf"] = [*out.get("allOf", []), {"anyOf": branches}]
        else:
            out["anyOf"] = branches


def _ref_30(reference: str) -> str:
    return reference.replace("/$defs/", "/x-defs/")
