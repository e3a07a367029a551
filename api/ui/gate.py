"""Who may see which page: every workbench page names the API route whose permission it
shares, and is checked against the ONE permission table (``api.permissions``) with the
signed-in user's role. A page missing here is refused (default deny). Forms (POST) must carry
the session's CSRF token. The identity is put on ``request.state`` like the API's ``authorize``
does, so the read-access log middleware records page reads like API reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Final
from urllib.parse import quote

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api.permissions import PERMISSIONS, E, allowed
from api.ui.sessions import COOKIE, Session, SessionStore

PUBLIC_PAGE: Final = "public"
SIGNED_IN: Final = "signed-in"  # any role with a live session (home, sign-out)

UE = "/encounters/{encounter_id}"
UC = UE + "/claims/{claim_number}"

# (method, page template under /ui) -> the API route (method, template) it stands for
PAGES: dict[tuple[str, str], tuple[str, str] | str] = {
    ("GET", "/signin"): PUBLIC_PAGE,
    ("POST", "/signin"): PUBLIC_PAGE,
    ("POST", "/signout"): SIGNED_IN,
    ("GET", "/"): SIGNED_IN,
    # billing staff
    ("GET", "/claims"): ("GET", "/claims"),
    ("GET", "/payers"): ("GET", "/payers/balances"),
    ("GET", "/payers/explain"): ("GET", "/payers/balances"),
    ("GET", "/x12"): ("POST", "/remittances"),
    ("POST", "/x12"): ("POST", "/remittances"),
    ("GET", "/exceptions"): ("GET", "/exceptions"),
    ("POST", "/exceptions/{exception_id}/resolve"):
        ("POST", "/exceptions/{exception_id}/resolve"),
    ("GET", UE): ("GET", E),
    ("GET", UC): ("GET", E + "/claims/{claim_number}"),
    ("POST", UE + "/lines"): ("POST", E + "/lines"),
    ("POST", UE + "/lines/{line_no}/revise"): ("POST", E + "/lines/{line_no}/revise"),
    ("POST", UE + "/diagnoses/{position}/revise"):
        ("POST", E + "/diagnoses/{position}/revise"),
    ("POST", UE + "/claims"): ("POST", E + "/claims"),
    ("POST", UC + "/scrub"): ("POST", E + "/claims/{claim_number}/scrub"),
    ("POST", UC + "/submit"): ("POST", E + "/claims/{claim_number}/submit"),
    ("POST", UE + "/patient-payments"): ("POST", E + "/patient-payments"),
    ("POST", UE + "/write-offs"): ("POST", E + "/write-offs"),
    # auditors
    ("GET", UE + "/timeline"): ("GET", E + "/history"),
    ("GET", UE + "/diff"): ("GET", E + "/diff"),
    ("GET", UE + "/access"): ("GET", "/audit/access"),
    ("GET", "/code-revisions"): ("GET", "/trends/code-revisions"),
    ("GET", "/verify"): ("GET", "/audit/verify"),
    # advocates (and anyone who may read the encounter)
    ("GET", "/disputes"): ("GET", "/queues/disputes-denials"),
    ("GET", UE + "/disputes/{dispute_id}"): ("GET", E),
    ("GET", UE + "/statement"): ("GET", E),
    # every number explained
    ("GET", UE + "/explain"): ("GET", E + "/explain"),
}


SESSION_LIFETIME = timedelta(hours=8)


def sessions(request: Request) -> SessionStore:
    """The session store on the app's connection pool (made on first use)."""
    state = request.app.state
    store = getattr(state, "ui_sessions", None)
    if store is None or store.pool is not state.pool:
        store = state.ui_sessions = SessionStore(state.pool, SESSION_LIFETIME)
    return store


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def may(role: str, page: tuple[str, str] | str) -> bool:
    """Whether ``role`` may use a page (for showing or hiding links and forms)."""
    if page in (PUBLIC_PAGE, SIGNED_IN):
        return True
    assert isinstance(page, tuple)
    return allowed(page[0], page[1], role)


def may_page(role: str, method: str, template: str) -> bool:
    return may(role, PAGES[(method, template)])


def check_table() -> list[tuple[str, str]]:
    """Pages whose API route is not in the permission table (must be empty)."""
    return [k for k, v in PAGES.items() if isinstance(v, tuple) and v not in PERMISSIONS]


async def gate(request: Request) -> None:
    """The workbench's one entrance check, run before every page (a sub-app dependency)."""
    route = request.scope.get("route")
    method = "GET" if request.method == "HEAD" else request.method
    rule = PAGES.get((method, getattr(route, "path", "")))
    if rule is None:
        raise HTTPException(403, "this page is not in the permission table")
    if rule == PUBLIC_PAGE:
        return
    store = sessions(request)
    session: Session | None = await run_in_threadpool(store.get, request.cookies.get(COOKIE))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(quote(target, safe=""))
    request.state.identity = session.identity
    request.state.session = session
    if not may(session.identity.role, rule):
        raise HTTPException(403, f"role {session.identity.role} may not use this page")
    if method == "POST":
        form = await request.form()
        token = form.get("csrf_token")
        if not session.csrf_ok(token if isinstance(token, str) else None):
            raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the "
                                "page and try again")
