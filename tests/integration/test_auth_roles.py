"""Least privilege for users and tokens (issue 14): the application role reads users and
tokens but cannot change them directly; changes go through SECURITY DEFINER functions that
accept only an enabled admin as the actor and record who did it in an append-only log."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from ledger.application.idempotency import new_pool
from ledger.auth.tokens import AuthStore
from ledger.domain.errors import RuleViolation
from tests.integration.test_chain_roles import as_role

pytestmark = pytest.mark.postgres


@pytest.fixture
def owner_store(clean_db):
    pool = new_pool(clean_db, max_size=2)
    store = AuthStore(pool)
    store.create_user("admin-1", "admin", created_by="cli")
    store.create_user("coder-a", "coder", created_by="cli")
    store.create_token("coder-a", "t", token_id="t-coder-a", secret="s" * 30)
    yield store
    pool.close()


@pytest.fixture
def app_store(clean_db, owner_store):
    pool = new_pool(as_role(clean_db, "ledger_app"), max_size=2)
    yield AuthStore(pool, cache_seconds=0)
    pool.close()


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_users SET role = 'admin' WHERE user_id = 'coder-a'",
    "UPDATE ledger_users SET disabled = false",
    "INSERT INTO ledger_users (user_id, role, created_by) VALUES ('evil', 'admin', 'x')",
    "DELETE FROM ledger_users WHERE user_id = 'admin-1'",
    "UPDATE ledger_tokens SET revoked_at = NULL",
    "INSERT INTO ledger_tokens (token_id, user_id, secret_hash) VALUES ('x', 'admin-1', 'h')",
    "DELETE FROM ledger_tokens",
    "TRUNCATE ledger_tokens CASCADE",
    "INSERT INTO ledger_auth_log (actor, action, target) VALUES ('x', 'user.create', 'y')",
    "DELETE FROM ledger_auth_log",
])
def test_the_app_role_cannot_change_users_or_tokens_directly(clean_db, owner_store,
                                                             statement):
    with psycopg.connect(as_role(clean_db, "ledger_app")) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT role FROM ledger_users WHERE user_id = 'coder-a'"
                            ).fetchone()[0] == "coder"
        assert conn.execute("SELECT count(*) FROM ledger_users").fetchone()[0] == 2


def test_the_app_role_administers_through_the_functions_as_an_admin(clean_db, app_store):
    assert app_store.authenticate("lgr_t-coder-a." + "s" * 30).role == "coder"  # reads work
    app_store.create_user("biller-9", "biller", created_by="admin-1")
    token = app_store.create_token("biller-9", "desk", actor="admin-1")
    assert app_store.authenticate(token).user_id == "biller-9"
    token_id = token.split("_", 1)[1].split(".", 1)[0]
    app_store.revoke_token(token_id, actor="admin-1")
    assert app_store.authenticate(token) is None
    app_store.set_disabled("coder-a", True, actor="admin-1")
    assert app_store.authenticate("lgr_t-coder-a." + "s" * 30) is None
    with psycopg.connect(clean_db) as conn:
        log = conn.execute("SELECT actor, db_user, action, target FROM ledger_auth_log"
                           " WHERE db_user = 'ledger_app' ORDER BY id").fetchall()
    assert log == [("admin-1", "ledger_app", "user.create", "biller-9"),
                   ("admin-1", "ledger_app", "token.create", token_id),
                   ("admin-1", "ledger_app", "token.revoke", token_id),
                   ("admin-1", "ledger_app", "user.disable", "coder-a")]


@pytest.mark.parametrize("actor", ["coder-a", "nobody", "cli", ""])
def test_only_an_enabled_admin_may_act_from_the_app_role(clean_db, app_store, actor):
    with pytest.raises(RuleViolation) as err:
        app_store.create_user("evil", "admin", created_by=actor)
    assert err.value.rule == "admin.required"
    with pytest.raises(RuleViolation):
        app_store.create_token("admin-1", "stolen", actor=actor)
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_users WHERE user_id = 'evil'"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM ledger_tokens WHERE user_id = 'admin-1'"
                            ).fetchone()[0] == 0


def test_a_disabled_admin_cannot_act(clean_db, owner_store, app_store):
    owner_store.set_disabled("admin-1", True)
    with pytest.raises(RuleViolation):
        app_store.set_disabled("coder-a", True, actor="admin-1")


def test_the_api_as_the_app_role_administers_users_through_the_functions(clean_db):
    """With LEDGER_APP_ROLE set, the service's own connections are the app role's: admin
    routes still work (through the functions) and the log names the admin."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from ledger.config import Settings
    from tests.api.conftest import headers, provision

    provision(clean_db)
    app = create_app(Settings(database_url=clean_db, cache_size=0, app_role="ledger_app"))
    with TestClient(app) as client:
        admin = headers("admin-1", "admin")
        r = client.post("/admin/users", json={"user_id": "coder-z", "role": "coder"},
                        headers=admin)
        assert r.status_code == 201, r.text
        r = client.post("/admin/users/coder-z/tokens", json={}, headers=admin)
        assert r.status_code == 201, r.text
        assert client.get("/admin/users", headers=admin).status_code == 200
        with client.app.state.pool.connection() as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "ledger_app"
    with psycopg.connect(clean_db) as conn:
        rows = conn.execute("SELECT actor, db_user, action FROM ledger_auth_log"
                            " WHERE target = 'coder-z' OR detail = 'user=coder-z'"
                            " ORDER BY id").fetchall()
    assert rows == [("admin-1", "ledger_app", "user.create"),
                    ("admin-1", "ledger_app", "token.create")]
