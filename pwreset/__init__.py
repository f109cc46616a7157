"""pwreset: Zitadel's User Service v2 password-reset flow, OpenAPI-first."""

import warnings

# Connexion imports Starlette's test client, which warns about httpx in every process that
# loads it (the CLI's, and each worker process uvicorn spawns): the warning is about
# Connexion's own imports, nothing pwreset's users can act on.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

__version__ = "0.1.0"
