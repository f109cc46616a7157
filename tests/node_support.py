"""Running the official npm clients (`tests/node/`) from the tests.

`.ci/run` installs them (`npm ci --prefix tests/node`, into the git-ignored
`tests/node/node_modules`). Without node or those packages the tests skip, saying why; with
`PWRESET_REQUIRE_NODE=1` (set by `.ci/run`) they fail instead, so CI always runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "node"


def node_missing() -> str | None:
    """None when node and the npm packages are there, else what is missing."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "@zitadel" / "client").is_dir():
        return f"the npm packages are not installed: run `npm ci --prefix {NODE_DIR}`"
    return None


def require_node() -> None:
    reason = node_missing()
    if reason is None:
        return
    if os.environ.get("PWRESET_REQUIRE_NODE") == "1":
        pytest.fail(f"{reason} (PWRESET_REQUIRE_NODE=1: CI must run the npm clients)")
    pytest.skip(reason)


def run_node(script: str, document: dict[str, Any]) -> Any:
    """Run `tests/node/<script>` with the JSON `document`; its JSON output."""
    require_node()
    done = subprocess.run(
        ["node", str(NODE_DIR / script), json.dumps(document)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=NODE_DIR,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
