"""`pwreset` as a real process: its standard output and error captured whole, in files."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PWRESET = [sys.executable, "-m", "pwreset.cli"]
CHEAP_ARGON2 = {"PWRESET_ARGON2_MEMORY_KIB": "1024", "PWRESET_ARGON2_TIME_COST": "1"}


def free_port() -> int:
    """A port the OS just gave out, for `--workers`, where uvicorn binds the socket itself."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PwresetProcess:
    """`pwreset ARGS...` with umask 022 (so modes it sets are its own doing), until `stop()`."""

    def __init__(
        self, tmp_path: Path, *args: str, listening: str = r"listening on (http://[\d.]+:\d+)"
    ) -> None:
        self._out = tmp_path / f"stdout-{time.monotonic_ns()}.log"
        self._err = self._out.with_name(self._out.name.replace("stdout", "stderr"))
        with self._out.open("wb") as out, self._err.open("wb") as err:
            self.process = subprocess.Popen(
                [*PWRESET, *args, *(("--grpc-port", "0") if args[0] == "mock" else ())],
                stdout=out,
                stderr=err,
                env={**os.environ, **CHEAP_ARGON2, "PYTHONUNBUFFERED": "1"},
                # Set by the C code between fork and exec: a Python preexec_fn can deadlock the
                # child when gRPC's threads run in this process (subprocess's own warning).
                umask=0o022,
            )
        match = self.wait_for(listening)
        self.base_url = match.group(1)

    @property
    def output(self) -> str:
        """Everything written so far, standard output then standard error."""
        return self._out.read_text(errors="replace") + self._err.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"pwreset never wrote {pattern!r}:\n{self.output}")

    def wait_ready(self, path: str = "/readyz", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        seen: object = "no answer yet"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(self.base_url + path, timeout=5)
                if response.status_code == 200:
                    return
                seen = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                seen = repr(exc)
            time.sleep(0.05)
        raise RuntimeError(f"not ready after {timeout:g} s; {path} answered last: {seen}\n{self.output}")

    def stop(self) -> str:
        """Stop it (SIGTERM, then SIGKILL after 15 s); returns all it wrote."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.output
