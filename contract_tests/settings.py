"""The kit's settings, and the Schemathesis configuration they make.

The configuration lives here rather than in a `schemathesis.toml`, so the installed kit
behaves the same from any working directory.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace
from typing import Any

TOKEN_ENV = "PWRESET_CONTRACT_TOKEN"
LOW_PRIVILEGE_TOKEN_ENV = "PWRESET_CONTRACT_LOW_PRIVILEGE_TOKEN"
FOREIGN_TOKEN_ENV = "PWRESET_CONTRACT_FOREIGN_TOKEN"
DEFAULT_MAX_EXAMPLES = 25

# Schema-valid requests may still break a business rule: a wrong verification code, a weak
# password, an unknown user on SetPassword (400), a taken username (409), a rate limit (429).
# Those are answers, not contract failures; schema-invalid input accepted still fails.
POSITIVE_DATA_EXPECTED_STATUSES = ["2XX", 400, 401, 403, 404, 409, 429]

# Tokens stay hidden in failure reports; bodies (generated passwords of throwaway users)
# are shown in full, since the curl command must reproduce the failure.
SANITIZED_KEYS = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]
SENSITIVE_MARKERS = ["authoriz", "cookie"]


@dataclass(frozen=True)
class KitSettings:
    """How one run of the suite is made; every field has a CLI flag and a pytest option."""

    base_url: str | None = None  # None: an in-process target
    targets: tuple[str, ...] = ("app",)  # in-process targets, when no base URL is given
    token: str | None = None
    low_privilege_token: str | None = None
    foreign_token: str | None = None  # every permission, in another organization
    max_examples: int = DEFAULT_MAX_EXAMPLES
    seed: int = field(default_factory=lambda: random.SystemRandom().randrange(2**32))
    report: str | None = None  # coverage JSON path
    allow_unreached: tuple[str, ...] = ()

    @property
    def stateful_max_examples(self) -> int:
        return max(5, self.max_examples)

    def with_environment(self) -> KitSettings:
        """Tokens from the environment when not given, so CI can keep them out of argv."""
        return replace(
            self,
            token=self.token or os.environ.get(TOKEN_ENV) or None,
            low_privilege_token=self.low_privilege_token or os.environ.get(LOW_PRIVILEGE_TOKEN_ENV) or None,
            foreign_token=self.foreign_token or os.environ.get(FOREIGN_TOKEN_ENV) or None,
        )


def schemathesis_config(settings: KitSettings, base_url: str | None) -> dict[str, Any]:
    """The Schemathesis configuration (as its TOML would parse) for one run."""
    config: dict[str, Any] = {
        "seed": settings.seed,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large", "large_base_example"],
        "generation": {"max-examples": settings.max_examples, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
        },
        "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_DATA_EXPECTED_STATUSES}},
        "output": {
            "sanitization": {"keys-to-sanitize": SANITIZED_KEYS, "sensitive-markers": SENSITIVE_MARKERS}
        },
        "request-timeout": 30,
    }
    if base_url:
        config["base-url"] = base_url
    return config
