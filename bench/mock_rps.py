"""Requests per second of `pwreset mock` and of its peers on the same spec, side by side in one
run: Connexion's own mock (`MockResolver(mock_all=True)`, what `connexion run --mock=all`
builds) and Prism 5 (`@stoplight/prism-cli`, with its default logging and run quiet with
`-v warn`).

pwreset and Connexion run as one uvicorn process with the same bearer-token check; Prism as
one Node process (it checks that a bearer token is present). The load comes from `wrk`
(`apt-get install wrk`). Prism comes from npm: `npm ci --prefix bench/peers` (without it,
its rows are left out, and the run says so).
Usage: python bench/mock_rps.py [--duration 10] [--connections 32]
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
        '{"profile": {"givenName": "Minnie", "familyName": "Mouse"}, "email": {"email": "m@example.com"}}',
    ),
}
SERVERS = ("pwreset mock", "connexion --mock=all", "prism", "prism -v warn")
PRISM = Path(__file__).resolve().parent / "peers" / "node_modules" / ".bin" / "prism"
SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"


def build(kind: str):
    warnings.filterwarnings("ignore")
    from mocks.app import StaticTokens, create_mock_app
    from mocks.settings import MockSettings
    from pwreset.auth import Authenticator, security_map
    from pwreset.spec import load_spec

    if kind == "pwreset mock":
        return create_mock_app(MockSettings(tokens=(TOKEN,), cors_origins=(), grpc_port=-1))
    from connexion import AsyncApp
    from connexion.mock import MockResolver

    authenticate = Authenticator(StaticTokens([TOKEN])).authenticate
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
    servers = SERVERS if PRISM.exists() else SERVERS[:2]
    if not PRISM.exists():
        print("Prism is not installed (npm ci --prefix bench/peers): its rows are left out", file=sys.stderr)
    results: dict[tuple[str, str], tuple[float, dict]] = {}
    for kind in servers:
        with tempfile.TemporaryDirectory() as tmp:
            port_file = Path(tmp) / "port"
            process = start(kind, port_file)
            try:
                deadline = time.monotonic() + 60
                while not port_file.exists() or not port_file.read_text() or not answers(port_file):
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(f"{kind} did not start")
                    time.sleep(0.1)
                base = f"http://127.0.0.1:{port_file.read_text()}"
                time.sleep(1)
                for name, (method, path, body) in SCENARIOS.items():
                    wrk(base + path, method, body, 2, args.connections)  # warm-up
                    results[kind, name] = wrk(base + path, method, body, args.duration, args.connections)
            finally:
                process.terminate()
                process.wait(timeout=15)
    peers = servers[1:]
    print(
        f"\n{'scenario':28} "
        + " ".join(f"{kind:>22}" for kind in servers)
        + " "
        + " ".join(f"{'× ' + kind:>24}" for kind in peers)
    )
    for name in SCENARIOS:
        cells = []
        for kind in servers:
            rps, errors = results[kind, name]
            failed = f" ({errors['non-2xx']} non-2xx)" if errors["non-2xx"] else ""
            cells.append(f"{rps:>8.0f} req/s{failed}")
        ours = results[servers[0], name][0]
        ratios = [f"{ours / results[kind, name][0]:>23.2f}x" for kind in peers]
        print(f"{name:28} " + " ".join(f"{cell:>22}" for cell in cells) + " " + " ".join(ratios))
    return 0


def start(kind: str, port_file: Path) -> subprocess.Popen:
    """Start `kind` on a free loopback port, written to `port_file` once known."""
    if not kind.startswith("prism"):
        return subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port_file)])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    quiet = ["-v", "warn"] if kind.endswith("warn") else []
    process = subprocess.Popen(
        [str(PRISM), "mock", str(SPEC), "-h", "127.0.0.1", "-p", str(port), *quiet],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file.write_text(str(port))
    return process


def answers(port_file: Path) -> bool:
    """Whether something accepts connections on the port in `port_file`."""
    try:
        with socket.create_connection(("127.0.0.1", int(port_file.read_text())), timeout=0.5):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
