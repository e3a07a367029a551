"""The workbench in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium,
installed by .ci/run) against the real app under uvicorn, with every request that is not to
the loopback server aborted (nothing may come from a CDN). One server and one browser for the
module; a fresh browser context (cookie jar) per test. Screenshots of every page visited go to
``tests/output/browser/`` (or ``$LEDGER_TEST_OUTPUT``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psycopg
import pytest

from ledger.config import Settings
from tests.api.conftest import LiveServer, provision, token_for
from tests.conftest import LEDGER_TABLES_SQL
from tests.ui.seed import seed

pytestmark = pytest.mark.postgres

CHROMIUM = os.environ.get("LEDGER_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(os.environ.get("LEDGER_TEST_OUTPUT",
                             Path(__file__).resolve().parents[1] / "output")) / "browser"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(LEDGER_TABLES_SQL)]
        conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) +
                     " RESTART IDENTITY CASCADE")
    provision(database_url)
    live = LiveServer(Settings(database_url=database_url, cache_size=0))
    live.start()
    try:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            data = seed(http)
        yield live, data
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium "
                    "(.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM,
                                      args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, request) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def only_loopback(route) -> None:
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    pg = context.new_page()
    pg.blocked = blocked
    pg.base = server[0].url
    yield pg
    context.close()


UNLABELLED = """Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button'))
  .filter(e => e.tagName === 'BUTTON' ? !e.textContent.trim()
                                      : e.labels.length === 0 && !e.getAttribute('aria-label'))
  .map(e => e.outerHTML.slice(0, 80))"""


def shot(page, name: str, *, full: bool = True, ours: bool = True) -> None:
    """Save a screenshot; on the workbench's own pages, also check that every field has a
    label and every button a name."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=full)
    if ours:
        assert page.evaluate(UNLABELLED) == [], name


def sign_in(page, actor: str) -> None:
    page.goto(page.base + "/ui/claims")  # a page that needs a session: sent to sign-in
    assert "/ui/signin" in page.url
    page.get_by_label("API token").fill(token_for(actor))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert "/ui/claims" in page.url or "/ui/" in page.url
    assert page.locator(".who").inner_text().startswith(actor)


def money(text: str) -> Decimal:
    value = Decimal(re.sub(r"[^0-9.]", "", text))
    return -value if text.strip().startswith("-") else value


@pytest.mark.parametrize("actor,role", [("biller-1", "biller"), ("auditor-1", "auditor"),
                                        ("advocate-1", "advocate"), ("coder-a", "coder"),
                                        ("admin-1", "admin")])
def test_sign_in_as_each_role(page, actor, role):
    sign_in(page, actor)
    page.goto(page.base + "/ui/")
    assert page.locator(".who").inner_text() == f"{actor} ({role})"
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Payer balances").count() == (
        0 if role in ("advocate", "admin") else 1)  # the API's GET /payers/balances roles
    shot(page, f"home-{role}")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/signin")
    page.goto(page.base + "/ui/")
    assert "/ui/signin" in page.url  # signed out for real
    assert not page.blocked


def test_biller_finds_a_claim_by_number_and_posts_a_patient_payment(page, server):
    _, data = server
    sign_in(page, "biller-1")
    page.goto(page.base + "/ui/claims")
    shot(page, "claims-search")
    page.get_by_label("Claim number").fill(data["claim"])
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"claim_number=" + data["claim"]))  # filters in the URL
    shot(page, "claims-found")
    page.get_by_role("link", name=data["claim"]).click()
    page.wait_for_selector("#claim-number")
    shot(page, "claim")
    shot(page, "readme-claim", full=False)  # the README's picture (docs/workbench-claim.png)
    due = money(page.locator('#balances td[data-bucket="patient"]').inner_text())
    page.get_by_label("Amount (USD)").first.fill("10.00")
    page.get_by_role("button", name="Post payment").click()
    page.wait_for_selector(".note")
    assert "Done: payment" in page.locator(".note").inner_text()
    after = money(page.locator('#balances td[data-bucket="patient"]').inner_text())
    assert after == due - Decimal("10.00")
    shot(page, "claim-after-payment")
    # the domain's refusal, next to the field it names
    page.get_by_label("Amount (USD)").first.fill("0")
    page.get_by_role("button", name="Post payment").click()
    error = page.locator("#payment-amount-error")
    error.wait_for()
    assert "amount" in error.inner_text()
    shot(page, "claim-payment-refused")
    assert not page.blocked


