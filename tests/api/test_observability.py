"""/metrics and JSON logs (issue 17, item 4), through the real app on the test database:
metric names and labels, route templates (never raw paths), no PHI in either; the request id
taken from X-Request-ID, returned, and carried by every log line of the request."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from ledger import logs
from ledger.config import Settings
from tests.api.conftest import headers

pytestmark = pytest.mark.postgres

# PHI-looking values sent in bodies, paths and query strings: none may reach metrics or logs.
PATIENT = "PT-SECRETPHI-7731"
MEMBER = "MEMBERSECRET9913"

OPEN = {"facility_id": "FAC-01", "patient_ref": PATIENT, "service_from": "2026-03-10",
        "place_of_service": "11",
        "responsible_parties": [{"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A",
                                 "member_id": MEMBER}, {"bucket": "patient", "kind": "patient"}]}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"projections_in_process": True}))
                    ) as c:
        yield c


def _route_templates(app) -> set[str]:
    """Every route template the app serves: the API's (its OpenAPI paths), plain routes and
    the workbench's, mounted under /ui."""
    from starlette.routing import Mount

    def walk(routes, prefix: str) -> set[str]:
        found: set[str] = set()
        for route in routes:
            path = getattr(route, "path", None)
            if isinstance(route, Mount):
                found |= walk(route.routes, prefix + route.path)
            elif isinstance(path, str):
                found.add(prefix + path)
            elif getattr(route, "original_router", None) is not None:  # an included router
                inner = route.include_context.prefix
                found |= walk(route.original_router.routes, prefix + inner)
        return found

    return set(app.openapi()["paths"]) | walk(app.routes, "")


def _traffic(client: TestClient) -> str:
    biller = headers("biller-1", "biller")
    r = client.post("/encounters", json=OPEN, headers={**biller, "X-Request-ID": "req-open-1"})
    assert r.status_code == 201, r.text
    eid = r.json()["encounter_id"]
    coder = headers("coder-a", "coder")
    assert client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"},
                       headers=coder).status_code in (200, 201)
    # a refusal whose body carries the PHI-looking value in a bad field
    bad = {**OPEN, "service_from": PATIENT}
    assert client.post("/encounters", json=bad, headers=biller).status_code == 422
    # read as a client that keeps no position cookie: one test runs no projections, and the
    # cookie would make /claims wait for them (api.deps.read_position)
    client.cookies.clear()
    assert client.get(f"/encounters/{eid}", headers=biller).status_code == 200
    assert client.get(f"/encounters/{PATIENT}", headers=biller).status_code in (404, 422)
    assert client.get(f"/no/such/{PATIENT}", headers=biller).status_code == 404
    assert client.get("/claims", params={"patient_ref": PATIENT},
                      headers=biller).status_code in (200, 404, 422)
    assert client.get("/encounters", headers={"Authorization": "Bearer lgr_x.bad"}
                      ).status_code in (401, 405)
    assert client.get("/ui/signin").status_code == 200  # a workbench page (mounted app)
    return eid


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_names_labels_and_no_phi(client):
    eid = _traffic(client)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert PATIENT not in text and MEMBER not in text and eid not in text
    fam = _families(text)
    for name in ("ledger_http_request_duration_seconds", "ledger_writer_batch_commands",
                 "ledger_writer_commit_seconds", "ledger_projection_lag_events",
                 "ledger_projection_position", "ledger_unsealed_events", "ledger_log_head",
                 "ledger_x12_import_outcomes", "ledger_exceptions_open",
                 "ledger_db_pool_connections", "ledger_database_up"):
        assert name in fam, name
    requests = [s for s in fam["ledger_http_request_duration_seconds"].samples
                if s.name.endswith("_count")]
    seen = {(s.labels["method"], s.labels["route"], s.labels["status"]) for s in requests}
    assert ("POST", "/encounters", "201") in seen
    assert ("POST", "/encounters", "422") in seen
    assert ("GET", "/encounters/{encounter_id}", "200") in seen
    assert ("GET", "<unmatched>", "404") in seen
    # a page of the workbench (mounted at /ui) is labelled with its mount, not its inner path
    assert ("GET", "/ui/signin", "200") in seen
    templates = _route_templates(client.app)
    for s in requests:  # every route label is a template or <unmatched>, never a raw path
        assert set(s.labels) == {"method", "route", "status"}
        assert s.labels["route"] in templates | {"<unmatched>"}, s
    batches = [s for s in fam["ledger_writer_batch_commands"].samples
               if s.name.endswith("_count")]
    assert batches and batches[0].value >= 2  # the open and the diagnosis were saved
    head = fam["ledger_log_head"].samples[0].value
    assert head >= 2
    lags = {s.labels["projection"]: s.value for s in fam["ledger_projection_lag_events"].samples}
    assert set(lags) == {"claims", "audit", "trends"}
    assert all(0 <= v <= head for v in lags.values())
    unsealed = fam["ledger_unsealed_events"].samples[0].value
    assert 0 <= unsealed <= head
    pools = {(s.labels["pool"], s.labels["state"]) for s in
             fam["ledger_db_pool_connections"].samples}
    assert {("api", "in_use"), ("api", "max"), ("events", "idle")} <= pools
    assert fam["ledger_database_up"].samples[0].value == 1
    # /metrics is not itself an audited read and needs no token
    assert client.get("/metrics").status_code == 200


