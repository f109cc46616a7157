"""Mock mode: answers every operation of an OpenAPI document from its examples (or from
generated data), after the same authentication and request validation as the real server.
Depends on the spec only: no database, no handlers."""
