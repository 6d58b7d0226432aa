"""`create_app`: the helpdesk web app and the operations API in one FastAPI application."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from operator_data.api import complaint_texts, helpdesk_texts, i18n, ops_texts
from operator_data.api.auth import Accounts, Role
from operator_data.api.deps import TEMPLATES_DIR, AppContext, language_of, resolve_principal
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
    complaint_pages,
    complaints,
    customers,
    health,
    incident_pages,
    incidents,
    messages,
    meter_history,
    meter_pages,
    meters,
    ops_api,
    ops_pages,
    pages,
    sim_swap_pages,
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
        complaints.router,
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
        complaint_pages.router,
        sim_swap_pages.router,
        api_docs.router,
        *ops_api.routers,
        ops_pages.router,
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
    # v(group, value): a stored state, flow, kind or stage in the page's language.
    templates.env.globals["v"] = helpdesk_texts.template_value_label
    templates.env.globals["complaints_nav"] = complaint_texts.nav_label
    templates.env.globals["ops_nav"] = ops_texts.nav_texts  # outbox, gateways, find
    return templates


def _is_page(request: Request) -> bool:
    """Errors of our HTML pages render as pages, and so does an unknown path a browser
    asks for (Accept: text/html, outside /api); everything else (the API, routers the
    hub mounts, scripts) keeps FastAPI's JSON errors."""
    endpoint = request.scope.get("endpoint")
    if endpoint is None:
        wants_html = "text/html" in request.headers.get("accept", "")
        return wants_html and not request.url.path.startswith(("/api/", "/static/", "/docs-"))
    return getattr(endpoint, "__module__", None) in _PAGE_MODULES


_PAGE_MODULES = frozenset(
    module.__name__
    for module in (
        pages,
        user_pages,
        incident_pages,
        meter_pages,
        charge_pages,
        complaint_pages,
        ops_pages,
        sim_swap_pages,
    )
)


async def _error(request: Request, code: int, detail: str) -> Response:
    if not _is_page(request):
        return JSONResponse({"detail": detail}, status_code=code)
    ctx: AppContext = request.app.state.ctx
    lang = language_of(request)
    # The menu stays on an error page: whoever is logged in gets it, as on any page.
    principal = await resolve_principal(request, ctx)
    return ctx.templates.TemplateResponse(
        request,
        "error.html",
        {
            "t": i18n.texts(lang),
            "lang": lang,
            "principal": principal,
            "code": code,
            "detail": detail,
            "csrf": principal.csrf_token() if principal is not None else "",
            "is_supervisor": principal is not None and principal.role.allows(Role.SUPERVISOR),
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
        return await _error(request, status.HTTP_404_NOT_FOUND, str(exc))

    @app.exception_handler(BadCursor)
    async def _bad_cursor(request: Request, exc: BadCursor) -> Response:
        return await _error(request, status.HTTP_400_BAD_REQUEST, str(exc))

    @app.exception_handler(RegistryError)
    async def _registry(request: Request, exc: RegistryError) -> Response:
        code = 409 if isinstance(exc, Conflict) else 422
        return await _error(request, code, str(exc))

    @app.exception_handler(IllegalTransition)
    async def _illegal(request: Request, exc: IllegalTransition) -> Response:
        return await _error(request, status.HTTP_409_CONFLICT, str(exc))

    @app.exception_handler(ActionUnavailable)
    async def _unavailable(request: Request, exc: ActionUnavailable) -> Response:
        return await _error(request, status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))

    # Starlette's own (unknown path 404, wrong method 405) as well as FastAPI's.
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_page(request) and exc.status_code in (401, 403, 404, 405):
            return await _error(request, exc.status_code, str(exc.detail))
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
