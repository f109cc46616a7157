"""The contract-test kit: runs `openapi.yaml`'s contract against any target (an in-process
app, the mock, or a live `--base-url`) with Schemathesis and Hypothesis, and gates on every
documented response having been produced and validated.

Run it with `pwreset contract-test --base-url URL --token TOKEN` or `pytest contract_tests`.
"""
