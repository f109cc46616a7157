"""Schemathesis hooks that keep every request to reserved, undeliverable contact data.

Imported by the kit (`contract_tests.suite`) and named by the repository's
`schemathesis.toml` (`hooks = "contract_tests.hooks"`), so a stock `schemathesis run` gets
them too. Registering is global in Schemathesis (its format registry and hook dispatcher
belong to the process), which is what makes the guard hold for every phase, current or new:

- `format: email` and `idn-email` are generated under `example.com`/`.org`/`.net`;
- `format: phone` is generated from the fictional ranges; the kit gives that format to the
  string properties named like a phone number (`phone`, `mobile`, ...) in its own copy of the
  spec (`annotate_phone_properties`), the guard below covers every other way;
- last, before every request is sent (`Case.call`, which every phase and the kit's own
  reachers and read-back go through), its body and query are rewritten with
  `contract_tests.reserved.reserve`, and a request still holding an address that is not
  reserved is refused with `UnreservedContactData`; and a key that repeats a sibling field
  under its proto name is dropped (`drop_second_spellings`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import schemathesis
from schemathesis.core import NOT_SET

from contract_tests.reserved import PHONE_KEY, fictional_phones, reserve, reserved_emails, unreserved

PHONE_FORMAT = "phone"


class UnreservedContactData(RuntimeError):
    """A request about to be sent still names a real address, number or link host."""


for _name in ("email", "idn-email"):
    schemathesis.openapi.format(_name, reserved_emails())
schemathesis.openapi.format(PHONE_FORMAT, fictional_phones())


def annotate_phone_properties(node: Any) -> None:
    """Give every string property named like a phone number, and without a format, `format:
    phone`, in place, throughout a document (a copy: the spec the server serves stays as it is)."""
    if isinstance(node, list):
        for item in node:
            annotate_phone_properties(item)
        return
    if not isinstance(node, dict):
        return
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        for name, schema in properties.items():
            if (
                isinstance(name, str)
                and PHONE_KEY.search(name)
                and isinstance(schema, dict)
                and schema.get("type") == "string"
                and "format" not in schema
                and "enum" not in schema
            ):
                schema["format"] = PHONE_FORMAT
    for value in node.values():
        annotate_phone_properties(value)


def guard(case: Any) -> None:
    """Rewrite a case's body and query to reserved contact data; raise
    `UnreservedContactData` if any remains (which would be a defect of `reserve`)."""
    for attribute in ("body", "query"):
        value = getattr(case, attribute, None)
        if isinstance(value, bytes):
            # A binary body (application/proto, or one generated as bytes) is read byte for
            # byte as text: the rewrite is ASCII, so it goes back as the same kind of bytes.
            text = reserve(value.decode("latin-1"))
            reserved: Any = text.encode("latin-1")
        elif value is None or value is NOT_SET or not isinstance(value, dict | list | str):
            continue
        else:
            reserved = text = reserve(value)
        if reserved != value:
            setattr(case, attribute, reserved)
        left = list(unreserved(text))
        if left:
            raise UnreservedContactData(
                f"refusing to send {case.method} {case.path}: its {attribute} names " + "; ".join(left)
            )


def drop_second_spellings(value: Any) -> Any:
    """`value` without the keys that repeat a sibling field under its proto name
    (`user_id` beside `userId`), at any depth.

    A generator that adds "unknown" properties to an open object may hit a known field's proto
    name. protojson, which Zitadel and pwreset decode with, reads both spellings as one field
    and refuses a field given twice (400); OpenAPI 3.0 cannot say so, so such a body is
    schema-valid and refused. Dropping the second spelling keeps ST202 about real rejections.
    """
    if isinstance(value, list):
        return [drop_second_spellings(item) for item in value]
    if not isinstance(value, dict):
        return value
    names = {_snake(name) for name in value if isinstance(name, str) and _snake(name) != name}
    return {name: drop_second_spellings(item) for name, item in value.items() if name not in names}


def _snake(name: str) -> str:
    return _CAMEL_HUMP.sub("_", name).lower()


_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    body = getattr(case, "body", None)
    if isinstance(body, dict | list):
        case.body = drop_second_spellings(body)
    guard(case)
