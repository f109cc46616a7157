"""Stock Schemathesis passes against `pwreset serve`: the README's command, word for word (the
server's URL and token file aside), with the repository's `schemathesis.toml`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from contract_tests.reserved import is_fictional_phone, is_reserved_email
from pwreset.config import Settings
from tests.delivery_support import outbox
from tests.process_support import PwresetProcess

ROOT = Path(__file__).resolve().parent.parent
README_URL = "http://127.0.0.1:8080"
README_TOKEN_FILE = "pwreset-data/admin-token"


def readme_command() -> str:
    """The `schemathesis run` command of the README's "Stock Schemathesis" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Stock Schemathesis", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            if "schemathesis run" in line:
                return line.split(" #", 1)[0].strip()
    raise AssertionError("the README's Stock Schemathesis section has no `schemathesis run` command")


def test_readme_names_the_checks_and_the_configuration() -> None:
    command = readme_command()
    assert "--checks all" in command and README_URL in command and README_TOKEN_FILE in command
    assert (ROOT / "schemathesis.toml").is_file()


def test_stock_schemathesis_passes_against_pwreset_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = PwresetProcess(tmp_path, "serve", "--data-dir", str(data), "--port", "0", "--grpc-port", "-1")
    try:
        command = readme_command()
        command = command.replace(README_URL, server.base_url)
        command = command.replace(README_TOKEN_FILE, str(data / "admin-token"))
        command = command.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
        # From the repository's root, where Schemathesis finds schemathesis.toml.
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    finally:
        server.stop()
    output = done.stdout + done.stderr
    print(output[-3000:])  # the summary, in the CI log
    assert done.returncode == 0, output
    assert "Stateful" in output, output  # every phase ran
    # The configuration's hooks kept every address the run created reserved.
    recipients = [m.recipient for m in outbox(Settings(data_dir=data))]
    assert recipients, "the run asked for no reset link, so this checks nothing"
    strangers = [r for r in recipients if not (is_reserved_email(r) or is_fictional_phone(r))]
    assert strangers == []
