"""What the incident, meter-readings and charges pages share: rendering with their own
texts added to the shared catalogue, and the form CSRF check."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse

from operator_data.api import helpdesk_texts
from operator_data.api.auth import Principal
from operator_data.api.deps import language_of
from operator_data.api.present import wib
from operator_data.api.routers import pages


def texts(request: Request) -> Any:
    return helpdesk_texts.texts(language_of(request))


def render(
    request: Request,
    name: str,
    principal: Principal,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    return pages.render(
        request,
        name,
        principal,
        {"t": texts(request), "wib": wib, **context},
        status_code=status_code,
    )


def check_csrf(principal: Principal, csrf: str) -> None:
    if csrf != principal.csrf_token():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
