"""The mock passes the whole Schemathesis suite for its own spec, over loopback HTTP: every
phase (examples, coverage, fuzzing, stateful via links) and every check (status codes,
content types, schemas, auth, negative data, unsupported methods, use after free, ...)."""

from __future__ import annotations

import pytest

from pwreset.spec import SPEC_PATH
from tests.support import MOCK_TOKEN, ST, live_mock, run_schemathesis


@pytest.mark.skipif(ST is None, reason="the Schemathesis command line (st) is not installed")
@pytest.mark.parametrize("dynamic", [False, True], ids=["examples", "dynamic"])
def test_mock_passes_every_schemathesis_check_on_its_own_spec(tmp_path, dynamic):
    with live_mock(stateful=True, dynamic=dynamic) as client:
        result = run_schemathesis(
            str(SPEC_PATH),
            str(client.base_url),
            "--header",
            f"Authorization: Bearer {MOCK_TOKEN}",
            "--checks",
            "all",
            "--mode",
            "all",
            "--max-examples",
            "40",
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
    assert "Stateful" in result.stdout
