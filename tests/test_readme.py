"""The README's examples run as written, against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pwreset.config import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_sdk_snippet_is_self_contained(server, tmp_path):
    """It creates, resets and deletes a user of its own: nothing from the curl section."""
    [snippet] = re.findall(r"```python\n(.*?)```", section("Using Zitadel's SDKs"), re.S)
    assert "USER_ID" not in snippet
    snippet, replaced = re.subn(r'^API = "[^"]*"', f'API = "{server.base_url}"', snippet, flags=re.M)
    assert replaced == 1
    (tmp_path / "pwreset-data").mkdir()
    (tmp_path / "pwreset-data" / "admin-token").write_text(server.admin_token + "\n")
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("404 {'code': 'not_found'"), done.stdout


def test_the_configuration_table_is_the_one_the_settings_make():
    """Every setting has its README row, worded as its `--help`: a new setting without one fails."""
    text = section("Configuration")
    start = text.index("| Variable |")
    end = text.index("\n\n", start) + 1
    assert text[start:end] == markdown_table(), "regenerate it with pwreset.config.markdown_table()"
