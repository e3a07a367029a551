"""`ledger users …`, `ledger tokens …` and `ledger keys new`: administration from the shell
(creating the first admin needs no running service)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from ledger.auth.tokens import ROLES, AuthStore
from ledger.cli.common import console, err_console, ledger_url

users_app = typer.Typer(help="Users (staff or systems; one role each).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (bearer; hashed at rest).", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys for event state at rest.", no_args_is_help=True)
Role = Enum("Role", {r: r for r in ROLES}, type=str)  # a choice on the command line


def _store() -> AuthStore:
    from ledger.application.idempotency import new_pool

    return AuthStore(new_pool(ledger_url(), max_size=2))


def _fail(exc: Exception) -> NoReturn:
    err_console.print(f"[red]{exc}[/]")
    raise typer.Exit(2)


@users_app.command("create")
def create_user(user_id: str = typer.Argument(..., help="A short id, e.g. coder-1 (not a "
                                             "person's name: ids appear in the audit trail)."),
                role: Annotated[Role, typer.Option(help="What the user may do (README, Who "
                                                   "may do what).")] = ...,  # type: ignore
                token: bool = typer.Option(True, help="Also create and print a token."),
                quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the token "
                                           "(for scripts: TOKEN=$(ledger users create …)).")
                ) -> None:
    """Create a user (e.g. the first admin: `ledger users create admin-1 --role admin`)."""
    from ledger.domain.errors import LedgerError

    role = role.value
    store = _store()
    try:
        store.create_user(user_id, role, created_by="cli")
        secret = store.create_token(user_id, "cli") if token else None
    except LedgerError as exc:
        _fail(exc)
    if quiet:
        if secret:
            typer.echo(secret)
        return
    console.print(f"created user {user_id} ({role})")
    if secret:
        console.print(f"token (shown once): [bold]{secret}[/]")


@users_app.command("list")
def list_users() -> None:
    """List users: role, disabled or not, how many active tokens, when created."""
    table = Table("user", "role", "disabled", "active tokens", "created")
    for u in _store().list_users():
        table.add_row(str(u["user_id"]), str(u["role"]), str(u["disabled"]),
                      str(u["active_tokens"]), str(u["created_at"]))
    console.print(table)


@users_app.command("disable")
def disable_user(user_id: str = typer.Argument(..., help="The user to disable.")) -> None:
    """Disable a user: their tokens stop working (within LEDGER_TOKEN_CACHE_SECONDS); the
    user and their history stay."""
    from ledger.domain.errors import LedgerError

    try:
        _store().set_disabled(user_id, True)
    except LedgerError as exc:
        _fail(exc)
    console.print(f"disabled {user_id}")


@tokens_app.command("create")
def create_token(user_id: str = typer.Argument(..., help="The user the token acts as."),
                 label: str = typer.Option("", help="A note to tell tokens apart.")) -> None:
    """Create a token for a user; the secret is printed once."""
    from ledger.domain.errors import LedgerError

    try:
        typer.echo(_store().create_token(user_id, label))
    except LedgerError as exc:
        _fail(exc)


@tokens_app.command("revoke")
def revoke_token(token_id: str = typer.Argument(..., help="The token id (the part "
                                                "between lgr_ and the dot).")) -> None:
    """Revoke a token (effective within LEDGER_TOKEN_CACHE_SECONDS in running services)."""
    from ledger.domain.errors import LedgerError

    try:
        _store().revoke_token(token_id)
    except LedgerError as exc:
        _fail(exc)
    console.print(f"revoked {token_id}")


@tokens_app.command("list")
def list_tokens(user_id: str = typer.Option(None, help="Only this user's tokens.")) -> None:
    """List tokens (ids and labels; secrets are never stored or shown again)."""
    table = Table("token id", "user", "label", "created", "revoked")
    for t in _store().list_tokens(user_id):
        table.add_row(*(str(t[k] or "") for k in ("token_id", "user_id", "label",
                                                  "created_at", "revoked_at")))
    console.print(table)


@keys_app.command("new")
def new_key() -> None:
    """Print a new AES-256 key for LEDGER_CIPHER_KEY (keep it in a secret store)."""
    from ledger.persistence.crypto import new_key as make

    typer.echo(make())
