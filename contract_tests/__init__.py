"""The contract-test kit: runs `openapi.yaml`'s contract against any target (an in-process
app, the mock, or a live `--base-url`) with Schemathesis and Hypothesis, reads back what
creations with boundary values were accepted, and gates on every documented response having
been produced and validated.

Run it with `pwreset contract-test --base-url URL --token TOKEN` or `pytest contract_tests`.
"""
