"""The texts of messages: Jinja2 templates, built in or from an operator's directory, one set
per message kind and per language.

Layout (the same in the package and in an operator's directory): the default (English) set at
the top, `email_subject.txt`, `email_body.txt`, `email_body.html` and `sms.txt` for a reset
link, the same names prefixed `password_changed_` for the notice of a new password; a language's
set in a folder named by its tag (`de/email_body.txt`). A user's `preferredLanguage` (`de`,
`de-CH`) picks the most specific folder that has the template, else the default.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)

from pwreset.domain.records import MessageKind

TEMPLATE_NAMES = ("email_subject.txt", "email_body.txt", "email_body.html", "sms.txt")
_PREFIX = {MessageKind.RESET: "", MessageKind.PASSWORD_CHANGED: "password_changed_"}
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def language_candidates(preferred_language: str) -> list[str]:
    """The template folders to try for a language tag, most specific first: `de-CH` → de-ch, de."""
    tag = preferred_language.strip().lower().replace("_", "-")
    if not _LANGUAGE_TAG.fullmatch(tag):
        return []
    parts = tag.split("-")
    return ["-".join(parts[:end]) for end in range(len(parts), 0, -1)]


class MessageTemplates:
    """Every kind's four templates, per language; a file of the same path in `override_dir`
    replaces a built-in one.

    Every template is loaded and compiled at start, so a broken override stops the start
    instead of failing each message later."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[BaseLoader] = []
        if override_dir is not None:
            if not override_dir.is_dir():
                raise ValueError(f"templates directory {override_dir} does not exist")
            loaders.append(FileSystemLoader(override_dir))
        loaders.append(PackageLoader("pwreset.notify", "templates"))
        env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
        )
        names = [_PREFIX[kind] + name for kind in MessageKind for name in TEMPLATE_NAMES]
        languages = {
            path.split("/", 1)[0] for path in env.list_templates() if path.count("/") == 1
        }
        self.languages = tuple(sorted(lang for lang in languages if _LANGUAGE_TAG.fullmatch(lang)))
        try:
            self._templates: dict[str, Template] = {name: env.get_template(name) for name in names}
            for language in self.languages:
                for name in names:
                    # A template the language lacks falls back to the default one.
                    with contextlib.suppress(TemplateNotFound):
                        self._templates[f"{language}/{name}"] = env.get_template(f"{language}/{name}")
        except TemplateError as exc:
            raise ValueError(f"message template error: {exc}") from None

    def _template(self, kind: MessageKind, language: str, name: str) -> Template:
        name = _PREFIX[kind] + name
        for candidate in language_candidates(language):
            template = self._templates.get(f"{candidate}/{name}")
            if template is not None:
                return template
        return self._templates[name]

    def email(
        self, context: dict[str, Any], *, kind: MessageKind = MessageKind.RESET, language: str = ""
    ) -> EmailContent:
        """Subject (on one line), text and HTML of an email of this kind, in the language."""
        subject = " ".join(self._template(kind, language, "email_subject.txt").render(context).split())
        return EmailContent(
            subject=subject,
            text=self._template(kind, language, "email_body.txt").render(context),
            html=self._template(kind, language, "email_body.html").render(context),
        )

    def sms(
        self, context: dict[str, Any], *, kind: MessageKind = MessageKind.RESET, language: str = ""
    ) -> str:
        """The text of an SMS of this kind, in the language."""
        return self._template(kind, language, "sms.txt").render(context).strip()
