"""Examples in their wire form, decoded as a request's values are before they are checked.

A query example `'true'` for a boolean, `'a,b'` for a comma-separated array, or a form body
example `{Available: 'true'}` is what a client sends; Connexion decodes the same text of a
request by the parameter's `style` and `explode` (OpenAPI 3.0 §4.7.12.4, "Style Values") and
the form's `encoding`, then checks it. These functions hand an example's text to the same
Connexion parser (`connexion.uri_parsing.OpenAPIURIParser`, `connexion.utils.coerce_type`),
so an example is judged exactly as the request it stands for would be.
"""

from __future__ import annotations

from typing import Any

from connexion.exceptions import TypeValidationError
from connexion.uri_parsing import OpenAPIURIParser
from connexion.utils import coerce_type

FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def parameter_value(parameter: dict[str, Any], example: Any) -> Any:
    """`example` of `parameter` as the request's value would be decoded; values that are not
    text (already typed in the document) are taken as they are."""
    schema = coercion_schema(parameter.get("schema") or {})
    if not isinstance(example, str) or _is_text(schema):
        return example
    parameter = {**parameter, "schema": schema}
    name = parameter.get("name", "")
    location = parameter.get("in")
    try:
        if location == "query":
            return OpenAPIURIParser([parameter], {}).resolve_query({name: [example]})[name]
        if location == "path":
            return OpenAPIURIParser([parameter], {}).resolve_path({name: example})[name]
        if location == "cookie" and schema.get("type") == "array":
            return coerce_type(parameter, example.split(","), "cookie", name)
        return coerce_type(parameter, example, location or "header", name)
    except (TypeValidationError, ValueError, TypeError, AttributeError, KeyError):
        return example


def form_value(media: dict[str, Any], example: Any) -> Any:
    """A form body example (`application/x-www-form-urlencoded`, `multipart/form-data`) with
    its text fields decoded by the body schema and the media type's `encoding`."""
    schema = coercion_schema(media.get("schema") or {})
    if not isinstance(example, dict) or schema.get("type") != "object":
        return example
    schema = {
        **schema,
        "properties": {k: coercion_schema(v) for k, v in (schema.get("properties") or {}).items()},
    }
    text = {key: [value] for key, value in example.items() if isinstance(value, str)}
    parser = OpenAPIURIParser([], {"schema": schema, "encoding": media.get("encoding") or {}})
    try:
        decoded = parser.resolve_form(text)
    except (TypeValidationError, ValueError, TypeError, AttributeError, KeyError):
        return example
    return {**example, **decoded}


def coercion_schema(schema: Any) -> dict[str, Any]:
    """The schema as Connexion's coercion reads it: one `type` (3.1's `[integer, "null"]`
    becomes `integer`, nullable), for the schema and its array items."""
    if not isinstance(schema, dict):
        return {}
    declared = schema.get("type")
    if isinstance(declared, list):
        concrete = [kind for kind in declared if kind != "null"]
        schema = {**schema, "type": concrete[0] if concrete else "string"}
        if "null" in declared:
            schema["nullable"] = True
    if isinstance(schema.get("items"), dict):
        schema = {**schema, "items": coercion_schema(schema["items"])}
    coercible: dict[str, Any] = schema
    return coercible


def _is_text(schema: dict[str, Any]) -> bool:
    return schema.get("type") in (None, "string") and "items" not in schema and "properties" not in schema
