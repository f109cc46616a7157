"""URL templates: the subset of Go's text/template that Zitadel's reset links use.

Supported: literal text, `{{.UserID}}`, `{{.Code}}`, `{{.OrgID}}`, the `urlquery` function as
a pipeline stage (`{{.Code | urlquery}}`), comments (`{{/* ... */}}`) and the trim markers
`{{- ` and ` -}}`. As in Zitadel, a template that does not parse is `DOMAIN-oGh5e` and one
that fails to execute (a field other than the three) is `DOMAIN-ieYa7`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote_plus

from pwreset.errors import invalid_argument

FIELDS = ("UserID", "Code", "OrgID")
_MESSAGE = "URL Template is invalid"
_FIELD_CHAIN = re.compile(r"^(\.[A-Za-z_][A-Za-z0-9_]*)+$|^\.$")
_FUNCTIONS = {"urlquery": lambda value: quote_plus(value)}


@dataclass(frozen=True)
class _Action:
    chain: tuple[str, ...]  # field names after the dot; () for `.` itself
    functions: tuple[str, ...]


@dataclass(frozen=True)
class UrlTemplate:
    parts: tuple[str | _Action, ...]

    def render(self, *, user_id: str, code: str, org_id: str) -> str:
        values = {"UserID": user_id, "Code": code, "OrgID": org_id}
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if len(part.chain) != 1 or part.chain[0] not in values:
                raise invalid_argument("DOMAIN-ieYa7", _MESSAGE)
            value = values[part.chain[0]]
            for name in part.functions:
                value = _FUNCTIONS[name](value)
            out.append(value)
        return "".join(out)


def parse_url_template(source: str) -> UrlTemplate:
    """Parse `source`, raising `DOMAIN-oGh5e` when it is not a valid template."""
    parts: list[str | _Action] = []
    position = 0
    while True:
        start = source.find("{{", position)
        if start < 0:
            parts.append(source[position:])
            break
        text = source[position:start]
        inner_start = start + 2
        if source.startswith("- ", inner_start) or source.startswith("-\t", inner_start):
            text = text.rstrip(" \t\r\n")
            inner_start += 1
        end = source.find("}}", inner_start)
        if end < 0:
            raise invalid_argument("DOMAIN-oGh5e", _MESSAGE)
        inner_end, trim_right = end, False
        if end - 2 >= inner_start and source[end - 1] == "-" and source[end - 2] in " \t":
            inner_end, trim_right = end - 1, True
        parts.append(text)
        action = _parse_action(source[inner_start:inner_end])
        if action is not None:
            parts.append(action)
        position = end + 2
        if trim_right:
            stripped = source[position:].lstrip(" \t\r\n")
            position = len(source) - len(stripped)
    return UrlTemplate(tuple(p for p in parts if p != ""))


def _parse_action(body: str) -> _Action | None:
    body = body.strip(" \t\r\n")
    if body.startswith("/*") and body.endswith("*/") and len(body) >= 4:
        return None
    stages = [stage.strip(" \t") for stage in body.split("|")]
    head, functions = stages[0], stages[1:]
    if not _FIELD_CHAIN.match(head) or any(name not in _FUNCTIONS for name in functions):
        raise invalid_argument("DOMAIN-oGh5e", _MESSAGE)
    chain = tuple(name for name in head.split(".") if name)
    return _Action(chain, tuple(functions))


def check_url_template(source: str, user_id: str) -> UrlTemplate:
    """Parse and trial-render `source` as Zitadel does before looking the user up."""
    template = parse_url_template(source)
    template.render(user_id=user_id, code="code", org_id="orgID")
    return template
