"""`SecurityHeaders`: the browser protections every answer carries.

The pages run no inline script and load nothing from elsewhere, so the policy can be
strict: scripts, styles, images and form targets from this origin only, and no framing
(clickjacking). The API documentation pages are the one exception: Swagger UI and ReDoc
(served from the package, operator_data/api/routers/api_docs.py) set inline styles and
ReDoc runs a worker from a blob, so they get those two allowances and nothing else.
Every dynamic answer is `no-store`: pages and JSON carry customer data, which must not
stay in a shared or back-button cache; only /static and /docs-assets may be cached.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_CACHEABLE = ("/static/", "/docs-assets/")
_DOCS_PAGES = frozenset({"/docs", "/redoc"})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        csp = DOCS_CSP if path in _DOCS_PAGES else PAGE_CSP
        cacheable = path.startswith(_CACHEABLE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
