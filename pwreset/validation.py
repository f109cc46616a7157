"""Request and response validation through Connexion's `validator_map`, compiled once.

Connexion builds a new jsonschema validator for every request and response; the work is in
building it, not in validating. These validators compile each schema once (jsonschema-rs,
Draft 4 with formats, as Connexion uses) and keep it for the life of the app. Connexion still
decides what to validate; only how changes.

Request bodies are read as Zitadel reads them (`pwreset.protojson`) before they are
validated: the validators, the handlers and the mock all see the one canonical form, which
is passed on in place of the body sent. Error messages name the field and the rule it
breaks, never the value: a value may be a password.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jsonschema_rs
import orjson
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, NonConformingResponseBody
from connexion.validators import (
    VALIDATOR_MAP,
    AbstractRequestBodyValidator,
    FormDataValidator,
    JSONRequestBodyValidator,
    JSONResponseBodyValidator,
    ParameterValidator,
)
from starlette.datastructures import MutableHeaders
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import Receive, Scope

from pwreset.openapi_schema import Direction, to_json_schema
from pwreset.protojson import DecodeError, MessageDecoder, with_repeated_keys
from pwreset.spec import parse_json_body


class SchemaCache:
    """Compiled validators by schema object (the spec's schema dicts live as long as the app),
    each compiled from the schema's JSON Schema form (`pwreset.openapi_schema`): `nullable`,
    integer formats and `readOnly`/`writeOnly` as OpenAPI 3.0 means them."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[int, Direction], tuple[dict[str, Any], Any]] = {}
        self._decoders: dict[int, tuple[dict[str, Any], MessageDecoder]] = {}

    def first_error(
        self,
        schema: dict[str, Any],
        instance: Any,
        subject: str = "the request body",
        direction: Direction = Direction.REQUEST,
    ) -> str | None:
        """None when `instance` is valid, else what is wrong with it, said of `subject`
        (the field path is appended): the field and the rule, never the value."""
        key = (id(schema), direction)
        entry = self._compiled.get(key)
        if entry is None or entry[0] is not schema:
            compiled = jsonschema_rs.Draft4Validator(to_json_schema(schema, direction), validate_formats=True)
            entry = (schema, compiled)
            self._compiled[key] = entry
        validator = entry[1]
        if validator.is_valid(instance):
            return None
        return describe(next(iter(validator.iter_errors(instance))), subject)

    def decoder(self, schema: dict[str, Any]) -> MessageDecoder:
        """The protojson decoder of a request schema (Connexion attaches the components to
        it, so its `$ref`s resolve against itself)."""
        entry = self._decoders.get(id(schema))
        if entry is None or entry[0] is not schema:
            entry = (schema, MessageDecoder(schema))
            self._decoders[id(schema)] = entry
        return entry[1]


def describe(error: Any, subject: str) -> str:
    """A jsonschema-rs error in words built from its kind and location only: jsonschema
    messages quote the value, which may be a password or a code."""
    kind = error.kind
    if kind.name == "required":
        return f"{_where(subject, [*error.instance_path, kind.property])} is required"
    if kind.name == "anyOf":
        # `nullable` beside `allOf`/`$ref` (pwreset.openapi_schema): null or the schema;
        # what is wrong is what the schema says.
        branches = [errors for errors in kind.as_dict()["context"] if not _is_null_type(errors)]
        if len(branches) == 1 and branches[0]:
            return describe(branches[0][0], subject)
    return f"{_where(subject, error.instance_path)} {_rule(error)}"


def _is_null_type(errors: Sequence[Any]) -> bool:
    if len(errors) != 1 or errors[0].kind.name != "type":
        return False
    return bool(errors[0].kind.as_dict()["types"] == ["null"])


def _where(subject: str, path: Sequence[str | int]) -> str:
    fields = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    if not fields:
        return subject
    return fields[1:] if subject == "the request body" else f"{subject}{fields}"


_RULES: dict[str, Callable[[dict[str, Any]], str]] = {
    "type": lambda p: "must be of type " + " or ".join(p["types"]),
    "minLength": lambda p: f"must be at least {p['limit']} characters long",
    "maxLength": lambda p: f"must be at most {p['limit']} characters long",
    "pattern": lambda p: f"must match the pattern {p['pattern']}",
    "format": lambda p: f"must be a valid {p['format']}",
    "enum": lambda p: "must be one of " + ", ".join("null" if o is None else str(o) for o in p["options"]),
    "minimum": lambda p: f"must be at least {p['limit']}",
    "maximum": lambda p: f"must be at most {p['limit']}",
    "exclusiveMinimum": lambda p: f"must be more than {p['limit']}",
    "exclusiveMaximum": lambda p: f"must be less than {p['limit']}",
    "minItems": lambda p: f"must have at least {p['limit']} items",
    "maxItems": lambda p: f"must have at most {p['limit']} items",
    "minProperties": lambda p: f"must have at least {p['limit']} fields",
    "maxProperties": lambda p: f"must have at most {p['limit']} fields",
    "multipleOf": lambda p: f"must be a multiple of {p['multiple_of']}",
    "uniqueItems": lambda p: "must not repeat an item",
    "additionalProperties": lambda p: "must not have the fields " + ", ".join(map(str, p["unexpected"])),
    "not": lambda p: "is not allowed in this form",
    "falseSchema": lambda p: "is not allowed",
}


def _rule(error: Any) -> str:
    kind = error.kind
    if kind.name == "anyOf":
        # One rule per alternative when each fails on the value itself (`gender`: a name or
        # a number), else only that none fits.
        branches = kind.as_dict()["context"]
        here = list(error.instance_path)
        if all(errors and list(errors[0].instance_path) == here for errors in branches):
            rules = [_rule(errors[0]) for errors in branches]
            if "breaks" not in " ".join(rules):
                return ", or ".join(rules)
        return "does not match any of its allowed forms"
    rule = _RULES.get(kind.name)
    if rule is not None:
        return rule(kind.as_dict())
    keyword = error.schema_path[-1] if error.schema_path else kind.name
    return f"breaks the schema's `{keyword}` rule"


def _left_out(validator: Any, scope: Scope, *, default: bool = True) -> bool:
    """True for an optional body that was not sent (and, where `default`, whose schema has no
    `default` to stand for it): nothing to check. A required one missing is a 400."""
    length = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
    if length.strip() not in (b"", b"0"):
        return False
    if validator._required:
        raise BadRequestProblem("RequestBody is required")
    return not (default and "default" in validator._schema)


def _insert_json(validator: Any, receive: Receive, body: Any, scope: Scope) -> tuple[Receive, Scope]:
    """The channel and scope with `body` as the JSON request body. (Connexion's own re-encodes
    with `json`, and drops an absent body, which would leave the next app waiting on a
    channel already read.)"""
    payload = b"" if body is None else orjson.dumps(body)
    headers = [(name, value) for name, value in scope["headers"] if name != b"content-length"]
    headers.append((b"content-length", str(len(payload)).encode()))
    new_scope = {**scope, "headers": headers}
    message = {"type": "http.request", "body": payload, "more_body": False}
    return validator._insert_messages(receive, messages=[message]), new_scope


# Protocol Buffers' default recursion limit for decoding a message (Python's and C++'s).
MAX_JSON_DEPTH = 100


def nested_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value has arrays or objects nested more than `limit` levels
    (`{}` is one level). Walked level by level, without recursion: a body deeper than
    Python's recursion limit, or than orjson's for encoding (255), is refused before anything
    recurses into it."""
    level = [value]
    depth = 0
    while level:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = [item for c in containers for item in (c.values() if isinstance(c, dict) else c)]
    return False


class KnownMediaTypes(MediaTypeDict):  # type: ignore[misc]  # connexion ships no types
    """Connexion's `MediaTypeDict` that remembers what each media type matched: Connexion sorts
    the keys and tries them with `fnmatch` on every lookup, two or three per request. The
    keys are fixed once built; at most `LIMIT` media types are remembered (clients choose
    them). Raises `KeyError` for a media type no key matches, as Connexion's does."""

    LIMIT = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._matched: dict[str, Any] = {}

    def __getitem__(self, media_type: str) -> Any:
        try:
            return self._matched[media_type]
        except KeyError:
            value = super().__getitem__(media_type)
            if len(self._matched) < self.LIMIT:
                self._matched[media_type] = value
            return value


PROTOJSON_EXTENSION = "x-json-bodies"


def reads_protojson(spec: dict[str, Any]) -> bool:
    """Whether the document's JSON request bodies are read with protojson's rules: it says
    so with `x-json-bodies: protojson` at its top, as pwreset's own does."""
    return spec.get(PROTOJSON_EXTENSION) == "protojson"


def validator_map(cache: SchemaCache | None = None, *, protojson: bool = True) -> dict[str, Any]:
    """Connexion's validators with compiled schemas, for JSON, form and multipart bodies.

    With `protojson`, JSON bodies are decoded as protojson does (Zitadel's rules: pwreset's
    own spec) before they are checked; without, they are checked as sent, by the OpenAPI
    rules alone. Form and multipart bodies are decoded by their fields' schemas (Connexion's
    form parsing) and passed on as JSON, so what follows validation reads every body alike;
    a `text/plain` body is checked as one string. Other media types pass unchecked.
    An optional body may be left out, with or without a `Content-Type`: nothing is checked."""
    schemas = cache or SchemaCache()

    class RequestBody(JSONRequestBodyValidator):  # type: ignore[misc]  # connexion ships no types
        MUTABLE_VALIDATION = True  # what follows validation is the decoded body

        async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
            if _left_out(self, scope):
                return receive, scope
            wrapped: tuple[Receive, Scope] = await super().wrap_receive(receive, scope=scope)
            return wrapped

        async def _parse(self, stream: Any, scope: Any) -> Any:
            raw = b"".join([chunk async for chunk in stream])
            try:
                body = parse_json_body(raw)
            except orjson.JSONDecodeError as exc:
                raise BadRequestProblem(detail=f"body is not valid JSON: {exc}") from None
            if nested_too_deep(body):
                raise BadRequestProblem(detail=f"body is nested more than {MAX_JSON_DEPTH} levels deep")
            if not protojson:
                return body
            if isinstance(body, dict | list):
                body = with_repeated_keys(raw, body)
            try:
                return schemas.decoder(self._schema).decode(body)
            except DecodeError as exc:
                raise BadRequestProblem(detail=str(exc)) from None

        def _validate(self, body: Any) -> None:
            if not self._nullable and body is None:
                raise BadRequestProblem("Request body must not be empty")
            error = schemas.first_error(self._schema, body)
            if error is not None:
                raise BadRequestProblem(detail=error)

        def _insert_body(self, receive: Receive, *, body: Any, scope: Scope) -> tuple[Receive, Scope]:
            return _insert_json(self, receive, body, scope)

    class FormBody(FormDataValidator):  # type: ignore[misc]  # connexion ships no types
        MUTABLE_VALIDATION = True  # passed on as JSON

        async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
            if _left_out(self, scope, default=False):
                return receive, scope
            wrapped: tuple[Receive, Scope] = await super().wrap_receive(receive, scope=scope)
            return wrapped

        async def _parse(self, stream: Any, scope: Any) -> Any:
            try:
                return await super()._parse(stream, scope)
            except MultiPartException as exc:  # its texts name no value
                raise BadRequestProblem(detail=f"the request body is not valid: {exc}") from None

        def _validate(self, body: Any) -> None:
            if not isinstance(body, dict):
                raise BadRequestProblem("the request body must be a set of fields")
            error = schemas.first_error(self._schema, body)
            if error is not None:
                raise BadRequestProblem(detail=error)

        def _insert_body(self, receive: Receive, *, body: Any, scope: Scope) -> tuple[Receive, Scope]:
            receive, scope = _insert_json(self, receive, body, scope)
            MutableHeaders(scope=scope)["content-type"] = "application/json"
            return receive, scope

    class TextBody(AbstractRequestBodyValidator):  # type: ignore[misc]  # connexion ships no types
        """`text/plain`: the body is one string, checked against the schema as such."""

        async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
            if _left_out(self, scope, default=False):
                return receive, scope
            wrapped: tuple[Receive, Scope] = await super().wrap_receive(receive, scope=scope)
            return wrapped

        async def _parse(self, stream: Any, scope: Any) -> Any:
            raw = b"".join([chunk async for chunk in stream])
            try:
                return raw.decode(self._encoding)
            except (UnicodeDecodeError, LookupError):
                raise BadRequestProblem(detail=f"the request body is not {self._encoding} text") from None

        def _validate(self, body: Any) -> None:
            error = schemas.first_error(self._schema, body)
            if error is not None:
                raise BadRequestProblem(detail=error)

    class MultipartBody(FormBody):
        @property
        def _form_parser_cls(self) -> type:
            return MultiPartParser

    class ResponseBody(JSONResponseBodyValidator):  # type: ignore[misc]  # connexion ships no types
        def _parse(self, stream: Any) -> Any:
            try:
                return parse_json_body(b"".join(stream))
            except orjson.JSONDecodeError as exc:
                raise NonConformingResponseBody(str(exc)) from None

        def _validate(self, body: Any) -> None:
            error = schemas.first_error(self._schema, body, "the response body", Direction.RESPONSE)
            if error is not None:
                raise NonConformingResponseBody(
                    detail=f"Response body does not conform to specification. {error}"
                )

    class Parameters(ParameterValidator):  # type: ignore[misc]  # connexion ships no types
        def validate_parameter(
            self, parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
        ) -> str | None:
            if value is None:
                if param.get("required"):
                    return f"Missing {parameter_type} parameter '{param['name']}'"
                return None
            subject = f"{parameter_type} parameter {param['name']}"
            return schemas.first_error(param.get("schema", param), value, subject)

    body = KnownMediaTypes(
        {
            **VALIDATOR_MAP["body"],
            "*/*json": RequestBody,
            "application/x-www-form-urlencoded": FormBody,
            "multipart/form-data": MultipartBody,
            "text/plain": TextBody,
        }
    )
    response = KnownMediaTypes({**VALIDATOR_MAP["response"], "*/*json": ResponseBody})
    return {"parameter": Parameters, "body": body, "response": response}
