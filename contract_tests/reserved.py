"""Reserved, undeliverable contact data: what the kit may put in a request, and the guard that
makes any request body keep to it.

A server under test sends reset links to the addresses it is given, so whatever the kit
generates (examples, coverage, fuzzing, stateful, reachers, read-back) must reach nobody:

- email domains: `example.com`, `example.org`, `example.net` and their subdomains (RFC 2606
  §3), and the top-level names `.test`, `.example`, `.invalid` (RFC 2606 §2, RFC 6761 §6);
- phone numbers: the fictional ranges, North America's `+1 NXX 555 0100`-`0199` (NANPA) and
  the United Kingdom's drama numbers `+44 7700 900000`-`900999` and `+44 20 7946 0000`-`0999`
  (Ofcom);
- links: hosts under the same reserved names; the kit's own links point to
  `https://example.com`.

`reserve` rewrites any JSON value to those names, keeping each address's length where it can
(the kit sends strings at their length limits on purpose), and `unreserved` lists what is not
reserved, for the guard's last check and for tests.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

RESERVED_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606 §3
RESERVED_TOP_LEVEL = ("test", "example", "invalid")  # RFC 2606 §2, RFC 6761 §6
EMAIL_DOMAIN = "example.com"  # where rewritten addresses go: servers accept it (RFC 6761 §6.5)
LINK_HOST = "example.com"
MAX_DOMAIN_LABEL = 63

# NANPA: 555-0100 through 555-0199 in every area code; Ofcom: 07700 900000-900999 and
# 020 7946 0000-0999 (digits of the E.164 form, without the `+`).
_FICTIONAL_PHONE = re.compile(r"^(?:1[2-9]\d{2}55501\d{2}|447700900\d{3}|442079460\d{3})$")
# A string a server could read as a phone number: mostly digits, or an international one.
PHONE_KEY = re.compile(r"phone|mobile|msisdn|^tel$|sms", re.IGNORECASE)
_INTERNATIONAL = re.compile(r"^\s*\+[\d\s().-]{6,}$")
# What follows an `@` up to a character no domain has: the domain a mailer would use.
_EMAIL_DOMAIN = re.compile(r"@(\[[^\]]*\]?|[^\s<>()\[\],;:\"'/\\?#&=@|]+)")
# A URL's authority: `scheme://authority`, a scheme-relative `//authority`, or `https:host`
# (browsers read `\\` as `/` and take `http:` and `https:` without slashes).
_LINK_AUTHORITY = re.compile(
    r"(?:\bhttps?:[/\\]*|(?:\b[a-zA-Z][a-zA-Z0-9+.-]*:)?[/\\]{2})([^/\\?#\s\"'<>]*)", re.IGNORECASE
)


# --- rules ------------------------------------------------------------------------------


def is_reserved_host(host: str) -> bool:
    """Whether a host name is under RFC 2606/6761's reserved names (case and a trailing dot
    ignored); IP addresses and every other name are not."""
    name = host.strip().rstrip(".").lower()
    if any(name == domain or name.endswith("." + domain) for domain in RESERVED_DOMAINS):
        return True
    return name.rpartition(".")[2] in RESERVED_TOP_LEVEL


def is_reserved_email(address: str) -> bool:
    """Whether every domain in `address` (the part after each `@`) is reserved."""
    return all(is_reserved_host(domain) for domain in _domains(address))


def is_fictional_phone(number: str) -> bool:
    """Whether a number written in international form (`+` and country code; spaces, dots,
    dashes and brackets allowed) is in one of the fictional ranges."""
    text = number.strip()
    if not text.startswith("+") or re.search(r"[^\d\s().+-]", text):
        return False
    return bool(_FICTIONAL_PHONE.match(re.sub(r"\D", "", text)))


def fictional_phone(seed: str) -> str:
    """A fictional number in E.164 (`+1202555 01xx`), the same for the same `seed`."""
    return f"+120255501{zlib.crc32(seed.encode('utf-8', 'surrogatepass')) % 100:02d}"


def looks_like_phone(key: str | None, text: str) -> bool:
    """Whether a server could take `text` for a phone number: a value of a property named like
    one (`phone`, `mobile`, `msisdn`, `sms`, `tel`) with three digits or more, or a number in
    international form anywhere."""
    if _INTERNATIONAL.match(text):
        return True
    return key is not None and bool(PHONE_KEY.search(key)) and sum(c.isdigit() for c in text) >= 3


def _domains(text: str) -> list[str]:
    return [match.group(1) for match in _EMAIL_DOMAIN.finditer(text)]


def _link_hosts(text: str) -> list[tuple[re.Match[str], str]]:
    """Each URL authority in `text` and its host. An empty authority that no slash follows
    (`//'@example.com`, an email's local part) names no host and is left out; one that a
    slash follows is kept with an empty host, since browsers skip extra slashes
    (`///evil.com` goes to `evil.com`)."""
    found = []
    for match in _LINK_AUTHORITY.finditer(text):
        authority = match.group(1)
        if not authority and text[match.end(1) : match.end(1) + 1] not in ("/", "\\"):
            continue
        host = authority.rpartition("@")[2]
        host = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
        found.append((match, host))
    return found


# --- the rewrite ------------------------------------------------------------------------


def reserved_domain_of_length(length: int) -> str:
    """`example.com`, or a subdomain of it (`aaa.example.com`) of exactly `length` characters
    when `length` is 13 or more, with labels of at most 63 characters."""
    extra = length - len(EMAIL_DOMAIN) - 1  # characters of labels and their dots before it
    if extra < 1:
        return EMAIL_DOMAIN
    labels = []
    while extra > 0:
        take = min(MAX_DOMAIN_LABEL, extra)
        if extra - take == 1:  # a lone dot cannot make a label
            take -= 1
        labels.append("a" * take)
        extra -= take + 1
    return ".".join([*labels, EMAIL_DOMAIN])


def reserve_email(address: str) -> str:
    """`address` with every domain that is not reserved replaced by one that is. A single
    address keeps its length where it can: the domain takes it, then the local part."""
    domains = _domains(address)
    if all(is_reserved_host(domain) for domain in domains):
        return address
    if len(domains) == 1 and address.count("@") == 1 and address.endswith("@" + domains[0]):
        local = address[: -len(domains[0]) - 1]
        domain = reserved_domain_of_length(len(domains[0]))
        gap = len(domains[0]) - len(domain)  # what the local part gives or takes to keep the length
        if gap > 0:
            local += "x" * gap if len(local) + gap <= 64 else ""
        elif gap < 0 and len(local) + gap >= 1:
            local = local[: len(local) + gap]
        return f"{local}@{domain}"
    return _EMAIL_DOMAIN.sub(
        lambda m: m.group(0) if is_reserved_host(m.group(1)) else "@" + EMAIL_DOMAIN, address
    )


def reserve_links(text: str) -> str:
    """`text` with the host of every URL that is not reserved replaced by `example.com`
    (scheme, path and query kept, userinfo and port dropped)."""
    out, last = [], 0
    for match, host in _link_hosts(text):
        if is_reserved_host(host):
            continue
        out += [text[last : match.start(1)], LINK_HOST]
        last = match.end(1)
    return "".join(out) + text[last:] if out else text


def reserve(value: Any, key: str | None = None) -> Any:
    """A JSON value with every link, email address and phone number in its strings reserved
    (see the module docstring); anything else as it was. `key` is the property `value` is at."""
    if isinstance(value, dict):
        return {k: reserve(v, k if isinstance(k, str) else None) for k, v in value.items()}
    if isinstance(value, list):
        return [reserve(item, key) for item in value]
    if not isinstance(value, str):
        return value
    text = reserve_links(value)
    if "@" in text:
        text = reserve_email(text)
    if looks_like_phone(key, text) and not is_fictional_phone(text):
        text = fictional_phone(text)
    return text


def unreserved(value: Any, key: str | None = None, path: str = "") -> Iterator[str]:
    """Each link, email address or phone number in a JSON value that is not reserved, as
    `path: value` (path like `/email/email`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from unreserved(v, k if isinstance(k, str) else None, f"{path}/{k}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from unreserved(item, key, f"{path}/{i}")
    elif isinstance(value, str):
        where = path or "/"
        if any(not is_reserved_host(host) for _m, host in _link_hosts(value)):
            yield f"{where}: link {value!r}"
        if not is_reserved_email(value):
            yield f"{where}: email {value!r}"
        if looks_like_phone(key, value) and not is_fictional_phone(value):
            yield f"{where}: phone {value!r}"


# --- generators -------------------------------------------------------------------------

# RFC 5322 atext: what a dot-atom local part is made of.
_LOCAL_CHARACTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"


def reserved_emails() -> st.SearchStrategy[str]:
    """Addresses under `example.com`, `.org` and `.net` (RFC 2606), now and then in a
    subdomain: accepted by servers that refuse special-use names, and deliverable nowhere."""
    atom = st.text(alphabet=_LOCAL_CHARACTERS, min_size=1, max_size=16)
    local = st.lists(atom, min_size=1, max_size=3).map(".".join).filter(lambda s: len(s) <= 64)
    label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
    domain = st.one_of(
        st.sampled_from(RESERVED_DOMAINS),
        st.tuples(label, st.sampled_from(RESERVED_DOMAINS)).map(".".join),
    )
    return st.builds("{}@{}".format, local, domain)


def fictional_phones() -> st.SearchStrategy[str]:
    """Numbers from the fictional ranges, in E.164 and in the ways people write them."""
    area = st.integers(200, 999).map(str)
    line = st.integers(0, 99).map("{:02d}".format)
    nanp = st.one_of(
        st.builds("+1{}55501{}".format, area, line),
        st.builds("+1 {} 555 01{}".format, area, line),
        st.builds("+1 ({}) 555-01{}".format, area, line),
    )
    uk = st.one_of(
        st.integers(0, 999).map("+447700900{:03d}".format),
        st.integers(0, 999).map("+44 20 7946 0{:03d}".format),
    )
    return st.one_of(nanp, uk)
