"""/docs (Swagger UI) and /redoc from assets shipped in a package (fastapi-offline), not a
CDN: they work offline, and the pages keep to the Content-Security-Policy (no inline
script; security_headers.py). Who may see them is `web.docs` (request_gate.py)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from operator_data.api.deps import Ctx

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request, ctx: Ctx) -> HTMLResponse:
    return ctx.templates.TemplateResponse(request, "api_docs.html", {"title": request.app.title})


@router.get("/redoc")
async def redoc(request: Request, ctx: Ctx) -> HTMLResponse:
    return ctx.templates.TemplateResponse(request, "api_redoc.html", {"title": request.app.title})
