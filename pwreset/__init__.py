"""pwreset: Zitadel's User Service v2 password-reset flow, OpenAPI-first."""

__version__ = "0.1.0"
