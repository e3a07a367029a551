"""The workbench over HTTP (no browser): sign-in sessions, CSRF, the permission table, the
advocate's scope, forms running the API's commands, explanations that sum, CSV, offline docs."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from api.ui.gate import PAGES, check_table
from tests.api.conftest import token_for
from tests.ui.seed import BILLER, seed

pytestmark = pytest.mark.postgres


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client, actor: str) -> None:
    client.cookies.clear()
    form = client.get("/ui/signin")
    assert form.status_code == 200
    r = client.post("/ui/signin", data={"token": token_for(actor),
                                        "csrf_token": csrf_of(form.text)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie


@pytest.fixture
def data(client):
    return seed(client)


def test_every_page_uses_a_route_of_the_permission_table():
    assert check_table() == []
    assert len(PAGES) > 20


def test_root_redirects_and_pages_need_a_session(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/ui/"
    r = client.get("/ui/claims?status=paid", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/ui/signin?next=%2Fui%2Fclaims")


def test_wrong_token_is_refused_and_sign_out_ends_the_session(client):
    form = client.get("/ui/signin")
    r = client.post("/ui/signin", data={"token": "lgr_t-biller-1.wrong-secret-xxxxxxxxxxxx",
                                        "csrf_token": csrf_of(form.text)})
    assert r.status_code == 401 and "not valid" in r.text
    sign_in(client, "biller-1")
    page = client.get("/ui/")
    assert page.status_code == 200 and "biller-1" in page.text
    old = client.cookies.get("ledger_session", path="/ui")
    assert old
    r = client.post("/ui/signout", data={"csrf_token": csrf_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["set-cookie"].startswith("ledger_session=")  # the cookie is cleared
    client.cookies.set("ledger_session", old, path="/ui")
    r = client.get("/ui/", follow_redirects=False)
    assert r.status_code == 303  # the old cookie no longer signs anyone in


def test_sign_in_without_csrf_is_refused(client):
    client.get("/ui/signin")
    r = client.post("/ui/signin", data={"token": token_for("biller-1")})
    assert r.status_code == 403


def test_forms_without_csrf_are_refused_and_write_nothing(client, data):
    sign_in(client, "biller-1")
    url = f"/ui/encounters/{data['s1']}/patient-payments"
    before = client.get(f"/encounters/{data['s1']}", headers=BILLER).json()["version"]
    r = client.post(url, data={"amount": "10.00", "method": "card", "received_on": "2026-05-01"})
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post(url, data={"amount": "10.00", "method": "card", "received_on": "2026-05-01",
                               "csrf_token": "forged"})
    assert r.status_code == 403
    assert client.get(f"/encounters/{data['s1']}", headers=BILLER).json()["version"] == before


def test_biller_posts_a_payment_and_a_refusal_names_the_field(client, data):
    sign_in(client, "biller-1")
    claim_url = f"/ui/encounters/{data['s1']}/claims/{data['claim']}"
    page = client.get(claim_url)
    assert page.status_code == 200 and "S1-0001" in page.text
    token = csrf_of(page.text)
    url = f"/ui/encounters/{data['s1']}/patient-payments"
    bad = client.post(url, data={"amount": "-5", "method": "card", "received_on": "2026-05-01",
                                 "csrf_token": token, "next": claim_url})
    assert bad.status_code == 422
    assert 'id="payment-amount-error"' in bad.text  # shown next to the amount field
    r = client.post(url, data={"amount": "12.50", "method": "card",
                               "received_on": "2026-05-01", "csrf_token": token,
                               "next": claim_url}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(claim_url)
    enc = client.get(f"/encounters/{data['s1']}", headers=BILLER).json()
    assert enc["patient_paid"] == "12.50" and enc["balances"]["patient"] == "17.50"


def test_roles_follow_the_permission_table(client, data):
    sign_in(client, "advocate-1")
    assert client.get("/ui/payers").status_code == 403  # STAFF_READERS only
    assert client.get(f"/ui/encounters/{data['s1']}/access").status_code == 403
    sign_in(client, "coder-a")
    page = client.get(f"/ui/encounters/{data['s1']}/claims/{data['claim']}")
    r = client.post(f"/ui/encounters/{data['s1']}/patient-payments",
                    data={"amount": "1.00", "method": "card", "received_on": "2026-05-01",
                          "csrf_token": csrf_of(page.text)})
    assert r.status_code == 403  # coders may not post payments, in the API or here


def test_advocate_sees_only_granted_encounters(client, data):
    sign_in(client, "advocate-1")
    assert client.get(f"/ui/encounters/{data['s1']}").status_code == 200
    for path in ("", "/timeline", "/statement", "/explain?figure=balance:patient"):
        r = client.get(f"/ui/encounters/{data['other']}{path}")
        assert r.status_code == 404, (path, r.status_code)
    listing = client.get("/ui/claims")
    assert "S1-0001" in listing.text
    disputes = client.get("/ui/disputes")
    assert data["dispute"] in disputes.text
    page = client.get(f"/ui/encounters/{data['s1']}/disputes/{data['dispute']}")
    assert page.status_code == 200 and "receipt requested" in page.text
    sign_in(client, "advocate-2")
    assert client.get(f"/ui/encounters/{data['s1']}").status_code == 404
    assert "S1-0001" not in client.get("/ui/claims").text


def test_page_reads_are_in_the_read_access_log(client, data):
    sign_in(client, "auditor-1")
    client.get(f"/ui/encounters/{data['s1']}/claims/{data['claim']}")
    page = client.get(f"/ui/encounters/{data['s1']}/access")
    assert page.status_code == 200
    rows = client.get("/audit/access", params={"encounter_id": data["s1"]},
                      headers={"Authorization": f"Bearer {token_for('auditor-1')}"}).json()
    routes = {(r["actor"], r["route"]) for r in rows["items"]}
    assert ("auditor-1", "/encounters/{encounter_id}/claims/{claim_number}") in routes


def test_explanations_sum_to_the_figure_as_json_and_page(client, data):
    auth = {"Authorization": f"Bearer {token_for('biller-1')}"}
    enc = client.get(f"/encounters/{data['s1']}", headers=auth).json()
    checks = {"balance:patient": enc["balances"]["patient"],
              "balance:primary": enc["balances"]["primary"],
              "claim:S1-0001:paid": enc["claims"][0]["paid"],
              "line:1:paid": enc["lines"][0]["paid"], "total_charge": enc["total_charge"]}
    for figure, shown in checks.items():
        r = client.get(f"/encounters/{data['s1']}/explain", params={"figure": figure},
                       headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["value"] == shown
        assert sum(Decimal(p["amount"]) for p in body["parts"]) == Decimal(shown), figure
    body = client.get(f"/encounters/{data['s1']}/explain",
                      params={"figure": "balance:patient"}, headers=auth).json()
    assert [(p["event"], p["amount"], p["sign"]) for p in body["parts"]] == [
        ("PatientResponsibilityAssigned", "30.00", "+")]
    assert body["parts"][0]["detail"] == "claim S1-0001: copay 30.00 to patient"
    body = client.get(f"/encounters/{data['s1']}/explain",
                      params={"figure": "claim:S1-0001:paid"}, headers=auth).json()
    assert [p["event"] for p in body["parts"]] == ["ClaimAdjudicated"]
    assert body["parts"][0]["effective_date"] == "2026-04-20"
    r = client.get(f"/encounters/{data['s1']}/explain", params={"figure": "nonsense"},
                   headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "figure"
    sign_in(client, "biller-1")
    page = client.get(f"/ui/encounters/{data['s1']}/explain?figure=balance:primary")
    amounts = [Decimal(a) for a in re.findall(r'class="num part" data-amount="([^"]+)"',
                                              page.text)]
    assert amounts and sum(amounts) == Decimal(enc["balances"]["primary"])


def test_claim_search_filters_pages_and_csv(client, data):
    sign_in(client, "biller-1")
    r = client.get("/ui/claims", params={"claim_number": "S1-0001"})
    assert r.status_code == 200 and "S1-0001" in r.text
    assert "No claims match" in client.get("/ui/claims", params={"claim_number": "NOPE"}).text
    assert "S1-0001" in client.get("/ui/claims", params={"payer_id": "PAYER-A",
                                                          "status": "paid"}).text
    assert "No claims match" in client.get("/ui/claims", params={"outstanding": "true"}).text
    assert client.get("/ui/claims", params={"status": "bogus"}).status_code == 422
    # the search form sends empty date fields: they mean "any"; a bad date is named
    r = client.get("/ui/claims", params={"claim_number": "S1-0001", "dos_from": "",
                                         "dos_to": ""})
    assert r.status_code == 200 and "S1-0001" in r.text
    r = client.get("/ui/claims", params={"dos_from": "2026-13-45"})
    assert r.status_code == 422 and 'id="f-dos_from-error"' in r.text
    r = client.get("/ui/claims", params={"dos_from": "2026-03-11"})
    assert "No claims match" in r.text  # service on 2026-03-10 only
    csv = client.get("/ui/claims", params={"claim_number": "S1-0001", "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[1].startswith("S1-0001,")
    for url in ("/ui/payers", f"/ui/encounters/{data['s1']}/timeline",
                f"/ui/encounters/{data['s1']}/statement", "/ui/disputes"):
        assert client.get(url, params={"format": "csv"}).status_code == 200, url


def test_auditor_timeline_as_of_and_diff(client, data):
    sign_in(client, "auditor-1")
    eid = data["audit"]
    now = client.get(f"/ui/encounters/{eid}/timeline")
    assert "R10.31" in now.text and "specificity" in now.text
    assert "diagnosis 1: R10.9 → R10.31" in now.text  # what the event did
    then = client.get(f"/ui/encounters/{eid}/timeline", params={"version": 2})
    asof = then.text.split('id="asof-diagnoses"')[1].split("</ol>")[0]
    assert "R10.9" in asof and "R10.31" not in asof
    later = client.get(f"/ui/encounters/{eid}/timeline", params={"as_of": "2100-01-01T00:00:00"})
    assert 'id="shown-version">4<' in later.text  # a moment: the version recorded by then
    before = client.get(f"/ui/encounters/{eid}/timeline", params={"as_of": "2000-01-01T00:00"})
    assert before.status_code == 404 and "did not exist yet" in before.text
    diff = client.get(f"/ui/encounters/{eid}/diff", params={"from_version": 2,
                                                            "to_version": 4})
    assert "<del class=\"code\">R10.9</del>" in diff.text
    assert "<ins class=\"code\">R10.31</ins>" in diff.text
    assert client.get("/ui/code-revisions").status_code == 200
    verify = client.get("/ui/verify", params={"encounter_id": eid})
    assert verify.status_code == 200 and "Verified" in verify.text


def test_docs_and_redoc_use_vendored_assets(client):
    for path, asset in (("/docs", "/ui/static/vendor/swagger-ui/swagger-ui-bundle.js"),
                        ("/redoc", "/ui/static/vendor/redoc/redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200 and asset in page.text
        assert "http://" not in page.text and "https://" not in page.text
        assert client.get(asset).status_code == 200


def test_x12_upload_shows_the_import_report(client):
    from tests.conftest import FIXTURES

    sign_in(client, "biller-1")
    token = csrf_of(client.get("/ui/x12").text)
    claims = (FIXTURES / "scenarios/s01_original_freq1.837p").read_bytes()
    r = client.post("/ui/x12", data={"kind": "837", "csrf_token": token},
                    files={"file": ("s01.837p", claims, "text/plain")})
    assert r.status_code == 200 and "Import report: imported" in r.text
    bad = (FIXTURES / "x12/linuxforhealth-x12/835_005010X221A1__tertiary-payment.835"
           ).read_bytes()
    r = client.post("/ui/x12", data={"kind": "835", "csrf_token": token},
                    files={"file": ("bad.835", bad, "text/plain")})
    assert r.status_code == 422 and "quarantined" in r.text and "835.line_balance" in r.text
    r = client.post("/ui/x12", data={"kind": "835"},
                    files={"file": ("bad.835", bad, "text/plain")})
    assert r.status_code == 403  # no CSRF token, nothing imported
    sign_in(client, "coder-a")
    assert client.get("/ui/x12").status_code == 403  # the API's POST /remittances: billers


def test_sessions_expire_and_end_with_their_token(client, settings):
    from datetime import timedelta

    from api.ui.sessions import SessionStore
    from ledger.application.idempotency import new_pool
    from ledger.auth.tokens import Identity

    pool = new_pool(settings.database_url, max_size=2)
    try:
        identity = Identity("biller-1", "biller", "t-biller-1")
        expired, _ = SessionStore(pool, timedelta(seconds=-1)).start(identity)
        store = SessionStore(pool, timedelta(hours=1))
        assert store.get(expired) is None
        live, session = store.start(identity)
        assert store.get(live) == session and session.csrf_ok(session.csrf_token)
        assert not session.csrf_ok("") and not session.csrf_ok(None)
        with pool.connection() as conn:  # only a hash of the session id is stored
            stored = [r[0] for r in conn.execute("SELECT session_hash FROM ledger_ui_sessions")]
        assert live not in stored and len(stored) == 2
        admin = {"Authorization": f"Bearer {token_for('admin-1')}"}
        assert client.post("/admin/tokens/t-biller-1/revoke", headers=admin).status_code == 200
        assert store.get(live) is None  # revoking the token ends its sessions
    finally:
        pool.close()


def test_every_figure_explained_equals_the_encounter_view(client, data):
    """The explanation's value is the figure the pages show, for every figure of every
    encounter, at the current version and at every earlier one."""
    from ledger.explain import explain, figures_of
    from ledger.views import claim_view, encounter_view

    ledger = client.app.state.ledger
    for eid in (data["s1"], data["audit"]):
        history = ledger.history(eid)
        for version in range(1, len(history) + 1):
            enc = ledger.get_encounter(eid, version=version)
            view = encounter_view(enc)
            shown = {"total_charge": view["total_charge"], "patient_paid": view["patient_paid"],
                     "refunded": view["refunded"], "written_off": view["written_off"]}
            shown |= {f"balance:{b}": v for b, v in view["balances"].items()}
            for c in enc.claims.values():
                cv = claim_view(enc, c)
                shown |= {f"claim:{c.number}:{k}": cv[k] for k in
                          ("charge", "paid", "allowed", "patient_responsibility")}
            for ln in view["lines"]:
                shown |= {f"line:{ln['line_no']}:paid": ln["paid"],
                          f"line:{ln['line_no']}:allowed": ln["allowed"]}
            assert set(shown) <= set(figures_of(enc))  # every figure shown has a link
            for figure, value in shown.items():
                result = explain(history, figure, as_of_version=version)
                assert result["value"] == value, (eid, version, figure)
                assert sum((p["amount"] for p in result["parts"]),
                           start=type(value).zero()) == value


def test_templates_and_assets_ship_in_the_wheel():
    """Every template and static file matches the package-data patterns in pyproject.toml."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["api.ui"]
    base = root / "api" / "ui"
    files = [p.relative_to(base).as_posix() for sub in ("templates", "static")
             for p in (base / sub).rglob("*") if p.is_file()]
    assert len(files) > 20
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) and
                                           f.count("/") == pat.count("/") for pat in patterns)]
    assert not missing, missing


