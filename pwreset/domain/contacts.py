"""Email addresses and phone numbers: one address each, in one normal form.

Email: one RFC 5322 addr-spec, checked and normalized by `email-validator` (no display name,
no list, no quoted local part, no IP literal, no special-use domain such as `.invalid` or
`.localhost`; the domain lower-cased and IDNA-normalized, stored in ASCII (punycode) when
the local part is ASCII, so that every mail server takes it; Unicode in NFC). Zitadel's ids:
`EMAIL-599BI` for an invalid address and `EMAIL-599GV` when a display name is given
(internal/domain/human_email.go).

Phone: parsed with `phonenumbers` (Google's libphonenumber) with Switzerland as the region of
numbers given without a country code, and stored in E.164 (`+41791234567`), as Zitadel does;
`PHONE-so0wa` when it does not parse (internal/domain/human_phone.go). Stricter than Zitadel,
a number is written with digits, spaces, `+ - . ( )` only (libphonenumber would read letters
as keypad digits and drop extensions and other text), and must be a possible number.
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from pwreset.errors import ApiError, invalid_argument

DEFAULT_PHONE_REGION = "CH"  # Zitadel's defaultRegion
_PHONE_CHARACTERS = re.compile(r"^\+?[0-9 ().-]+$")


def email_invalid(error_id: str = "EMAIL-599BI") -> ApiError:
    return invalid_argument(error_id, "Email is invalid")


def normalize_email(address: str) -> str:
    """The normalized form of one email address; raises 400 `EMAIL-599BI`/`EMAIL-599GV`."""
    if "<" in address or ">" in address:
        raise email_invalid("EMAIL-599GV")
    try:
        checked = validate_email(
            address,
            check_deliverability=False,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
        )
    except EmailNotValidError:
        raise email_invalid() from None
    # ASCII where it can be (an IDN domain as punycode), so that any mail server takes it;
    # a local part in Unicode needs SMTPUTF8 whatever the domain.
    return checked.ascii_email or checked.normalized


def normalize_phone(number: str) -> str:
    """The number in E.164; raises 400 `PHONE-so0wa` when it is not one phone number."""
    invalid = invalid_argument("PHONE-so0wa", "Phone is invalid")
    if not _PHONE_CHARACTERS.match(number):
        raise invalid
    try:
        parsed = phonenumbers.parse(number, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise invalid from None
    if not phonenumbers.is_possible_number(parsed):
        raise invalid
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
