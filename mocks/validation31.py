"""Request validation of OpenAPI 3.1 documents as JSON Schema 2020-12.

Connexion routes, decodes and validates by the 3.0 view of a 3.1 document
(`mocks.openapi31.connexion_view`); each parameter and body schema of that view says where its
original is (`x-pwreset-source`, a JSON pointer into the document). These validators, made
from pwreset's own (`pwreset.validation.validator_map`), check the decoded value against the
original instead, with jsonschema-rs' Draft 2020-12 validator: `prefixItems`, `if`/`then`,
`dependentRequired`, `unevaluatedProperties` and the rest hold for requests too. Each
validator is compiled once, over the whole document, so its `$ref`s (and `$defs`) resolve as
written, recursion included. Error messages are pwreset's (`pwreset.validation.describe`):
field and rule, never the value.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem

from mocks.openapi31 import SOURCE_KEY
from pwreset.validation import describe, validator_map


class DocumentSchemas:
    """Draft 2020-12 validators of the schemas at JSON pointers of one document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._root = {key: value for key, value in spec.items() if key != "$ref"}
        self._compiled: dict[str, Any] = {}

    def validator(self, where: str) -> Any:
        """The compiled validator of the schema at `where`; None when it cannot be compiled
        (a `$ref` outside the document), and then the view's validation stands."""
        if where not in self._compiled:
            schema = {**self._root, "$ref": f"#{where}"}
            try:
                self._compiled[where] = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
            except (ValueError, jsonschema_rs.ReferencingError):
                self._compiled[where] = None
        return self._compiled[where]


def _first_error(validator: Any, instance: Any, subject: str) -> str | None:
    if validator.is_valid(instance):
        return None
    return describe(next(iter(validator.iter_errors(instance))), subject)


def validator_map_31(spec: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """`base` (pwreset's validators, `validator_map()` by default), with JSON bodies and
    parameters checked as 2020-12 against `spec` wherever the view marks a schema's source."""
    schemas = DocumentSchemas(spec)
    base = base or validator_map()
    json_body = base["body"]["*/*json"]
    parameters = base["parameter"]

    class RequestBody(json_body):  # type: ignore[misc,valid-type]
        def _validate(self, body: Any) -> None:
            validator = schemas.validator(self._schema[SOURCE_KEY]) if SOURCE_KEY in self._schema else None
            if validator is None:
                super()._validate(body)
                return None
            if not self._nullable and body is None:
                raise BadRequestProblem("Request body must not be empty")
            error = _first_error(validator, body, "the request body")
            if error is not None:
                raise BadRequestProblem(detail=error)
            return None

    class Parameters(parameters):  # type: ignore[misc,valid-type]
        def validate_parameter(
            self, parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
        ) -> str | None:
            where = (param.get("schema") or {}).get(SOURCE_KEY)
            validator = schemas.validator(where) if where is not None and value is not None else None
            if validator is None:
                error: str | None = super().validate_parameter(parameter_type, value, param, param_name)
                return error
            return _first_error(validator, value, f"{parameter_type} parameter {param['name']}")

    body = MediaTypeDict({**base["body"], "*/*json": RequestBody})
    return {**base, "parameter": Parameters, "body": body}