@pytest.fixture
def writers_do_not_seal(monkeypatch):
    """Batches committed without a seal (LEDGER_SEAL_PER_BATCH=0): the checkpoint job seals."""
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_SEAL_PER_BATCH", "0")
    get_settings.cache_clear()


def test_sealed_per_batch_no_backlog(client):
    """With per-batch sealing (the default) every committed batch is signed in its transaction
    or, a lone command's, within LEDGER_SEAL_MAX_DELAY (1 s): the backlog and the age of its
    oldest event show in /metrics until then, and fall to 0."""
    import time

    _traffic(client)
    fam = _families(client.get("/metrics").text)
    assert fam["ledger_log_head"].samples[0].value > 0
    assert fam["ledger_unsealed_oldest_age_seconds"].samples[0].value < 1.0 + 1.0  # + skew
    deadline = time.monotonic() + 3.0
    while fam["ledger_unsealed_events"].samples[0].value:
        assert time.monotonic() < deadline, "not sealed within the bound"
        time.sleep(0.05)
        fam = _families(client.get("/metrics").text)
    assert fam["ledger_unsealed_oldest_age_seconds"].samples[0].value == 0


def test_unsealed_backlog_and_projection_lag_follow_the_log(writers_do_not_seal, client,
                                                            clean_db):
    """The backlog counts events after the latest checkpoint; the lag counts events the
    projections have not applied (the runner is caught up here, so it falls to 0)."""
    from ledger.audit.checkpoints import generate_key
    from ledger.audit.writer import CheckpointWriter
    from ledger.config import get_settings

    _traffic(client)
    before = _families(client.get("/metrics").text)
    head = before["ledger_log_head"].samples[0].value
    assert before["ledger_unsealed_events"].samples[0].value == head  # nothing sealed yet
    writer = CheckpointWriter(clean_db, generate_key(get_settings().key_file,
                                                     overwrite=True))
    try:
        writer.run_once()
    finally:
        writer.close()
    client.app.state.projection_runner.wait(int(head), timeout=10)
    after = _families(client.get("/metrics").text)
    assert after["ledger_unsealed_events"].samples[0].value == 0
    assert after["ledger_checkpoint_tree_size"].samples[0].value == head
    assert all(s.value == 0 for s in after["ledger_projection_lag_events"].samples)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    logs.configure("INFO", "json", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if getattr(handler, "_ledger", False):
            root.removeHandler(handler)
    root.setLevel(level)


def test_logs_are_json_with_the_request_id_and_no_phi(client, json_logs):
    _traffic(client)
    r = client.get("/health", headers={"X-Request-ID": "probe-42"})
    assert r.headers["x-request-id"] == "probe-42"
    generated = client.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated)
    # a header that is not a plain token is replaced, not logged
    odd = client.get("/health", headers={"X-Request-ID": f"name {PATIENT}"})
    assert PATIENT not in odd.headers["x-request-id"]
    client.app.state.ledger  # noqa: B018 - the app is still up: flush happens per record
    text = json_logs.getvalue()
    assert text.strip()
    records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert PATIENT not in text and MEMBER not in text
    access = [r for r in records if r["logger"] == "ledger.access"]
    assert {"ts", "level", "logger", "msg", "request_id", "method", "route", "status",
            "duration_ms", "actor"} <= set(access[0])
    opened = [r for r in access if r["request_id"] == "req-open-1"]
    assert [(r["method"], r["route"], r["status"]) for r in opened] == [
        ("POST", "/encounters", 201)]
    assert any(r["request_id"] == "probe-42" and r["route"] == "/health" for r in access)
    assert len({r["request_id"] for r in access}) == len(access)  # one id per request


