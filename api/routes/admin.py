"""Administration of users and tokens (admin role only; no claim data here)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import IdentityDep
from api.responses import OrjsonResponse
from ledger.auth.tokens import AuthStore

router = APIRouter(prefix="/admin", tags=["admin"])


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user_id": "coder-a", "role": "coder"}]})
    user_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,80}$")]
    role: Literal["coder", "biller", "auditor", "advocate", "admin"]


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"label": "workstation 3"}]})
    label: Annotated[str, Field(max_length=80)] = ""


def _store(request: Request) -> AuthStore:
    return request.app.state.auth


@router.get("/users", summary="List users")
def list_users(request: Request, identity: IdentityDep) -> OrjsonResponse:
    return OrjsonResponse({"users": _store(request).list_users()})


@router.post("/users", status_code=201, summary="Create a user")
def create_user(request: Request, body: NewUser, identity: IdentityDep) -> OrjsonResponse:
    _store(request).create_user(body.user_id, body.role, created_by=identity.user_id)
    return OrjsonResponse({"user_id": body.user_id, "role": body.role}, status_code=201)


@router.post("/users/{user_id}/disable", summary="Disable a user (their tokens stop working)")
def disable_user(request: Request, user_id: str, identity: IdentityDep) -> OrjsonResponse:
    _store(request).set_disabled(user_id, True, actor=identity.user_id)
    return OrjsonResponse({"user_id": user_id, "disabled": True})


@router.post("/users/{user_id}/tokens", status_code=201,
             summary="Create a token (the secret is shown once)")
def create_token(request: Request, user_id: str, body: NewToken,
                 identity: IdentityDep) -> OrjsonResponse:
    token = _store(request).create_token(user_id, body.label, actor=identity.user_id)
    return OrjsonResponse({"user_id": user_id, "token": token}, status_code=201)


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token")
def revoke_token(request: Request, token_id: str, identity: IdentityDep) -> OrjsonResponse:
    _store(request).revoke_token(token_id, actor=identity.user_id)
    return OrjsonResponse({"token_id": token_id, "revoked": True})
