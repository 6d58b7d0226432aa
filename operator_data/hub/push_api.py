"""`POST /p2apst/tokens`: P2APST pushes a token for a meter; the hub delivers it.

Mount with `app.include_router(router)` and make the hub reachable either by setting
`app.state.pintar_hub = hub` or by overriding the `get_hub` dependency
(`app.dependency_overrides[get_hub] = lambda: hub`). The bearer token is
`settings.hub.push_token` (PINTAR_HUB__PUSH_TOKEN); without one the endpoint refuses all.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from pydantic import BaseModel, Field

from operator_data.hub.hub import Hub
from operator_data.hub.push import PushedToken, PushRefused


def get_hub(request: Request) -> Hub:
    """The dependency hook: the hub serving this app."""
    hub = getattr(request.app.state, "pintar_hub", None)
    if not isinstance(hub, Hub):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the hub is not running")
    return hub


class PushBody(BaseModel):
    pln_reference: Annotated[str, Field(min_length=1, max_length=64)]
    meter_number: Annotated[str, Field(pattern=r"^[0-9]{11}$")]
    token: Annotated[
        str, Field(pattern=r"^[0-9]{4}[- ]?[0-9]{4}[- ]?[0-9]{4}[- ]?[0-9]{4}[- ]?[0-9]{4}$")
    ]
    amount_idr: Annotated[int, Field(gt=0)]
    kwh: Decimal | None = None


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


@router.post("/p2apst/tokens", response_model=PushAnswer)
async def receive_token(
    hub: Annotated[Hub, Depends(authorised)],
    body: PushBody,
) -> PushAnswer:
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
    return PushAnswer(transaction_id=outcome.transaction_id, created=outcome.created)
