"""Settings of the mock server (`pwreset mock`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MockSettings:
    spec_path: Path | None = None  # default: the packaged openapi.yaml
    host: str = "127.0.0.1"
    port: int = 4010
    grpc_port: int = 4011  # native gRPC (h2c); 0: any free port; -1: none
    tokens: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ("*",)  # empty: no CORS
    dynamic: bool = False
    seed: int | None = None
    stateful: bool = False
    latency_ms: tuple[int, int] | None = None
    fault_rate: float = 0.0
    log_level: str = "info"
    strict: bool = False  # refuse to start on any invalid example, instead of reporting it
