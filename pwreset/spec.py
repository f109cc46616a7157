"""The OpenAPI contract, loaded once as a dict.

Connexion renders spec *files* through Jinja2, which breaks on Zitadel's own URL-template
examples (`{{.UserID}}`); a dict is used as it is.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

SPEC_PATH = Path(__file__).resolve().parent / "openapi.yaml"


@cache
def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_spec(path: Path | None = None) -> dict:
    """The parsed spec; a fresh deep copy is not needed, callers treat it as read-only."""
    return _load((path or SPEC_PATH).resolve())
