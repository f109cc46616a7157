"""Requests per second of `pwreset mock` and of Connexion's own mock (`MockResolver(mock_all=True)`,
what `connexion run --mock=all` builds) on the same spec, side by side in one run.

Both run as one uvicorn process with the same bearer-token check; the load comes from `wrk`
(`apt-get install wrk`). Usage: python bench/mock_rps.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

TOKEN = "bench-token"
USER_ID = "288459329874640898"
SCENARIOS = {
    "GET user": ("GET", f"/v2/users/{USER_ID}", None),
    "POST password_reset": ("POST", f"/v2/users/{USER_ID}/password_reset", '{"returnCode": {}}'),
    "POST human (validated body)": (
        "POST",
        "/v2/users/human",
        '{"profile": {"givenName": "Minnie", "familyName": "Mouse"}, "email": {"email": "m@mouse.com"}}',
    ),
}
SERVERS = ("pwreset mock", "connexion --mock=all")


def build(kind: str):
    warnings.filterwarnings("ignore")
    from mocks.settings import MockSettings
    from pwreset.app import StaticTokens, create_mock_app
    from pwreset.auth import Authenticator, security_map
    from pwreset.spec import load_spec

    if kind == "pwreset mock":
        return create_mock_app(MockSettings(tokens=(TOKEN,), cors_origins=()))
    from connexion import AsyncApp
    from connexion.mock import MockResolver

    authenticate = Authenticator(StaticTokens([TOKEN])).authenticate  # type: ignore[arg-type]
    app = AsyncApp(__name__, security_map=security_map(authenticate))
    app.add_api(load_spec(), resolver=MockResolver(mock_all=True))
    return app


def serve(kind: str, port_file: str) -> None:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # the load may start before uvicorn accepts; it waits in the backlog
    Path(port_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(uvicorn.Config(build(kind), log_level="error", access_log=False)).run(sockets=[sock])


def wrk(
    url: str, method: str, body: str | None, duration: int, connections: int
) -> tuple[float, dict[str, int]]:
    script = f"wrk.method = {method!r}\nwrk.headers['Authorization'] = 'Bearer {TOKEN}'\n"
    script += "wrk.headers['Content-Type'] = 'application/json'\n"
    if body:
        script += f"wrk.body = {body!r}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        run = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", handle.name, url],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(handle.name)
    if run.returncode != 0:
        raise RuntimeError(f"wrk failed on {url}: {run.stdout}{run.stderr}")
    out = run.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, {"non-2xx": int(non_2xx.group(1)) if non_2xx else 0}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    results: dict[tuple[str, str], tuple[float, dict]] = {}
    for kind in SERVERS:
        with tempfile.TemporaryDirectory() as tmp:
            port_file = Path(tmp) / "port"
            process = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port_file)])
            try:
                deadline = time.monotonic() + 30
                while not port_file.exists() or not port_file.read_text():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{kind} did not start")
                    time.sleep(0.05)
                base = f"http://127.0.0.1:{port_file.read_text()}"
                time.sleep(1)
                for name, (method, path, body) in SCENARIOS.items():
                    wrk(base + path, method, body, 2, args.connections)  # warm-up
                    results[kind, name] = wrk(base + path, method, body, args.duration, args.connections)
            finally:
                process.terminate()
                process.wait(timeout=15)
    print(f"\n{'scenario':30} " + " ".join(f"{kind:>24}" for kind in SERVERS) + f" {'ratio':>7}")
    for name in SCENARIOS:
        cells = []
        for kind in SERVERS:
            rps, errors = results[kind, name]
            cells.append(
                f"{rps:>14.0f} req/s"
                + (f" ({errors['non-2xx']} non-2xx)" if errors["non-2xx"] else "").rjust(4)
            )
        ratio = results[SERVERS[0], name][0] / results[SERVERS[1], name][0]
        print(f"{name:30} " + " ".join(f"{cell:>24}" for cell in cells) + f" {ratio:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