def test_exceptions_page_lists_the_open_queue(client, settings):
    """The page reads the same queue as GET /exceptions (ledger.x12.exceptions)."""
    from decimal import Decimal

    import psycopg

    from ledger.x12.exceptions import RaisedException, write_raised

    sign_in(client, "biller-1")
    with psycopg.connect(settings.database_url, autocommit=True) as conn, \
            conn.cursor() as curs:
        write_raised(curs, [RaisedException(
            kind="duplicate_payment", rule="835.duplicate_payment", key="ui-test|CLM-UI-1",
            claim_number="CLM-UI-1", payer_id="PAYER-UI", trace_number="TRN-UI-1",
            amount=Decimal("98.50"))])
    page = client.get("/ui/exceptions")
    assert "duplicate_payment" in page.text and "TRN-UI-1" in page.text
    import csv
    import io

    rows = list(csv.reader(io.StringIO(client.get("/ui/exceptions",
                                                  params={"format": "csv"}).text)))
    header = rows[0]
    line = next(r for r in rows[1:] if "TRN-UI-1" in r)
    assert line[header.index("amount")] == "98.50"
    assert line[header.index("claim_number")] == "CLM-UI-1"
    sign_in(client, "advocate-1")
    assert client.get("/ui/exceptions").status_code == 403


