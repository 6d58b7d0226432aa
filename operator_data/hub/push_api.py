"""`POST /p2apst/tokens`: P2APST pushes a token for a meter; the hub delivers it.

Mount with `app.include_router(router)` and make the hub reachable either by setting
`app.state.pintar_hub = hub` or by overriding the `get_hub` dependency
(`app.dependency_overrides[get_hub] = lambda: hub`). The bearer token is
`settings.hub.push_token` (PINTAR_HUB__PUSH_TOKEN); without one the endpoint refuses all.

The body is read only after the bearer token has been checked, and never more than
`web.max_push_body_bytes` of it (413 beyond): an anonymous caller gets 401 whatever it
sends and cannot make the hub hold a large body. Every field is bounded (422 with the
field's message); a repeated `pln_reference` with other values is 409.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from operator_data.hub.hub import Hub
from operator_data.hub.push import PushConflict, PushedToken, PushRefused


def get_hub(request: Request) -> Hub:
    """The dependency hook: the hub serving this app."""
    hub = getattr(request.app.state, "pintar_hub", None)
    if not isinstance(hub, Hub):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the hub is not running")
    return hub


MAX_AMOUNT_IDR = 100_000_000  # far above any one prepaid purchase; BigInteger-safe
MAX_KWH = Decimal("1000000")


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pln_reference: Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,64}$")]
    meter_number: Annotated[str, Field(pattern=r"^[0-9]{11}$")]
    token: Annotated[
        str, Field(pattern=r"^[0-9]{4}[- ]?[0-9]{4}[- ]?[0-9]{4}[- ]?[0-9]{4}[- ]?[0-9]{4}$")
    ]
    amount_idr: Annotated[int, Field(gt=0, le=MAX_AMOUNT_IDR, strict=True)]
    kwh: Annotated[
        Decimal | None,
        Field(ge=0, le=MAX_KWH, max_digits=10, decimal_places=3, allow_inf_nan=False),
    ] = None


class PushAnswer(BaseModel):
    transaction_id: str
    created: bool


router = APIRouter()


def authorised(
    hub: Annotated[Hub, Depends(get_hub)],
    authorization: Annotated[str | None, Header()] = None,
) -> Hub:
    """The hub, once the caller has shown the configured bearer token (checked before
    the body is even looked at)."""
    secret = hub.settings.hub.push_token
    expected = None if secret is None else f"Bearer {secret.get_secret_value()}"
    if (
        expected is None
        or authorization is None
        or not hmac.compare_digest(authorization.encode(), expected.encode())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "bearer token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return hub


@router.post(
    "/p2apst/tokens",
    response_model=PushAnswer,
    responses={401: {}, 409: {}, 413: {}, 422: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PushBody.model_json_schema()}},
        }
    },
)
async def receive_token(
    hub: Annotated[Hub, Depends(authorised)],
    request: Request,
) -> PushAnswer:
    # Taken by hand, not as a `PushBody` parameter: FastAPI reads and parses a declared
    # body before it runs `authorised`.
    raw = await _read_capped(request, hub.settings.web.max_push_body_bytes)
    try:
        body = PushBody.model_validate_json(raw)
    except ValidationError as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in error.errors(include_url=False, include_input=False)
            ],
        ) from None
    try:
        outcome = await hub.push_token(
            PushedToken(
                pln_reference=body.pln_reference,
                meter_number=body.meter_number,
                token=body.token,
                amount_idr=body.amount_idr,
                kwh=body.kwh,
            )
        )
    except PushRefused as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    except PushConflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    return PushAnswer(transaction_id=outcome.transaction_id, created=outcome.created)


async def _read_capped(request: Request, cap: int) -> bytes:
    """The body, refused with 413 as soon as it passes `cap` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
