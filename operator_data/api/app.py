"""`create_app`: the helpdesk web app and the operations API in one FastAPI application."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from operator_data.api import helpdesk_texts, i18n
from operator_data.api.auth import Accounts
from operator_data.api.deps import TEMPLATES_DIR, AppContext, language_of
from operator_data.api.metrics import AppMetrics
from operator_data.api.present import wib
from operator_data.api.providers import (
    Actions,
    ActionUnavailable,
    Ap2tHistoryProvider,
    EmptyStatus,
    NoAp2tHistory,
    RegistryActions,
    StatusProvider,
)
from operator_data.api.queries import BadCursor
from operator_data.api.request_gate import RequestGate
from operator_data.api.routers import (
    alarms,
    api_docs,
    charge_pages,
    charges,
    customers,
    health,
    incident_pages,
    incidents,
    messages,
    meter_history,
    meter_pages,
    meters,
    pages,
    sla,
    transactions,
    user_pages,
    users,
)
from operator_data.api.routers import (
    status as status_router,
)
from operator_data.api.security_headers import SecurityHeaders
from operator_data.registry import Conflict, Registry, RegistryError
from operator_data.settings import Settings
from operator_data.store import IllegalTransition, NotFound, Store
from operator_data.store.types import utcnow

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(
    settings: Settings,
    store: Store,
    registry: Registry,
    *,
    extra_routers: Iterable[APIRouter] = (),
    status_provider: StatusProvider | None = None,
    ap2t_history: Ap2tHistoryProvider | None = None,
    actions: Actions | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The app over an open `store`; the hub passes its providers and action hooks and
    mounts its own routers (e.g. operator_data.hub.push_api.router) via `extra_routers`."""
    app = FastAPI(
        title="Pintar operations API",
        version="1",
        description="Helpdesk and operations API of the Listrik Pintar Operator Data system.",
        # Our own /docs and /redoc (routers/api_docs.py): package assets, no inline script.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = AppContext(
        settings=settings,
        store=store,
        registry=registry,
        accounts=Accounts(store, clock=clock),
        status=status_provider or EmptyStatus(),
        ap2t=ap2t_history or NoAp2tHistory(),
        actions=actions or RegistryActions(registry),
        templates=_templates(),
        metrics=AppMetrics(),
        clock=clock,
    )
    for router in (
        health.router,
        messages.router,
        meters.router,
        meter_history.router,
        customers.router,
        charges.router,
        incidents.router,
        transactions.router,
        status_router.router,
        sla.router,
        alarms.router,
        users.router,
        pages.router,
        user_pages.router,
        incident_pages.router,
        meter_pages.router,
        charge_pages.router,
        api_docs.router,
        *extra_routers,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=api_docs.ASSETS_DIR), name="docs-assets")
    # Outermost last: the headers go on the gate's own refusals too.
    app.add_middleware(RequestGate)
    app.add_middleware(SecurityHeaders)
    _install_error_handlers(app)
    return app


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.globals["wib"] = wib
    # The menu's labels of the incident and charges pages, on every page's base template.
    templates.env.globals["nav_texts"] = helpdesk_texts.nav_texts
    return templates


def _is_page(request: Request) -> bool:
    """Errors of our HTML pages render as pages; everything else (the API, routers the
    hub mounts, unknown paths) keeps FastAPI's JSON errors."""
    endpoint = request.scope.get("endpoint")
    return getattr(endpoint, "__module__", None) in _PAGE_MODULES


_PAGE_MODULES = frozenset(
    module.__name__ for module in (pages, user_pages, incident_pages, meter_pages, charge_pages)
)


def _error(request: Request, code: int, detail: str) -> Response:
    if not _is_page(request):
        return JSONResponse({"detail": detail}, status_code=code)
    ctx: AppContext = request.app.state.ctx
    lang = language_of(request)
    return ctx.templates.TemplateResponse(
        request,
        "error.html",
        {
            "t": i18n.texts(lang),
            "lang": lang,
            "principal": None,
            "code": code,
            "detail": detail,
            "csrf": "",
            "is_supervisor": False,
            "path": request.url.path,
        },
        status_code=code,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(pages.LoginRequired)
    async def _login(request: Request, exc: pages.LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return _error(request, status.HTTP_404_NOT_FOUND, str(exc))

    @app.exception_handler(BadCursor)
    async def _bad_cursor(request: Request, exc: BadCursor) -> Response:
        return _error(request, status.HTTP_400_BAD_REQUEST, str(exc))

    @app.exception_handler(RegistryError)
    async def _registry(request: Request, exc: RegistryError) -> Response:
        code = 409 if isinstance(exc, Conflict) else 422
        return _error(request, code, str(exc))

    @app.exception_handler(IllegalTransition)
    async def _illegal(request: Request, exc: IllegalTransition) -> Response:
        return _error(request, status.HTTP_409_CONFLICT, str(exc))

    @app.exception_handler(ActionUnavailable)
    async def _unavailable(request: Request, exc: ActionUnavailable) -> Response:
        return _error(request, status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if _is_page(request) and exc.status_code in (401, 403, 404):
            return _error(request, exc.status_code, str(exc.detail))
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
