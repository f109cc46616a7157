"""Request and response validation through Connexion's `validator_map`, compiled once.

Connexion builds a new jsonschema validator for every request and response; the work is in
building it, not in validating. These validators compile each schema once (jsonschema-rs,
Draft 4 with formats, as Connexion uses) and keep it for the life of the app. Connexion still
decides what to validate; only how changes.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import orjson
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, NonConformingResponseBody
from connexion.validators import (
    VALIDATOR_MAP,
    JSONRequestBodyValidator,
    JSONResponseBodyValidator,
    ParameterValidator,
)


class SchemaCache:
    """Compiled validators by schema object (the spec's schema dicts live as long as the app)."""

    def __init__(self) -> None:
        self._compiled: dict[int, tuple[dict, Any]] = {}

    def first_error(self, schema: dict, instance: Any) -> str | None:
        entry = self._compiled.get(id(schema))
        if entry is None or entry[0] is not schema:
            entry = (schema, jsonschema_rs.Draft4Validator(schema, validate_formats=True))
            self._compiled[id(schema)] = entry
        validator = entry[1]
        if validator.is_valid(instance):
            return None
        error = next(iter(validator.iter_errors(instance)))
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
        return f"{error.message} at {path[1:]}" if path else error.message


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    return orjson.loads(body)


def validator_map(cache: SchemaCache | None = None) -> dict:
    """Connexion's default validators, with JSON bodies checked by compiled schemas."""
    cache = cache or SchemaCache()

    class RequestBody(JSONRequestBodyValidator):
        async def _parse(self, stream: Any, scope: Any) -> Any:
            try:
                return _parse_json(b"".join([chunk async for chunk in stream]))
            except orjson.JSONDecodeError as exc:
                raise BadRequestProblem(detail=f"body is not valid JSON: {exc}") from None

        def _validate(self, body: Any) -> None:
            if not self._nullable and body is None:
                raise BadRequestProblem("Request body must not be empty")
            error = cache.first_error(self._schema, body)
            if error is not None:
                raise BadRequestProblem(detail=error)

    class ResponseBody(JSONResponseBodyValidator):
        def _parse(self, stream: Any) -> Any:
            try:
                return _parse_json(b"".join(stream))
            except orjson.JSONDecodeError as exc:
                raise NonConformingResponseBody(str(exc)) from None

        def _validate(self, body: Any) -> None:
            error = cache.first_error(self._schema, body)
            if error is not None:
                raise NonConformingResponseBody(
                    detail=f"Response body does not conform to specification. {error}"
                )

    class Parameters(ParameterValidator):
        def validate_parameter(  # type: ignore[override]
            self, parameter_type: str, value: Any, param: dict, param_name: str | None = None
        ) -> str | None:
            if value is None:
                if param.get("required"):
                    return f"Missing {parameter_type} parameter '{param['name']}'"
                return None
            error = cache.first_error(param.get("schema", param), value)
            return f"{parameter_type} parameter '{param['name']}': {error}" if error else None

    body = MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": RequestBody})
    response = MediaTypeDict({**VALIDATOR_MAP["response"], "*/*json": ResponseBody})
    return {"parameter": Parameters, "body": body, "response": response}