def test_log_lines_written_inside_a_request_carry_its_id(json_logs):
    """Any logger used while a request runs (here, directly) gets the id from the context;
    an exception is logged as type and frames only (its message could quote values)."""
    log = logging.getLogger("ledger.test")
    token = logs.REQUEST_ID.set("ctx-1")
    try:
        try:
            raise ValueError(f"duplicate key (patient_ref)=({PATIENT})")
        except ValueError:
            log.exception("save failed")
    finally:
        logs.REQUEST_ID.reset(token)
    log.info("outside")
    inside, outside = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert inside["request_id"] == "ctx-1" and inside["exc_type"] == "ValueError"
    assert inside["exc_frames"] and PATIENT not in json_logs.getvalue()
    assert "request_id" not in outside


def test_ready_reports_the_unsealed_backlog(writers_do_not_seal, client):
    """/ready says how many committed events no checkpoint covers yet (here writers do not
    seal and no checkpoint job ran, so every event is in the backlog)."""
    _traffic(client)
    body = client.get("/ready").json()
    head = body["sealing"]["log_position"]
    assert head > 0 and body["sealing"]["unsealed_events"] == head
    assert body["sealing"]["per_batch"] is False


def test_ready_with_per_batch_sealing_has_no_backlog(client):
    """/ready shows the backlog (the lone commands' events waiting for the background sealer,
    and the age of the oldest) until it is sealed, within LEDGER_SEAL_MAX_DELAY."""
    import time

    _traffic(client)
    sealing = client.get("/ready").json()["sealing"]
    assert sealing["per_batch"] is True and sealing["max_delay_seconds"] == 1.0
    assert sealing["unsealed_events"] == 0 or sealing["oldest_unsealed_age_seconds"] < 2.0
    deadline = time.monotonic() + 3.0
    while sealing["unsealed_events"] or sealing["deferred_events"]:
        assert time.monotonic() < deadline, sealing
        time.sleep(0.05)
        sealing = client.get("/ready").json()["sealing"]
    assert sealing["sealed_position"] == sealing["log_position"] > 0
    assert sealing["oldest_unsealed_age_seconds"] is None
    assert sealing["oldest_deferred_seconds"] is None


def test_ready_fails_while_a_projection_lags_beyond_budget_or_is_failing(settings):
    """/ready is 503 while a projection is more than LEDGER_READY_MAX_LAG events behind, 200
    once it caught up, and 503 again (naming the event) while a projection is failing."""
    from ledger.projections.runner import ProjectionRunner, runner_env

    url = settings.database_url
    quiet = settings.model_copy(update={"projections_in_process": False, "ready_max_lag": 1})
    with TestClient(create_app(quiet)) as c:
        _traffic(c)  # events no projection has applied: lagging beyond the budget of 1
        lagging = c.get("/ready")
        assert lagging.status_code == 503
        assert any("events behind (budget 1)" in r for r in lagging.json()["reasons"])
        with ProjectionRunner(runner_env(url)) as runner:
            runner.catch_up()
        assert c.get("/ready").status_code == 200
        _traffic(c)
        head = c.get("/ready").json()["sealing"]["log_position"]
        runner = ProjectionRunner(runner_env(url), ["claims"])  # not started: claims stays
        try:                                                   # behind, and failed on `head`
            runner.views["claims"].record_error(ValueError("boom"), position=head,
                                                event="DiagnosisCoded")
        finally:
            runner.close()
        failing = c.get("/ready")
        assert failing.status_code == 503
        assert any(r.startswith(f"projection claims failing at event {head} (DiagnosisCoded)")
                   for r in failing.json()["reasons"]), failing.json()["reasons"]
