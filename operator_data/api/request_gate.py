"""`RequestGate`: what is checked before a request's body is read.

FastAPI reads and parses a body before it runs the route's dependencies, so without this
an anonymous caller got its malformed JSON answered 422 and had any number of bytes read
into memory before being told 401. This ASGI middleware, in front of the routes:

* answers 413 to a body over the route's cap: at once from Content-Length, or as soon
  as a streamed (chunked) body passes the cap, so at most the cap is ever held;
* looks the caller up (X-API-Key or session cookie, `deps.resolve_principal`) before a
  POST/PUT/PATCH/DELETE to one of our routes and refuses the anonymous: 401 on the API,
  the login page's redirect on a page. Routes the hub mounts (the token push) check
  their own credential before they read (see operator_data/hub/push_api.py);
* keeps /docs, /redoc, /openapi.json and /metrics to whom `web.docs` allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from operator_data.api.deps import AppContext, resolve_principal

PUSH_PATH = "/p2apst/tokens"
LOGIN_PATH = "/login"
DOCS_PATHS = frozenset({"/docs", "/redoc", "/openapi.json", "/metrics"})
DOCS_ASSETS = "/docs-assets/"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PAGE_MODULES = frozenset(
    {"operator_data.api.routers.pages", "operator_data.api.routers.user_pages"}
)
_API_MODULES = "operator_data.api.routers."


def is_docs_path(path: str) -> bool:
    return path in DOCS_PATHS or path.startswith(DOCS_ASSETS)


def body_cap(ctx: AppContext, path: str) -> int:
    """The largest body `path` takes: small where the caller is not yet known."""
    web = ctx.settings.web
    if path in (PUSH_PATH, LOGIN_PATH):
        return web.max_push_body_bytes
    return web.max_body_bytes


class RequestGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx: AppContext = scope["app"].state.ctx
        path: str = scope["path"]
        request = Request(scope)
        if is_docs_path(path):
            access = ctx.settings.web.docs
            if access == "off":
                await _answer(send, 404, {"detail": "Not Found"})
                return
            if access == "authenticated" and await resolve_principal(request, ctx) is None:
                await _answer(send, 401, {"detail": "authentication required"})
                return
        cap = body_cap(ctx, path)
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, {"detail": "Content-Length must be a number"})
                return
            if int(declared) > cap:
                await _answer(send, 413, _too_large(cap))
                return
        if scope["method"] in _BODY_METHODS and path != LOGIN_PATH:
            kind = _route_kind(scope)
            if kind is not None:
                principal = await resolve_principal(request, ctx)
                if kind == "api" and principal is None:
                    await _answer(
                        send,
                        401,
                        {"detail": "authentication required: X-API-Key header or a session cookie"},
                    )
                    return
                if kind == "page" and (principal is None or principal.via != "session"):
                    await _redirect(send, LOGIN_PATH)
                    return
        await _Capped(self.app, cap)(scope, receive, send)


class _Capped:
    """Runs the app with a receive that stops at `cap` bytes: past it the client gets
    413 and the app a disconnect, and whatever the app then sends is dropped."""

    def __init__(self, app: ASGIApp, cap: int) -> None:
        self._app = app
        self._cap = cap
        self._seen = 0
        self._started = False
        self._refused = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def capped_receive() -> Message:
            if self._refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self._seen += len(message.get("body", b""))
                if self._seen > self._cap:
                    self._refused = True
                    if not self._started:
                        self._started = True
                        await _answer(send, 413, _too_large(self._cap))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self._refused:
                return
            if message["type"] == "http.response.start":
                self._started = True
            await send(message)

        try:
            await self._app(scope, capped_receive, guarded_send)
        except Exception:
            # The app tripping over the disconnect we handed it after answering 413.
            if not self._refused:
                raise


def _route_kind(scope: Scope) -> str | None:
    """ "page", "api" or None (not ours: a router the hub mounts, static files)."""
    endpoint = _endpoint(scope["app"].router.routes, scope)
    module = getattr(endpoint, "__module__", "") or ""
    if module in _PAGE_MODULES:
        return "page"
    if module.startswith(_API_MODULES):
        return "api"
    return None


def _endpoint(routes: Iterable[Any], scope: Scope) -> Any:
    """The endpoint the router will call for `scope`. Included routers are looked into:
    FastAPI keeps them as one route each (`original_router`), matched as a whole."""
    for route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found = _endpoint(inner.routes, scope)
            if found is not None:
                return found
            continue
        return child.get("endpoint") or getattr(route, "endpoint", None)
    return None


def _too_large(cap: int) -> dict[str, Any]:
    return {"detail": f"request body too large: at most {cap} bytes"}


async def _answer(send: Send, code: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
