"""The baseline: a plain Starlette handler returning the seed's JSON, no validation, no I/O."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

SEED_RESPONSE = {
    "details": {
        "sequence": "2",
        "changeDate": "2025-03-05T21:29:22.155Z",
        "resourceOwner": "69629023906488334",
        "creationDate": "2025-03-05T21:29:22.155Z",
    },
    "verificationCode": "string",
}


async def password_reset(request):
    await request.body()
    return JSONResponse(SEED_RESPONSE)


app = Starlette(routes=[Route("/v2/users/{userId}/password_reset", password_reset, methods=["POST"])])
