"""URL templates: the subset of Go's text/template that Zitadel's reset links use.

Supported: literal text, `{{.UserID}}`, `{{.Code}}`, `{{.OrgID}}`, the `urlquery` function as
a pipeline stage (`{{.Code | urlquery}}`), comments (`{{/* ... */}}`) and the trim markers
`{{- ` and ` -}}`. As in Zitadel, a template that does not parse is `DOMAIN-oGh5e` and one
that fails to execute (a field other than the three) is `DOMAIN-ieYa7`.

Beyond Zitadel, a reset link must be a link a person can safely follow (`check_link`): an
`https` URL, or `http` to this machine (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`),
whose scheme, host and port are literal text (no action may change where it points), with no
user info, no control, bidi-control or backslash characters anywhere, and no spaces outside
actions. Otherwise `PWRESET-LinkURL`. Its origin is what per-organization allow-lists name.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote_plus

import idna

from pwreset.errors import ApiError, invalid_argument

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


# Bidi controls: ALM, LRM, RLM, the embeddings and overrides, and the isolates.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ORIGIN = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _link_error(reason: str) -> ApiError:
    return invalid_argument("PWRESET-LinkURL", f"URL Template is not an allowed link: {reason}")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_origin(scheme: str, authority: str) -> str:
    """`scheme://host[:port]` in normal form: lower case, IDNA host, no default port.

    Raises ValueError when it is no allowed link origin (see the module docstring)."""
    scheme = scheme.lower()
    if "@" in authority:
        raise ValueError("it has user info")
    host, port = authority, ""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError("its host is not valid")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("its host is not valid")
        port = rest[1:]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError("its host is not valid") from None
    elif ":" in authority:
        host, _, port = authority.rpartition(":")
    if not host:
        raise ValueError("it has no host")
    if port:
        if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("its port is not valid")
        port = "" if int(port) == _DEFAULT_PORTS.get(scheme) else str(int(port))
    if not host.startswith("["):
        try:
            host = idna.encode(host.rstrip("."), uts46=True).decode("ascii")
        except idna.IDNAError:
            raise ValueError("its host is not valid") from None
    if scheme == "http":
        if not _is_loopback(host):
            raise ValueError("http links may only point to localhost; use https")
    elif scheme != "https":
        raise ValueError(f"the scheme {scheme!r} is not allowed; use https")
    return f"{scheme}://{host}{':' + port if port else ''}"


def parse_origin(origin: str) -> str:
    """An origin as configured (`https://app.example`), in normal form; raises ValueError."""
    match = _ORIGIN.match(origin.strip())
    if match is None or match.end() != len(origin.strip().rstrip("/")):
        raise ValueError(f"{origin!r} is not an origin such as https://app.example")
    return normalize_origin(match.group(1), match.group(2))


def check_link(source: str, template: UrlTemplate) -> str:
    """The origin of the links `template` renders; raises 400 `PWRESET-LinkURL` when they are
    not links a person may safely follow (see the module docstring)."""
    if any(c in _BIDI_CONTROLS or c == "\\" or unicodedata.category(c) == "Cc" for c in source):
        raise _link_error("it contains a control, bidi or backslash character")
    if any(c.isspace() for part in template.parts if isinstance(part, str) for c in part):
        raise _link_error("it contains a space")  # spaces inside {{ }} are template syntax
    head = template.parts[0] if template.parts and isinstance(template.parts[0], str) else ""
    match = _ORIGIN.match(head)
    if match is None:
        raise _link_error("it must start with https:// and a host")
    fixed = match.end() < len(head) or len(template.parts) == 1
    if not fixed:
        raise _link_error("its scheme, host and port must be literal text")
    try:
        return normalize_origin(match.group(1), match.group(2))
    except ValueError as exc:
        raise _link_error(str(exc)) from None
