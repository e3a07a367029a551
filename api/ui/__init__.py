"""The workbench: server-rendered pages for billing staff, auditors and patient advocates under
``/ui/`` (Jinja2 templates, a little plain JavaScript, every asset served from this package),
``/`` redirecting to it, and ``/docs`` + ``/redoc`` with vendored Swagger UI and ReDoc (no CDN).

``install(app)`` mounts it on the API application; the pages share the app's state (ledger,
pool, token store) and its permission table (``api.ui.gate``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.ui.gate import SignInRequired, may_page
from api.ui.render import render
from ledger.domain.errors import LedgerError, NotFound

STATIC = Path(__file__).parent / "static"


def _error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    identity = getattr(request.state, "identity", None)
    return render(request, "error.html", status_code=status, title=title, detail=detail,
                  identity=identity, csrf_token=getattr(getattr(request.state, "session", None),
                                                       "csrf_token", ""),
                  may=lambda method, tpl: identity is not None and may_page(
                      identity.role, method, tpl))


def workbench(parent: FastAPI) -> FastAPI:
    from api.ui.pages import router

    ui = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    ui.state = parent.state  # the ledger, pool and token store made by the parent's lifespan
    ui.mount("/static", StaticFiles(directory=STATIC), name="static")
    ui.include_router(router)

    @ui.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/ui/signin?next={exc.next_url}", status_code=303)

    @ui.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        titles = {403: "Not allowed", 404: "Not found", 429: "Too many attempts"}
        return _error_page(request, exc.status_code, titles.get(exc.status_code, "Refused"),
                           str(exc.detail))

    @ui.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> Response:
        status = 404 if isinstance(exc, NotFound) else 422
        return _error_page(request, status, "Not found" if status == 404 else "Refused",
                           exc.message)

    @ui.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return _error_page(request, 422, "Invalid request", f"{field}: {first.get('msg', '')}")

    return ui


# Only this server: the browser itself refuses anything else (e.g. ReDoc's logo from its CDN).
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; worker-src 'self' blob:; connect-src 'self'; "
            "frame-ancestors 'none'")


def _docs_html(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{body}</html>')


def install(app: FastAPI) -> None:
    """Mount the workbench at /ui, redirect / to it, serve /docs and /redoc offline. Build the
    app with ``docs_url=None, redoc_url=None`` so these are the only docs pages."""
    app.mount("/ui", workbench(app))
    app.router.add_route("/", lambda request: RedirectResponse("/ui/", status_code=307),
                         include_in_schema=False)

    def swagger(request: Request) -> HTMLResponse:
        return HTMLResponse(headers={"Content-Security-Policy": DOCS_CSP}, content=_docs_html(
            f"{app.title} - API", '<link rel="stylesheet" href="/ui/static/vendor/swagger-ui/'
            'swagger-ui.css"></head><body><div id="swagger-ui"></div>'
            '<script src="/ui/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>'
            '<script src="/ui/static/docs.js"></script></body>'))

    def redoc(request: Request) -> HTMLResponse:
        return HTMLResponse(headers={"Content-Security-Policy": DOCS_CSP}, content=_docs_html(
            f"{app.title} - ReDoc", '</head><body><div id="redoc"></div>'
            '<script src="/ui/static/vendor/redoc/redoc.standalone.js"></script>'
            '<script src="/ui/static/redoc-init.js"></script></body>'))

    app.router.add_route("/docs", swagger, include_in_schema=False)
    app.router.add_route("/redoc", redoc, include_in_schema=False)
