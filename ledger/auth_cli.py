"""`ledger users …`, `ledger tokens …` and `ledger keys new`: administration from the shell
(creating the first admin needs no running service)."""

from __future__ import annotations

import typer
from rich.table import Table

from ledger.auth import ROLES, AuthStore
from ledger.console import make_console

users_app = typer.Typer(help="Users (staff or systems; one role each).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (bearer; hashed at rest).", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys for event state at rest.", no_args_is_help=True)
console = make_console()


def _store() -> AuthStore:
    from ledger.cli import _url
    from ledger.idempotency import new_pool

    return AuthStore(new_pool(_url(), max_size=2))


def _fail(exc: Exception) -> None:
    console.print(f"[red]{exc}[/]")
    raise typer.Exit(2)


@users_app.command("create")
def create_user(user_id: str, role: str = typer.Option(..., help=", ".join(ROLES)),
                token: bool = typer.Option(True, help="Also create and print a token.")) -> None:
    """Create a user (e.g. the first admin: `ledger users create admin-1 --role admin`)."""
    from ledger.domain.errors import LedgerError

    store = _store()
    try:
        store.create_user(user_id, role, created_by="cli")
        console.print(f"created user {user_id} ({role})")
        if token:
            console.print(f"token (shown once): [bold]{store.create_token(user_id, 'cli')}[/]")
    except LedgerError as exc:
        _fail(exc)


@users_app.command("list")
def list_users() -> None:
    table = Table("user", "role", "disabled", "active tokens", "created")
    for u in _store().list_users():
        table.add_row(str(u["user_id"]), str(u["role"]), str(u["disabled"]),
                      str(u["active_tokens"]), str(u["created_at"]))
    console.print(table)


@users_app.command("disable")
def disable_user(user_id: str) -> None:
    from ledger.domain.errors import LedgerError

    try:
        _store().set_disabled(user_id, True)
    except LedgerError as exc:
        _fail(exc)
    console.print(f"disabled {user_id}")


@tokens_app.command("create")
def create_token(user_id: str, label: str = "") -> None:
    """Create a token for a user; the secret is printed once."""
    from ledger.domain.errors import LedgerError

    try:
        console.print(_store().create_token(user_id, label))
    except LedgerError as exc:
        _fail(exc)


@tokens_app.command("revoke")
def revoke_token(token_id: str) -> None:
    from ledger.domain.errors import LedgerError

    try:
        _store().revoke_token(token_id)
    except LedgerError as exc:
        _fail(exc)
    console.print(f"revoked {token_id}")


@tokens_app.command("list")
def list_tokens(user_id: str = typer.Option(None)) -> None:
    table = Table("token id", "user", "label", "created", "revoked")
    for t in _store().list_tokens(user_id):
        table.add_row(*(str(t[k] or "") for k in ("token_id", "user_id", "label",
                                                  "created_at", "revoked_at")))
    console.print(table)


@keys_app.command("new")
def new_key() -> None:
    """Print a new AES-256 key for LEDGER_CIPHER_KEY (keep it in a secret store)."""
    from ledger.crypto import new_key as make

    typer.echo(make())