def test_biller_works_an_exception_from_the_queue(client, settings):
    """Resolving from the page appends a resolution event (as POST /exceptions/{id}/resolve
    does); a missing reason is refused next to its field and records nothing."""
    from decimal import Decimal

    import psycopg

    from ledger.x12.exceptions import RaisedException, write_raised

    raised = RaisedException(kind="unposted_plb", rule="plb.claim_unknown",
                             key="ui-test|PLB-WO-1", claim_number="CLM-UI-9",
                             payer_id="PAYER-UI", trace_number="TRN-UI-9",
                             amount=Decimal("12.00"))
    with psycopg.connect(settings.database_url, autocommit=True) as conn, \
            conn.cursor() as curs:
        write_raised(curs, [raised])
    sign_in(client, "biller-1")
    page = client.get("/ui/exceptions")
    token = csrf_of(page.text)
    url = f"/ui/exceptions/{raised.exception_id}/resolve"
    bad = client.post(url, data={"action": "dismissed", "reason": "", "csrf_token": token})
    assert bad.status_code == 422
    assert f'id="resolve-{raised.exception_id}-reason-error"' in bad.text
    r = client.post(url, data={"action": "dismissed", "reason": "payer confirmed no recoupment",
                               "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "TRN-UI-9" not in client.get("/ui/exceptions").text  # no longer open
    done = client.get("/exceptions", params={"status": "resolved"}, headers=BILLER).json()
    mine = [e for e in done["exceptions"] if e["exception_id"] == str(raised.exception_id)]
    assert [(e["resolution"], e["resolved_by"]) for e in mine] == [("dismissed", "biller-1")]


def test_csv_cells_cannot_become_spreadsheet_formulas():
    from api.ui.pages import _cell
    from ledger.domain.values import Money

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("@x") == "'@x"
    assert _cell(Money.parse("-5.00")) == Money.parse("-5.00") and _cell("S1-0001") == "S1-0001"


def test_the_session_cookie_is_secure_over_tls(settings):
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings), base_url="https://testserver") as tls:
        form = tls.get("/ui/signin")
        r = tls.post("/ui/signin", data={"token": token_for("auditor-1"),
                                         "csrf_token": csrf_of(form.text)},
                     follow_redirects=False)
        assert r.status_code == 303
        assert "; Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


def test_a_form_write_sets_the_position_cookie_the_read_model_pages_wait_for(
        client, data, settings):
    sign_in(client, "biller-1")
    claim_url = f"/ui/encounters/{data['s1']}/claims/{data['claim']}"
    token = csrf_of(client.get(claim_url).text)
    runner = client.app.state.projection_runner
    runner.stop()  # the read models stop moving
    try:
        r = client.post(f"/ui/encounters/{data['s1']}/patient-payments",
                        data={"amount": "2.00", "method": "card", "received_on": "2026-05-01",
                              "csrf_token": token, "next": claim_url}, follow_redirects=False)
        assert r.status_code == 303
        position = int(r.headers["X-Log-Position"])
        assert f"ledger_min_position={position};" in r.headers["set-cookie"]
        settings.wait_timeout = 0.3
        # the payers page (a read model) waits for the write, as the API's reads do
        assert client.get("/ui/payers").status_code == 503
        client.cookies.delete("ledger_min_position")
        assert client.get("/ui/payers").status_code == 200  # no cookie: no wait
        client.cookies.set("ledger_min_position", str(position))
    finally:
        runner.start()
    settings.wait_timeout = 10.0
    assert client.get("/ui/payers").status_code == 200
