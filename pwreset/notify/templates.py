"""The texts of reset messages: Jinja2 templates, built in or from an operator's directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
    select_autoescape,
)

TEMPLATE_NAMES = ("email_subject.txt", "email_body.txt", "email_body.html", "sms.txt")


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


class MessageTemplates:
    """The four templates; a file of the same name in `override_dir` replaces a built-in one.

    Every template is loaded and compiled at start, so a broken override stops the start
    instead of failing each message later."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list = []
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
        try:
            self._templates: dict[str, Template] = {name: env.get_template(name) for name in TEMPLATE_NAMES}
        except TemplateError as exc:
            raise ValueError(f"message template error: {exc}") from None

    def email(self, context: dict) -> EmailContent:
        subject = " ".join(self._templates["email_subject.txt"].render(context).split())
        return EmailContent(
            subject=subject,
            text=self._templates["email_body.txt"].render(context),
            html=self._templates["email_body.html"].render(context),
        )

    def sms(self, context: dict) -> str:
        return self._templates["sms.txt"].render(context).strip()