def test_auditor_moves_the_version_slider_back_then_opens_the_diff(page, server):
    _, data = server
    sign_in(page, "auditor-1")
    page.goto(page.base + f"/ui/encounters/{data['audit']}/timeline")
    assert page.locator("#asof-diagnoses").inner_text().strip() == "R10.31"
    shot(page, "timeline-now")
    slider = page.get_by_label(re.compile(r"^Version"))
    slider.focus()
    with page.expect_navigation():
        page.keyboard.press("ArrowLeft")  # keyboard only: one version back
    assert "version=3" in page.url
    assert page.locator("#asof-diagnoses").inner_text().strip() == "R10.9"
    assert page.locator("#shown-version").inner_text() == "3"
    shot(page, "timeline-version-3")
    page.get_by_role("button", name="Show differences").click()
    page.wait_for_selector("#diff-coding")
    assert page.locator("#diff-coding del.code").inner_text() == "R10.9"
    assert page.locator("#diff-coding ins.code").inner_text() == "R10.31"
    assert "specificity" in page.content()
    shot(page, "diff")
    page.goto(page.base + f"/ui/encounters/{data['audit']}/access")
    assert page.locator("#access tbody tr").count() >= 2  # the reads just made
    shot(page, "access-log")
    page.goto(page.base + "/ui/verify")
    shot(page, "verify")
    assert not page.blocked


def test_advocate_sees_only_granted_encounters(page, server):
    _, data = server
    sign_in(page, "advocate-1")
    page.goto(page.base + "/ui/disputes")
    page.get_by_role("link", name=data["dispute"]).click()
    page.wait_for_selector("#dispute-status")
    assert "receipt requested" in page.content()
    shot(page, "dispute")
    page.get_by_role("link", name="The patient's statement lines").click()
    page.wait_for_selector("#statement-lines")
    shot(page, "statement")
    response = page.goto(page.base + f"/ui/encounters/{data['other']}")
    assert response.status == 404
    shot(page, "advocate-not-found")
    assert not page.blocked


def test_an_explanations_parts_sum_to_the_figure_shown(page, server):
    _, data = server
    sign_in(page, "biller-1")
    page.goto(page.base + f"/ui/encounters/{data['s1']}/claims/{data['claim']}")
    for figure in ("balance:primary", "balance:patient", f"claim:{data['claim']}:paid"):
        link = page.locator(f'a.money[data-figure="{figure}"]').first
        shown = money(link.inner_text())
        link.click()
        page.wait_for_selector("#explain-parts")
        parts = [Decimal(a) for a in page.locator("#explain-parts td.part").evaluate_all(
            "cells => cells.map(c => c.dataset.amount)")]
        assert parts, figure
        assert sum(parts) == shown == money(page.locator("#figure-value").inner_text())
        shot(page, "explain-" + figure.replace(":", "-"))
        if figure == "balance:primary":
            shot(page, "readme-explain", full=False)  # docs/workbench-explain.png
        page.go_back()
    assert not page.blocked


def test_a_form_without_its_csrf_token_is_refused(page, server):
    _, data = server
    sign_in(page, "biller-1")
    page.goto(page.base + f"/ui/encounters/{data['s1']}/claims/{data['claim']}")
    page.evaluate("document.querySelector('#payment-form input[name=csrf_token]').remove()")
    page.get_by_label("Amount (USD)").first.fill("1.00")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Post payment").click()
    assert nav.value.status == 403
    assert "CSRF" in page.content()
    shot(page, "csrf-refused")


def test_docs_render_with_the_outside_network_blocked(page):
    page.goto(page.base + "/docs")
    title = page.locator(".swagger-ui .info .title")
    title.wait_for(state="visible", timeout=20000)
    assert "Claims ledger" in title.inner_text()
    assert page.locator(".opblock").count() > 10  # the operations are listed
    shot(page, "docs", full=False, ours=False)
    assert page.blocked == []  # nothing even tried to leave the machine
    # and the block is real: a request to the outside (from a page without our CSP, which
    # would refuse it first) reaches the route and is aborted there
    blank = page.context.new_page()
    outcome = blank.evaluate("fetch('https://cdn.example.org/x.js', {mode: 'no-cors'})"
                             ".then(() => 'loaded', () => 'refused')")
    assert outcome == "refused" and page.blocked == ["https://cdn.example.org/x.js"]
